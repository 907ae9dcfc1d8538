"""Stage 7: the six response buckets, the total and ``ra_variable``.

Buckets come from ``variables.csv``'s ``bucket`` column (rules in
``../shared/spec/scoring.md`` "Buckets of the response row", after the seed
provider's SQL views, ``research/ratype_segments.md`` section 6). Each bucket is
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
CELL_FAMILIES = ("age_sex", "ne_cell")
ROW_COLUMNS = ["input_index", "MemberID", "model", *BUCKETS, "total", "ra_variable"]


def check_buckets(scored: pl.DataFrame) -> None:
    """Fail loudly when a coefficient's variable has no known bucket (reference bug)."""
    unknown = scored.filter(~pl.col("bucket").is_in(BUCKETS) | pl.col("bucket").is_null())
    if unknown.height:
        names = unknown.select("model", "variable").unique().sort("model", "variable").rows()
        raise ValueError(f"variables without a known bucket in variables.csv: {names[:20]}")


def sum_buckets(member_models: pl.DataFrame, scored: pl.DataFrame) -> pl.DataFrame:
    """One row per member and model: ``ROW_COLUMNS``; members without variables get zeros."""
    check_buckets(scored)
    sums = scored.group_by("input_index", "model").agg(
        *[
            pl.col("coefficient_milli").filter(pl.col("bucket") == bucket).sum().alias(bucket)
            for bucket in BUCKETS
        ]
    )
    ra_variable = ra_variables(scored)
    return (
        member_models.select(pl.col("input_index").cast(pl.UInt32), "MemberID", "model")
        .join(sums, on=["input_index", "model"], how="left")
        .join(ra_variable, on=["input_index", "model"], how="left")
        .with_columns(
            *[pl.col(b).fill_null(0).cast(pl.Int64) for b in BUCKETS],
            pl.col("ra_variable").fill_null(""),
        )
        .with_columns(pl.sum_horizontal(*BUCKETS).cast(pl.Int64).alias("total"))
        .select(ROW_COLUMNS)
    )


def _display_order(scored: pl.DataFrame) -> pl.DataFrame:
    """One Int32 sort key per (family, bucket, variable): bucket order, HCCs by number, name."""
    bucket_rank = pl.DataFrame(
        {"bucket": list(BUCKETS), "rank": list(range(len(BUCKETS)))},
        schema={"bucket": pl.Utf8, "rank": pl.Int32},
    )
    return (
        scored.select("family", "bucket", "variable")
        .unique()
        .join(bucket_rank, on="bucket", how="left")
        .with_columns(
            pl.when(pl.col("family").is_in(CELL_FAMILIES))
            .then(-1)
            .otherwise(pl.col("rank").fill_null(len(BUCKETS)))
            .alias("rank"),
            pl.when(pl.col("family") == "hcc")
            .then(pl.col("variable").str.slice(3).cast(pl.Int32, strict=False))
            .alias("hcc_number"),
        )
        .sort("rank", "hcc_number", "variable", nulls_last=True)
        .with_row_index("display_order")
        .select("family", "bucket", "variable", pl.col("display_order").cast(pl.Int32))
    )


def ra_variables(scored: pl.DataFrame) -> pl.DataFrame:
    """``input_index, model, ra_variable`` (see module docstring)."""
    is_cell = pl.col("family").is_in(CELL_FAMILIES)
    listed = scored.filter(is_cell | (pl.col("coefficient_milli") != 0))
    return (
        listed.join(_display_order(listed), on=["family", "bucket", "variable"], how="left", nulls_equal=True)
        .select(
            "input_index",
            "model",
            "display_order",
            pl.when(is_cell)
            .then(pl.col("coef_segment") + "_" + pl.col("variable"))
            .otherwise(pl.col("variable"))
            .alias("name"),
        )
        .sort("input_index", "model", "display_order")
        .group_by("input_index", "model", maintain_order=True)
        .agg(pl.col("name").str.join(", ").alias("ra_variable"))
    )
