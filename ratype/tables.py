"""The two tables that drive RAType routing: ``codes.csv`` and ``age_bands.csv``.

``codes.csv`` has one row per MMR RA factor type code listed in the seed's
appendix ("RAF Type Codes", based on the CMS PCUG for the MMR). Each supported
row says which model family and segment the code routes to
(``/work/shared/spec/ratype.md``; evidence in
``research/ratype_segments.md`` §1). Columns:

* ``segment_rule``: the routing rule in words (``community_by_age``, ``INS``,
  ``NE``, ``DI``, ``DNE``, ``graft_community``, ``GI``, ``GNE``,
  ``TRANSPLANT``); ``segment_aged`` / ``segment_nonaged``: the segment the
  rule gives at age >= 65 / < 65 on February 1 (CMS prefixes from the
  V2419P1M / V2823T2M ``%SCOREMAC`` calls and the ESRD V24 coefficient file
  D2423T2M).
* ``dual``: ``full``, ``partial``, ``non``, ``partial_or_non`` (D2/I4: the
  CMS DIAL ``PBDual_*`` factors are all 0, so partial vs non does not matter)
  or ``from_nemcaid`` (ED/E1/E2: the MMR code carries no dual status; NEMCAID
  = Y is taken as full-benefit dual, as the reference API does).
* ``lti``, ``institutional``: the member is long-term institutional.
* ``ltimcaid_applies`` / ``nemcaid_applies``: the code reads the LTIMCAID /
  NEMCAID input (CMS-HCC ``INS_LTIMCAID``; new-enrollee Medicaid cells).
* ``graft_duration`` (``4_9``/``10PL``), ``transplant_month`` (1/2).
* ``normalization_group``: CMS E2118P1M multiplies dialysis and transplant
  scores by DF_DG and functioning-graft scores by DF_POSTG.
* ``age_band_scheme``: which ``age_bands.csv`` scheme names the member's
  demographic cell.
* ``ne_origds_rule``: ``aged_orec1`` (V2419P1M/V2823T2M ``NE_ORIGDS =
  (AGEF>=65)*(OREC='1')``, graft NE ``NE_ORIGDS_G`` in E2118P1M line 471) or
  ``orec1_any_age`` (dialysis NE, E2118P1M line 459 ``NE_ORIGDS =
  (OREC='1')``; the V24 dialysis-NE ORIGDIS cells cover every age band).
* ``orec0_under65_shown``: the OREC shown for a member under 65 whose given
  OREC is 0 (the reference API's display rule; scoring keeps the given OREC).
* ``warning``: a warning put on every member with this code.

``age_bands.csv`` names each age band exactly as it appears in the CMS
demographic cell variable (``CPD_M35_44``, ``NE``'s ``NMCAID_NORIGDIS_NEF65``,
``DNE_ND_PBD_NORIGDIS_NEF85_GT``), per scheme.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

DATA_DIR = Path(__file__).resolve().parent

CODE_COLUMNS = (
    "code", "description", "esrd", "supported", "unsupported_reason", "model_family",
    "segment_rule", "segment_aged", "segment_nonaged", "dual", "institutional", "lti",
    "ltimcaid_applies", "nemcaid_applies", "graft_duration", "transplant_month",
    "normalization_group", "age_band_scheme", "ne_origds_rule", "orec0_under65_shown",
    "warning",
)

# Allowed values per column for supported rows (None allowed where listed).
_ALLOWED = {
    "esrd": {"yes", "no"},
    "supported": {"yes", "no"},
    "model_family": {"CMS-HCC", "ESRD"},
    "segment_rule": {"community_by_age", "INS", "NE", "DI", "DNE", "graft_community", "GI",
                     "GNE", "TRANSPLANT"},
    "segment_aged": {"CNA", "CPA", "CFA", "INS", "NE", "DI", "DNE", "GFA", "GNPA", "GI", "GNE",
                     "TRANSPLANT"},
    "segment_nonaged": {"CND", "CPD", "CFD", "INS", "NE", "DI", "DNE", "GFN", "GNPN", "GI",
                        "GNE", "TRANSPLANT"},
    "dual": {"full", "partial", "non", "partial_or_non", "from_nemcaid", None},
    "institutional": {"yes", "no"},
    "lti": {"yes", "no"},
    "ltimcaid_applies": {"yes", "no"},
    "nemcaid_applies": {"yes", "no"},
    "graft_duration": {"4_9", "10PL", None},
    "transplant_month": {"1", "2", None},
    "normalization_group": {"cms_hcc", "dialysis", "graft"},
    "age_band_scheme": {"ce", "ne", "dialysis_ne"},
    "ne_origds_rule": {"aged_orec1", "orec1_any_age"},
    "orec0_under65_shown": {"1", "2", None},
}

# Age bands are expanded to one row per age up to this age; older ages use the
# row of this age (every scheme's last band is open-ended: 95_GT / 85_GT).
BAND_TABLE_MAX_AGE = 120


class CodeTableError(ValueError):
    """codes.csv or age_bands.csv breaks its own rules (a packaging bug)."""


@cache
def code_table() -> pl.DataFrame:
    """Every MMR RAType code of the seed appendix, all columns as strings (nulls for blanks)."""
    table = pl.read_csv(DATA_DIR / "codes.csv", infer_schema=False)
    if tuple(table.columns) != CODE_COLUMNS:
        raise CodeTableError(f"codes.csv columns {table.columns} != {list(CODE_COLUMNS)}")
    if table["code"].is_duplicated().any():
        raise CodeTableError("codes.csv has duplicate codes")
    supported = table.filter(pl.col("supported") == "yes")
    for column, allowed in _ALLOWED.items():
        rows = table if column in ("esrd", "supported") else supported
        bad = set(rows[column].to_list()) - allowed
        if bad:
            raise CodeTableError(f"codes.csv column {column} has values {sorted(map(str, bad))}")
    unsupported = table.filter(pl.col("supported") == "no")
    if unsupported["unsupported_reason"].is_null().any():
        raise CodeTableError("every unsupported code in codes.csv needs an unsupported_reason")
    return table


@cache
def supported_codes() -> pl.DataFrame:
    """Supported codes with typed routing columns, ready to join on ``code``."""
    yes = pl.lit("yes")
    return code_table().filter(pl.col("supported") == "yes").select(
        "code",
        "model_family",
        "segment_aged",
        "segment_nonaged",
        "dual",
        (pl.col("lti") == yes).alias("code_lti"),
        (pl.col("ltimcaid_applies") == yes).alias("ltimcaid_applies"),
        (pl.col("nemcaid_applies") == yes).alias("nemcaid_applies"),
        "graft_duration",
        pl.col("transplant_month").cast(pl.Int8),
        "normalization_group",
        "age_band_scheme",
        "ne_origds_rule",
        "orec0_under65_shown",
        pl.col("warning").alias("code_warning"),
    )


@cache
def age_band_table() -> pl.DataFrame:
    """``age_bands.csv``: scheme, band, age_min, age_max (null = open), source."""
    bands = pl.read_csv(
        DATA_DIR / "age_bands.csv",
        schema_overrides={"age_min": pl.Int16, "age_max": pl.Int16},
    )
    return bands


@cache
def age_band_lookup() -> pl.DataFrame:
    """One row per (scheme, age 0..BAND_TABLE_MAX_AGE) with its band, for an equi-join."""
    bands = age_band_table()
    lookup = (
        bands.with_columns(
            pl.int_ranges(
                "age_min", pl.col("age_max").fill_null(BAND_TABLE_MAX_AGE) + 1, dtype=pl.Int16
            ).alias("band_age")
        )
        .explode("band_age")
        .select(pl.col("scheme").alias("age_band_scheme"), "band_age", pl.col("band").alias("Age_Band"))
    )
    expected = lookup.group_by("age_band_scheme").agg(pl.len(), pl.col("band_age").n_unique())
    if (expected["len"] != expected["band_age"]).any() or (
        expected["len"] != BAND_TABLE_MAX_AGE + 1
    ).any():
        raise CodeTableError("age_bands.csv bands must cover ages 0.. once per scheme, no overlaps")
    return lookup
