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

from engine.heart_patch import RANKED_DROPPED_SCHEMA
from engine.mapping import cc_key
from engine.memo import derived


def pairs(hierarchies: pl.DataFrame) -> pl.DataFrame:
    """``dropped_by, cc``: distinct (parent, child) rows of a model's table."""
    return derived(hierarchies, "pairs", lambda: hierarchies.select(
        pl.col("parent_hcc").cast(pl.Int32).alias("dropped_by"),
        pl.col("child_hcc").cast(pl.Int32).alias("cc"),
    ).unique())


def apply_hierarchies(
    ccs: pl.LazyFrame, hierarchy_pairs: pl.DataFrame
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Drop every CC one of whose parents is present (every model at once).

    ``ccs``: distinct ``input_index, model_rank, cc, key`` after the patches;
    ``hierarchy_pairs``: ``model_rank, cc, dropped_by`` (``pairs`` of each model,
    tagged with its rank). Returns ``(hccs, dropped)`` (lazy): ``hccs`` =
    ``input_index, model_rank, cc``; ``dropped`` has ``RANKED_DROPPED_SCHEMA``
    with ``rule`` = ``"hierarchy"``.
    """
    # expand from the parents (each present parent lists the children it removes),
    # then keep the children that are present: fewer rows than expanding from the
    # children (measured on the benchmark roster: 0.45M rows per 100k members
    # against 1.1M)
    drops = (
        ccs.select("input_index", "model_rank", pl.col("cc").alias("dropped_by"))
        .join(hierarchy_pairs.lazy(), on=["model_rank", "dropped_by"], how="inner")
        .with_columns(cc_key(pl.col("cc")).alias("key"))
        .join(ccs.select("key"), on="key", how="semi")
    )
    hccs = ccs.join(drops.select("key"), on="key", how="anti").select(
        "input_index", "model_rank", "cc"
    )
    dropped = drops.select(
        pl.col("input_index").cast(pl.UInt32),
        pl.col("model_rank").cast(pl.UInt8),
        pl.col("cc").alias("hcc"),
        "dropped_by",
        pl.lit("hierarchy").alias("rule"),
    )
    return hccs, dropped.cast(RANKED_DROPPED_SCHEMA)
