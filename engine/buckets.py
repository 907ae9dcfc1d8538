"""Stage 7: the six response buckets, the total and ``ra_variable``.

Buckets come from ``variables.csv``'s ``bucket`` column (rules in
``docs/scoring.md`` "Buckets of the response row", after the seed
provider's SQL views, ``docs/scoring.md`` "Where the seed's provider departs from CMS"). Each bucket is
a sum of Int64 thousandths; ``total`` is the sum of the six, so a raw score is an
exact 3-decimal number (seed: V28 0.261 + 0.348 = 0.609).

``ra_variable`` (seed ``RA_Variable``): the segment-prefixed demographic cell
first (``CPD_M35_44``; new enrollees ``NE_NMCAID_NORIGDIS_NEF65``), then every
other variable with a nonzero coefficient, unprefixed, in bucket order, HCCs by
number (``HCC137``). A zero coefficient (e.g. ``D1``) is not listed, which is
why the seed's M00913 shows only ``CNA_F85_89``.
"""

from __future__ import annotations

import polars as pl

BUCKETS = (
    "demographic",
    "demographic_interaction",
    "disease",
    "disease_count",
    "disease_interaction",
    "disability_interaction",
)
#: variables.csv kinds of the demographic cell that leads ``ra_variable``.
CELL_KINDS = ("age_sex", "ne_cell")
#: ``display_order`` is below this (``engine.coefficients`` checks it), so
#: ``key * DISPLAY_ORDER_SPAN + display_order`` sorts by key, then display order.
DISPLAY_ORDER_SPAN = 1 << 16
ROW_COLUMNS = ["input_index", "MemberID", "model", *BUCKETS, "total", "ra_variable"]


def sum_buckets(member_models: pl.DataFrame, scored: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per member and model: ``ROW_COLUMNS``; members without variables get zeros.

    ``scored`` comes from ``engine.coefficients.attach_coefficients`` (``bucket_rank``,
    ``display_name``, ``display_order`` already resolved per variable). One pass:
    rows sorted by one integer that packs the (member, model) key above
    ``display_order``, then one ordered group-by that sums the buckets and joins
    the listed names.
    """
    # ``scored`` may be a LazyFrame (not materialized without a trail): the model
    # codes come from the member-model frame, which lists every model scored
    models = member_models.get_column("model").unique().sort().to_list()

    # (member, model) as one integer: the model's position among the scored models
    # (an Enum cast: no per-row string lookup; a model outside the list is an error)
    key = (
        pl.col("input_index").cast(pl.UInt64) * len(models)
        + pl.col("model").cast(pl.Enum(models)).to_physical().cast(pl.UInt64)
    ).alias("_key")

    # One UInt64 sort instead of a two-column sort (a third of the cost); the key is
    # the sorted prefix, so the group-by below takes polars' sorted-key path.
    order_key = (key * DISPLAY_ORDER_SPAN + pl.col("display_order").cast(pl.UInt64)).alias(
        "_order"
    )
    sums = (
        scored.lazy()
        # an unlisted row adds zero to its bucket and no name: dropped before the sort
        # (a member left without rows gets the zeros and "" of the join below)
        .filter(_LISTED)
        .select(order_key, "coefficient_milli", "bucket_rank", "display_name")
        .sort("_order")
        .with_columns(_KEY_OF_ORDER)
        .group_by("_key", maintain_order=True)
        .agg(_BUCKET_SUMS)
        .with_columns(_JOINED_NAMES)
    )
    return (
        member_models.lazy()
        .select(pl.col("input_index").cast(pl.UInt32), "MemberID", "model", key)
        .join(sums, on="_key", how="left")
        .with_columns(_ZERO_FILLED)
        .with_columns(_TOTAL)
        .select(ROW_COLUMNS)
        .collect()
    )


# sum_buckets' expressions that depend on nothing per call, built once (building
# them costs about as much as running them on a one-member request)
_LISTED = pl.col("kind").is_in(CELL_KINDS) | (pl.col("coefficient_milli") != 0)
_KEY_OF_ORDER = (pl.col("_order") // DISPLAY_ORDER_SPAN).set_sorted().alias("_key")
_BUCKET_SUMS = [
    *[
        pl.col("coefficient_milli").filter(pl.col("bucket_rank") == rank).sum().alias(bucket)
        for rank, bucket in enumerate(BUCKETS)
    ],
    # a list then list.join: far cheaper than the str.join aggregation
    pl.col("display_name").drop_nulls().alias("ra_variable"),
]
_JOINED_NAMES = pl.col("ra_variable").list.join(", ")
_ZERO_FILLED = [
    *[pl.col(b).fill_null(0).cast(pl.Int64) for b in BUCKETS],
    pl.col("ra_variable").fill_null(""),
]
_TOTAL = pl.sum_horizontal(*BUCKETS).cast(pl.Int64).alias("total")


def ra_variables(scored: pl.DataFrame) -> pl.DataFrame:
    """``input_index, model, ra_variable`` (see module docstring)."""
    listed = scored.filter(
        pl.col("kind").is_in(CELL_KINDS) | (pl.col("coefficient_milli") != 0)
    )
    return listed.group_by("input_index", "model").agg(
        pl.col("display_name").sort_by("display_order").str.join(", ").alias("ra_variable")
    )
