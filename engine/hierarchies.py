"""Stage 4: hierarchies from CMS's table (``models/<model>/hierarchies.csv``).

Source tables: ``V28115H1.TXT`` / ``V24H86H1.TXT`` (SAS ``%SET0(CC=parent,
HIER=children)``) and CMS-PY ``V28_HCC_Hierarchies.csv``; rows are
``parent_hcc,child_hcc`` and never inferred from HCC numbers (pitfall 5).

A child is dropped when any of its parents is present among the member's CCs
*after* the heart patch. That is CMS's 2026 Python package
(``common/utils.py::map_ccs_to_hccs`` tests the parent in the pre-hierarchy
frame: "Collect exclusions from init df so exclusions aren't prematurely zeroed
out"). The SAS macro instead tests ``HCC&parent`` after earlier ``%SET0`` calls
may have zeroed that parent; the two differ only when a dropped parent has a
child its own dropper does not list (V28: 62 drops 63, and 63 drops 202 which
62 does not; with CC62+CC63+CC202 SAS keeps 202, CMS-PY drops it). We follow
the contract in ``docs/ARCHITECTURE.md`` and CMS-PY; see the report.

Every drop is reported with the parent(s) that caused it.
"""

from __future__ import annotations

import polars as pl

from engine.heart_patch import DROPPED_COLUMNS
from engine.keys import member_keys
from engine.memo import derived


def _pairs(hierarchies: pl.DataFrame) -> pl.DataFrame:
    return derived(hierarchies, "pairs", lambda: hierarchies.select(
        pl.col("parent_hcc").cast(pl.Int32).alias("dropped_by"),
        pl.col("child_hcc").cast(pl.Int32).alias("cc"),
    ).unique())


def apply_hierarchies(
    ccs: pl.DataFrame, hierarchies: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``ccs``: distinct ``input_index, model, cc``. Returns ``(hccs, dropped)``.

    ``hccs``: ``input_index, model, hcc``; ``dropped``: ``DROPPED_COLUMNS`` with
    ``rule`` = ``"hierarchy"``.
    """
    keys = member_keys(ccs)
    drops = (
        ccs.join(_pairs(hierarchies), on="cc", how="inner")
        .join(
            ccs.select(*keys, pl.col("cc").alias("dropped_by")),
            on=[*keys, "dropped_by"],
            how="semi",
        )
        .select(
            pl.col("input_index").cast(pl.UInt32),
            "model",
            pl.col("cc").alias("hcc"),
            "dropped_by",
            pl.lit("hierarchy").alias("rule"),
        )
    )
    hccs = ccs.join(
        drops.select(*keys, pl.col("hcc").alias("cc")),
        on=[*keys, "cc"],
        how="anti",
    ).select("input_index", "model", pl.col("cc").alias("hcc"))
    return hccs, drops.select(DROPPED_COLUMNS)
