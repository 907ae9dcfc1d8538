"""The two tables that drive RAType routing: ``codes.csv`` and ``age_bands.csv``.

``codes.csv`` has one row per MMR RA factor type code listed in the seed's
appendix ("RAF Type Codes", based on the CMS PCUG for the MMR). Each supported
row says which model family and segment the code routes to
(``docs/scoring.md`` "Segments from RAType", with the evidence). Columns:

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
def routing_table() -> pl.DataFrame:
    """Every code with typed routing columns; row position is the code's lookup index.

    Unsupported codes keep their description and reason; their routing columns
    are null. ``band_offset`` points into ``age_band_array()``.
    """
    yes = pl.lit("yes")
    scheme_offsets = {
        scheme: position * (BAND_TABLE_MAX_AGE + 1) for position, scheme in enumerate(band_schemes())
    }
    return code_table().select(
        "code",
        "description",
        (pl.col("supported") == yes).alias("supported"),
        "unsupported_reason",
        "model_family",
        "segment_aged",
        "segment_nonaged",
        "dual",
        (pl.col("lti") == yes).alias("lti"),
        (pl.col("ltimcaid_applies") == yes).alias("ltimcaid_applies"),
        (pl.col("nemcaid_applies") == yes).alias("nemcaid_applies"),
        "graft_duration",
        pl.col("transplant_month").cast(pl.Int8),
        "normalization_group",
        "age_band_scheme",
        pl.col("age_band_scheme").replace_strict(scheme_offsets, default=None,
                                                 return_dtype=pl.UInt32).alias("band_offset"),
        "ne_origds_rule",
        "orec0_under65_shown",
        "warning",
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
def band_schemes() -> tuple[str, ...]:
    """Scheme names of age_bands.csv in file order."""
    return tuple(age_band_table()["scheme"].unique(maintain_order=True).to_list())


@cache
def age_band_array() -> pl.Series:
    """Band names laid out as [scheme position * (BAND_TABLE_MAX_AGE + 1) + age].

    A gather from this array names a member's band in O(1) per row, where a
    join on (scheme, age) costs a hash of every member row.
    """
    bands = age_band_table()
    lookup = (
        bands.with_columns(
            pl.int_ranges(
                "age_min", pl.col("age_max").fill_null(BAND_TABLE_MAX_AGE) + 1, dtype=pl.Int16
            ).alias("band_age")
        )
        .explode("band_age", empty_as_null=False)
        .filter(pl.col("band_age") <= BAND_TABLE_MAX_AGE)
    )
    layout = pl.DataFrame(
        {
            "scheme": [s for s in band_schemes() for _ in range(BAND_TABLE_MAX_AGE + 1)],
            "band_age": [a for _ in band_schemes() for a in range(BAND_TABLE_MAX_AGE + 1)],
        },
        schema={"scheme": pl.Utf8, "band_age": pl.Int16},
    )
    coverage = lookup.group_by("scheme", "band_age").len()
    if coverage.height != layout.height or (coverage["len"] != 1).any():
        raise CodeTableError("age_bands.csv bands must cover ages 0.. once per scheme, no overlaps")
    return layout.join(lookup, on=["scheme", "band_age"], how="left", maintain_order="left")[
        "band"
    ]
