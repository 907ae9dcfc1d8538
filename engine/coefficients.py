"""Stage 6: coefficients by (segment, variable).

CMS ``%SCOREMAC(PVAR=SCORE_..., RLIST=..., CPREF=CNA_)``: a segment's score is the
sum over its regression list of ``variable * coefficient(CPREF || variable)``.
Here the coefficient table is ``models/<model>/coefficients.csv``
(``segment,variable,coefficient`` with ``coefficient_milli`` Int64 loaded by the
store), joined on ``(coef_segment, variable)``. A variable that the segment does
not list has no row and contributes nothing, as in CMS (a variable outside
``RLIST`` is never multiplied). ``tests/engine`` checks that every variable the
engine can generate is either listed or intentionally absent (pitfall 3).

Everything the later stages need per variable is computed once on the small
coefficient table, not per member: ``bucket`` and its position ``bucket_rank``
(``variables.csv``; ``engine.buckets.BUCKETS`` order), and the ``ra_variable``
text and position (``display_name``: segment-prefixed for the demographic cell,
e.g. ``CPD_M35_44``, bare otherwise, e.g. ``HCC137``; ``display_order``: the
cell first, then bucket order, HCCs by number, then by name).

Exact arithmetic: coefficients stay Int64 thousandths; no floats.
"""

from __future__ import annotations

import polars as pl

from engine.buckets import BUCKETS, CELL_KINDS, DISPLAY_ORDER_SPAN
from engine.memo import derived
from engine.variables import VARIABLE_SCHEMA

SCORED_SCHEMA = {
    **VARIABLE_SCHEMA,
    "coefficient_milli": pl.Int64,
    "bucket": pl.Utf8,
    "bucket_rank": pl.Int8,
    "kind": pl.Utf8,
    "label": pl.Utf8,
    "display_name": pl.Utf8,
    "display_order": pl.Int32,
}
SCORED_COLUMNS = list(SCORED_SCHEMA)


def described_coefficients(model_tables: object) -> pl.DataFrame:
    """The model's coefficient rows with bucket, kind, label and display name/order.

    Raises ``ValueError`` when a coefficient's variable has no known bucket in
    ``variables.csv`` (a reference-data bug that would otherwise drop money silently).
    Built once per model table (``engine.memo``).
    """
    return derived(model_tables, "described_coefficients", lambda: _described(model_tables))


def _described(model_tables: object) -> pl.DataFrame:
    table = model_tables.variables
    bucket_rank = pl.DataFrame(
        {"bucket": list(BUCKETS), "bucket_rank": list(range(len(BUCKETS)))},
        schema={"bucket": pl.Utf8, "bucket_rank": pl.Int8},
    )
    described = (
        table.select(
            pl.col("variable").cast(pl.Utf8),
            pl.col("bucket").cast(pl.Utf8),
            pl.col("kind").cast(pl.Utf8),
            (pl.col("label") if "label" in table.columns else pl.lit(None))
            .cast(pl.Utf8)
            .alias("label"),
        )
        .unique(subset="variable", keep="first")
        .join(bucket_rank, on="bucket", how="left")
    )
    is_cell = pl.col("kind").is_in(CELL_KINDS)
    order = (
        described.with_columns(
            pl.when(is_cell).then(-1).otherwise(pl.col("bucket_rank")).alias("position"),
            pl.when(pl.col("kind") == "hcc")
            .then(pl.col("variable").str.slice(3).cast(pl.Int32, strict=False))
            .alias("hcc_number"),
        )
        .sort("position", "hcc_number", "variable", nulls_last=True)
        .with_row_index("display_order")
        .select("variable", pl.col("display_order").cast(pl.Int32))
    )
    coefficients = (
        model_tables.coefficients.select(
            pl.col("segment").cast(pl.Utf8).alias("coef_segment"),
            pl.col("variable").cast(pl.Utf8),
            pl.col("coefficient_milli").cast(pl.Int64),
        )
        .join(described, on="variable", how="left")
        .join(order, on="variable", how="left")
        .with_columns(
            pl.when(is_cell)
            .then(pl.col("coef_segment") + "_" + pl.col("variable"))
            .otherwise(pl.col("variable"))
            .alias("display_name")
        )
    )
    if order.height > DISPLAY_ORDER_SPAN:  # engine.buckets packs it below a member key
        raise ValueError(f"{model_tables.model_id}: more than {DISPLAY_ORDER_SPAN} variables")
    unknown = coefficients.filter(pl.col("bucket_rank").is_null())
    if unknown.height:
        names = unknown.select("coef_segment", "variable").unique().sort("variable").rows()
        raise ValueError(
            f"{model_tables.model_id}: coefficients without a known bucket in variables.csv: "
            f"{names[:20]}"
        )
    return coefficients


