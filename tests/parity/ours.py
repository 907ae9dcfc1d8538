"""Our side of the parity tests: `ratype.normalize` + `engine.score_raw`.

Returns the same shape as `peers.PEER_SCHEMA` (peer = 'ours'), from the raw rows
(Int64 thousandths) and the `hccs` trail (detail=True), so the comparison is
row for row, bucket for bucket, HCC list for HCC list.
"""

from __future__ import annotations

import importlib

import polars as pl

from tests.parity.peers import BUCKETS, PEER_SCHEMA
from tests.parity.population import Population


def find_score_raw():
    """`engine.score_raw` wherever the engine exports it; None while it is not written."""
    for mod, attr in (("engine", "score_raw"), ("engine.raw", "score_raw"), ("engine.score", "score_raw"),
                      ("engine.score_raw", "score_raw")):
        try:
            fn = getattr(importlib.import_module(mod), attr, None)
        except ImportError:
            continue
        if callable(fn):
            return fn
    return None


def find_store():
    try:
        from reference.store import ReferenceStore
    except ImportError:
        return None
    return ReferenceStore()


def run_ours(pop: Population, store, score_raw=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows in PEER_SCHEMA shape, member errors) for a population."""
    import ratype

    score_raw = score_raw or find_score_raw()
    tables = store.year(pop.payment_year)
    members, errors = ratype.normalize(pop.members.with_row_index("input_index"), pop.payment_year)
    result = score_raw(members, pop.diagnoses.with_row_index("input_index"), tables, detail=True)
    rows = result.rows
    trail = getattr(result, "hccs", None)
    if trail is None and hasattr(result, "trail"):
        trail = result.trail["hccs"] if isinstance(result.trail, dict) else result.trail.hccs
    hccs = (
        trail.group_by("input_index", "model")
        .agg(pl.col("hcc").cast(pl.Int64).sort().alias("hccs"))
    )
    out = (
        rows.join(hccs, on=["input_index", "model"], how="left")
        .join(members.select("input_index", "segment", pl.col("age").cast(pl.Int64)), on="input_index", how="left")
        .select(
            pl.col("MemberID"),
            pl.col("model"),
            pl.lit("ours").alias("peer"),
            pl.col("segment"),
            pl.col("segment").alias("family"),
            pl.col("age"),
            *[pl.col(b).cast(pl.Int64) for b in BUCKETS],
            pl.col("total").cast(pl.Int64),
            (pl.col("total") / 1000).alias("peer_total"),
            pl.col("hccs").fill_null(pl.lit([], dtype=pl.List(pl.Int64))),
            pl.col("ra_variable").str.split(", ").alias("variables"),
        )
    )
    return out.cast(PEER_SCHEMA), errors
