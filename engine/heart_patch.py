"""Stage 3: CC patches applied after mapping and before hierarchies (V28 heart patch).

CMS ``V2823T2M.TXT`` step 3.6, right before ``%&HIERMAC``::

    %*heart interaction patch;
    IF CC223 = 1 AND MAX(CC221, CC222, CC224, CC225, CC226) = 0
    THEN CC223 = 0;

CMS's 2026 Python package does the same in ``transform.py``
(``condition_cols = ['CC221','CC222','CC224','CC225','CC226']``). V24 has no
such rule. The rule is data (``engine.spec.CcPatch``) attached to the V28 spec
only, so V24 and ESRD never see it.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from engine.keys import member_keys
from engine.spec import CcPatch

DROPPED_COLUMNS = ["input_index", "model", "hcc", "dropped_by", "rule"]


@lru_cache(maxsize=16)
def _rules(patches: tuple[CcPatch, ...]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "cc": [p.cc for p in patches],
            "rule": [p.name for p in patches],
            "requires_any": [list(p.requires_any) for p in patches],
        },
        schema={"cc": pl.Int32, "rule": pl.Utf8, "requires_any": pl.List(pl.Int32)},
    )


@lru_cache(maxsize=16)
def _rules_and_companions(patches: tuple[CcPatch, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    rules = _rules(patches)
    companions = rules.explode("requires_any", empty_as_null=False).rename(
        {"requires_any": "companion"}
    )
    return rules, companions


def apply_cc_patches(
    ccs: pl.DataFrame, patches: tuple[CcPatch, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Zero each patched CC whose companions are all absent.

    ``ccs``: distinct ``input_index, model, cc``. Returns ``(kept, dropped)``;
    ``dropped`` has ``DROPPED_COLUMNS`` (``dropped_by`` null, ``rule`` = patch name).
    """
    empty = pl.DataFrame(
        schema={
            "input_index": pl.UInt32,
            "model": pl.Utf8,
            "hcc": pl.Int32,
            "dropped_by": pl.Int32,
            "rule": pl.Utf8,
        }
    )
    if not patches:
        return ccs, empty
    rules, companions = _rules_and_companions(patches)
    keys = member_keys(ccs)
    patched = ccs.join(rules.select("cc", "rule"), on="cc", how="inner")
    with_companion = (
        patched.join(companions, on=["cc", "rule"], how="inner")
        .join(
            ccs.select(*keys, pl.col("cc").alias("companion")),
            on=[*keys, "companion"],
            how="semi",
        )
        .select("input_index", "model", "cc", "rule")
        .unique()
    )
    to_drop = patched.join(with_companion, on=["input_index", "model", "cc", "rule"], how="anti")
    kept = ccs.join(to_drop.select(*keys, "cc"), on=[*keys, "cc"], how="anti")
    dropped = to_drop.select(
        pl.col("input_index").cast(pl.UInt32),
        "model",
        pl.col("cc").alias("hcc"),
        pl.lit(None, dtype=pl.Int32).alias("dropped_by"),
        "rule",
    ).unique()
    return kept, dropped
