"""Variable names that encode cells: regex groups, age bands, one row per age.

CMS names its demographic cells after what they select: ``F65_69`` (women 65-69,
``V24_Relative_Factors``/``V28`` age/sex rows), ``MCAID_NORIGDIS_NEF65`` (a
new-enrollee cell of one age), ``FBD_ORIGDIS_G_NEM70_74`` (ESRD graft new
enrollee), ``D10P`` (ten or more payment HCCs). ``engine.variables`` and
``engine.esrd`` parse those names from ``variables.csv`` into lookup frames
once per table (``engine.memo``); this module holds the parts they share.
"""

from __future__ import annotations

import polars as pl

#: Oldest age a cell spreads to (an open band, ``..._GT``, ends here).
MAX_AGE = 150


def name_parts(variables: pl.DataFrame, kind: str, pattern: str) -> pl.DataFrame:
    """``variable`` and the regex groups ``"1"``, ``"2"``, ... of the ``kind`` variables'
    names (all null where a name does not match ``pattern``)."""
    return (
        variables.filter(pl.col("kind") == kind)
        .select("variable", pl.col("variable").str.extract_groups(pattern).alias("parts"))
        .unnest("parts")
    )


def band_high(low: pl.Expr, high: pl.Expr) -> pl.Expr:
    """Top age of a band named ``{low}_{high}``: ``GT`` is open-ended (``MAX_AGE``), no
    ``high`` is the single age ``low`` (new-enrollee ``NEF65``)."""
    return (
        pl.when(high.is_null())
        .then(low.cast(pl.Int32))
        .when(high == "GT")
        .then(pl.lit(MAX_AGE))
        .otherwise(high.cast(pl.Int32, strict=False))
    )


def spread_over_ages(bands: pl.DataFrame, age: str = "age") -> pl.DataFrame:
    """One row per age 0..MAX_AGE (column ``age``) within each band's ``age_low..age_high``."""
    ages = pl.DataFrame({age: pl.int_range(0, MAX_AGE + 1, eager=True).cast(pl.Int32)})
    return bands.join(ages, how="cross").filter(
        pl.col(age).is_between(pl.col("age_low"), pl.col("age_high"))
    )
