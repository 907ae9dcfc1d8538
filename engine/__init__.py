"""Scoring engine: ``score_raw`` (raw CMS-HCC rows, one per member per model, with trail).

Stages, one module each in CMS order: ``diagnoses`` -> ``mapping`` -> ``heart_patch``
-> ``hierarchies`` -> ``variables`` -> ``coefficients`` -> ``buckets``, wired in
``engine.raw``; per-model variable families in ``engine.spec``.
"""

from engine.raw import RawResult, score_raw

__all__ = ["RawResult", "score_raw"]
