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
    models: set[str | None] = set()
    for frame in frames:
        # n_unique and one element are native Series calls; unique() would run a
        # polars query per frame (three per model on every 1-member request)
        column = frame.get_column("model")
        if column.n_unique() > 1:
            return ["input_index", "model"]
        if len(column):
            models.add(column[0])
        if len(models) > 1:
            return ["input_index", "model"]
    return ["input_index"]