def attach_coefficients(
    variables: pl.DataFrame | pl.LazyFrame,
    model_tables: object,
    columns: list[str] | None = None,
) -> pl.DataFrame | pl.LazyFrame:
    """Keep the variables the segment lists, with coefficient, bucket and display fields.

    ``columns``: the output columns (default ``SCORED_COLUMNS``). A LazyFrame in
    gives a LazyFrame out.
    """
    described = described_coefficients(model_tables)
    if isinstance(variables, pl.LazyFrame):
        described = described.lazy()
    return variables.join(described, on=["coef_segment", "variable"], how="inner").select(
        columns or SCORED_COLUMNS
    )


def _hcc_key(segment_id: pl.Expr) -> pl.Expr:
    """One Int64 join key for (segment id, Int32 HCC number): injective, null when either is."""
    return (segment_id * (1 << 33) + pl.col("hcc").cast(pl.Int64)).alias("_hcc_key")


def _hcc_coefficients(model_tables: object) -> tuple[pl.DataFrame, dict[str, int]]:
    """Coefficient rows of variables spelled ``HCC<n>`` keyed on integers, and segment -> id."""

    def build() -> tuple[pl.DataFrame, dict[str, int]]:
        described = described_coefficients(model_tables)
        segments = sorted(described.get_column("coef_segment").drop_nulls().unique().to_list())
        segment_id = {segment: i for i, segment in enumerate(segments)}
        number = pl.col("variable").str.extract(r"^HCC(\d+)$", 1).cast(pl.Int32, strict=False)
        rows = (
            described.with_columns(number.alias("hcc"))
            # exactly the names that "HCC" + str(hcc) produces
            .filter(
                pl.col("hcc").is_not_null()
                & (pl.col("variable") == pl.lit("HCC") + pl.col("hcc").cast(pl.Utf8))
                & pl.col("coef_segment").is_not_null()
            )
            .with_columns(
                _hcc_key(
                    pl.col("coef_segment").replace_strict(segment_id, return_dtype=pl.Int64)
                )
            )
            .drop("hcc")
        )
        return rows, segment_id

    return derived(model_tables, "hcc_coefficients", build)


def attach_hcc_coefficients(
    member_hccs: pl.LazyFrame,
    model_tables: object,
    family: str,
    columns: list[str] | None = None,
) -> pl.LazyFrame:
    """``attach_coefficients`` of the HCC family without building ``HCC<n>`` strings.

    ``member_hccs``: ``input_index, model, segment, hcc`` (``engine.variables.member_hccs``);
    the variable is ``HCC<hcc>`` and its coefficient segment the member's segment,
    so the join is on (segment id, HCC number) and gives the same rows.
    """
    rows, segment_id = _hcc_coefficients(model_tables)
    # the key expression is built once per model table: building expressions costs
    # about as much as running them on a one-member request
    member_key = derived(
        model_tables,
        "hcc_member_key",
        # segment_id numbers the sorted segments, as an Enum's physical codes do
        # (cheaper per row than replace_strict); a segment without coefficients is null
        lambda: _hcc_key(
            pl.col("segment")
            .cast(pl.Enum(list(segment_id)), strict=False)
            .to_physical()
            .cast(pl.Int64)
        ),
    )
    return (
        member_hccs.with_columns(member_key)
        .join(rows.lazy(), on="_hcc_key", how="inner")
        .with_columns(
            pl.col("input_index").cast(pl.UInt32),
            pl.col("segment").cast(pl.Utf8),  # an Enum from engine.variables.diagnosed_hccs
            pl.lit(family).alias("family"),
        )
        .select(columns or SCORED_COLUMNS)
    )
