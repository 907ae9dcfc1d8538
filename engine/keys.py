"""Join keys of the engine's per-member frames.

Every stage frame carries ``input_index`` and ``model``. Within one per-model
call of ``engine.raw.score_raw`` the ``model`` column is constant, so joining on
it only adds a string comparison to every probe: ``member_keys`` returns
``input_index`` alone in that case and both columns otherwise (a stage called
directly with several models' rows still joins correctly).
"""

from __future__ import annotations

import polars as pl


def member_keys(*frames: pl.DataFrame) -> list[str]:
    """``["input_index"]`` when all frames hold one and the same model, else with ``model``."""
    models: set[str] = set()
    for frame in frames:
        models.update(frame.get_column("model").unique().to_list())
        if len(models) > 1:
            return ["input_index", "model"]
    return ["input_index"]
