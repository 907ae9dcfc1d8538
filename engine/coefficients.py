"""Stage 6: coefficients by (segment, variable).

CMS ``%SCOREMAC(PVAR=SCORE_..., RLIST=..., CPREF=CNA_)``: a segment's score is the
sum over its regression list of ``variable * coefficient(CPREF || variable)``.
Here the coefficient table is ``models/<model>/coefficients.csv``
(``segment,variable,coefficient`` with ``coefficient_milli`` Int64 loaded by the
store), joined on ``(coef_segment, variable)``. A variable that the segment does
not list has no row and contributes nothing, as in CMS (a variable outside
``RLIST`` is never multiplied). ``tests/engine`` checks that every variable the
engine can generate is either listed or intentionally absent (pitfall 3).

Exact arithmetic: coefficients stay Int64 thousandths; no floats.
"""

from __future__ import annotations

import polars as pl

SCORED_COLUMNS = [
    "input_index",
    "model",
    "segment",
    "coef_segment",
    "variable",
    "family",
    "coefficient_milli",
    "bucket",
    "kind",
    "label",
]


def attach_coefficients(variables: pl.DataFrame, model_tables: object) -> pl.DataFrame:
    """Keep the variables the segment lists, with coefficient, bucket, kind and label."""
    coefficients = model_tables.coefficients.select(
        pl.col("segment").cast(pl.Utf8).alias("coef_segment"),
        pl.col("variable").cast(pl.Utf8),
        pl.col("coefficient_milli").cast(pl.Int64),
    )
    described = model_tables.variables.select(
        pl.col("variable").cast(pl.Utf8),
        pl.col("bucket").cast(pl.Utf8),
        pl.col("kind").cast(pl.Utf8),
        pl.col("label").cast(pl.Utf8) if "label" in model_tables.variables.columns
        else pl.lit(None, dtype=pl.Utf8).alias("label"),
    ).unique(subset="variable", keep="first")
    return (
        variables.join(coefficients, on=["coef_segment", "variable"], how="inner")
        .join(described, on="variable", how="left")
        .select(SCORED_COLUMNS)
    )
