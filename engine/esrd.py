"""ESRD members: the 2023 ESRD model ("ESRD_V24") as one more ``ModelSpec``.

``engine.spec.ESRD_V24`` registers the model; this module holds what the
generic stages do not already do: the ESRD demographic terms and add-ons
(``extra_variables``), the new-enrollee graft divisor (``adjust_rows``), the
member columns they read (``MEMBER_COLUMNS``) and the variables CMS's tables
leave out per segment (``INTENTIONALLY_ABSENT``). Every name and number comes
from ``reference/data/models/esrd_v24/`` (built from CMS's ESRD V24 package,
``ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal/``); the
rules below say which row applies to which member.

Sources, read as specification (no code copied):

* CMS tables: ``V24_CE_Relative_Factors.csv`` (columns ``DIAL`` = ``DI``,
  ``G_COMM_FBD_GE65`` = ``GFA``, ``G_COMM_FBD_LT65`` = ``GFN``,
  ``G_COMM_ND_PBD_GE65`` = ``GNPA``, ``G_COMM_ND_PBD_LT65`` = ``GNPN``,
  ``GRAFT_INST`` = ``GI``), ``V24_NE_Dialysis_Relative_Factors.csv`` (``DNE``),
  ``V24_NE_Graft_Relative_Factors.csv`` (``GNE``), ``V24_Graft_Duration_Scores.csv``
  (pseudo-segment ``FGC``), ``V24_CE_Institutional_Graft_Scores.csv`` (``FGI``,
  ``FGI_`` prefix dropped), ``V24_Transplant_Scores.csv`` (``TRANSPLANT``),
  ``V24_Interactions.csv`` (``NONAGED_* = NonAged x term``), and the ActAdj
  divisors of CMS's SAS coefficient file D2423T2M (``ACTADJ``: ``ActAdj_DUR4_9``
  0.905, ``ActAdj_DUR10PL`` 0.698), see ``reference/SOURCES.md``.
* risk-compose 1.0.2, a port of CMS's ESRD V24 Python transform:
  ``_predictors.py::_derive_esrd_subject_flags`` / ``_derive_esrd_v24_ce_flags`` /
  ``_derive_esrd_v24_ne_factor_flags`` / ``_esrd_v24_ne_prefix`` /
  ``_derive_esrd_ne_age_sex_cell`` / ``_derive_ne_age_sex_cell`` (flags and
  cells) and ``_scoring.py::_append_esrd_v24_scores`` (how the score families
  are put together).
* CMS SAS ESRD V21 ``E2118P1M`` (older model, same structure): ``DF_DG``
  multiplies dialysis *and transplant* scores, ``DF_POSTG`` every functioning
  graft score; ``NE_ORIGDS = (OREC='1')`` for dialysis NE, ``NE_ORIGDS_G =
  (AGEF>=65)*(OREC='1')`` for graft NE; ``Originally_ESRD_* = (OREC IN
  ('2','3'))*(SEX)*(AGEF>=65)``; transplant bumps added to the base score.

Member flags (from ``ratype.normalize``, routed by ``ratype/codes.csv``):
``fbd``/``pbd`` (full / partial benefit dual; ED/E1/E2 take ``fbd`` from NEMCAID,
``docs/scoring.md`` "Segments from RAType"), ``lti`` (I3 I4 I1 I5..IA), ``graft_duration`` (``4_9``/``10PL``),
``transplant_month`` (G1 1, G2 2), ``ne_origds``. Derived here: ``Aged`` = age
>= 65 and ``NonAged`` = age < 65 on February 1 (both ports; V21 used DISABL,
which differs only for OREC 0 under 65), ``NE_Aged`` = age >= 65 or (age 64 and
OREC 0) (risk-compose ``ne_aged``; the same as the ``ne_aged`` column).

What each segment's raw score is made of (one raw row per member):

=============  ==================================================================
segment        variables (coefficient segment in brackets)
=============  ==================================================================
DI  (D1 D2     age/sex cell, HCCs, interactions incl. ``NONAGED_*`` [DI];
I3 I4)         ``OriginallyDisabled_{sex}`` (OREC 1, aged), ``Originally_ESRD_{sex}``
               (OREC 2/3, aged), ``LTI_{Aged|NonAged}`` (I3/I4),
               ``FBDual_{sex}_{Aged|NonAged}`` (full dual), ``PBDual_*`` (partial
               dual: all 0, and never fires since D2/I4 do not tell partial from
               non-dual) [DI]
DNE (ED)       one cell ``{FBD|ND_PBD}_{ORIGDIS|NORIGDIS}_NE{sex}{band}`` [DNE];
               ORIGDIS = OREC 1 at any age; 64 with OREC 0 uses 65_69; no HCCs
GFA GFN GNPA   age/sex cell, HCCs, interactions, ``OriginallyDisabled_*`` (GFA,
GNPN (C3..C8)  GNPA) [segment]; ``{GE65|LT65}_DUR{4_9|10PL}_{FBD|ND_PBD}`` [FGC];
               ``PBD_{GE65|LT65}_flag`` for partial duals (C4/C7) [FGC]
GI  (I5..IA,   age/sex cell, HCCs, interactions incl. ``NONAGED_*``, ``ORIGDS`` (0)
I1 as I7)      [GI]; ``{GE65|LT65}_DUR..._{FBD|ND_PBD}``, ``LTI_{GE65|LT65}``,
               ``PBD_{GE65|LT65}_flag`` for partial duals (I6/I9) [FGI]
GNE (E1 E2)    (cell ``{FBD|ND_PBD}_{ORIGDIS|NORIGDIS}_G_NE{sex}{band}`` [GNE] +
               ``{GE65|LT65 by NE_Aged}_DUR..._{FBD|ND_PBD}`` [FGC]) / ActAdj
               (0.905 for 4-9, 0.698 for 10+) [ACTADJ]: each bucket is divided and
               rounded half away from zero to 3 decimals (all GNE terms are in
               the demographic-interaction bucket, so the total is the rounded
               quotient of the sum); ``RA_Variable`` ends with ``ActAdj_DUR...``
TRANSPLANT     flat ``TRANSPLANT_KIDNEY_ONLY_1M`` (G1) / ``_2M`` (G2) [TRANSPLANT]
=============  ==================================================================

Buckets come from ``variables.csv``: cells of the continuing segments are
``demographic``; NE cells, dual, LTI, originally-disabled/ESRD terms, graft
duration, PBD flags and transplant scores are ``demographic_interaction``;
HCCs ``disease``; HCC interactions ``disease_interaction``; ``NONAGED_*``
``disability_interaction``. No count variables. Renal HCC134-138 (and
``HCC85_gRenal_V24``) carry 0 in every CMS column, so they add nothing and are
not listed in ``RA_Variable``.

Composition checks against the two sources (all agree unless noted):

* risk-compose adds the community duration term and the PBD flag only when the
  base score is nonzero (``if base_total:``); every GFA/GFN/GNPA/GNPN age/sex
  cell is positive, so that never changes a score.
* risk-compose scores GNE with a NE cell chosen by ``full_benefit_dual_flag`` and
  no PBD flag; it divides each term by ActAdj and rounds the sum to 3 decimals.
  Our quotient is exact integer arithmetic; ``(thousandths * 1000) / 905`` and
  ``/ 698`` can never fall on a half (905 and 349 are odd), so the rounding mode
  does not matter.
* Age 64 with OREC 0: ESRD V21 SAS recodes AGEF to 65 for *every* term
  (``IF AGEF=64 & OREC='0' THEN AGEF=65``); the V24 ports use the plain age for
  continuing-enrollee cells and flags and the 65 cell only for new enrollees.
  We follow the V24 ports (the parity target).
* Dual status of ED/E1/E2: CMS's input is FBDual; the MMR code does not carry it,
  so ``ratype`` takes it from NEMCAID (``docs/scoring.md`` "Segments from RAType"), an approximation.
* Peer check: ``tests/parity`` compares every raw bucket with risk-compose's
  ``esrd_v24_2026`` on 2,200 generated PY2026 members (all agree when this was
  written).
* I1 has no 2023 ESRD mapping in CMS's documents; ``ratype`` routes it as I7
  (GI, non-dual, 4-9 months) with a warning (``docs/scoring.md`` "Segments from RAType", I1).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from engine.blend import round_half_away_from_zero
from engine.buckets import BUCKETS
from engine.cells import MAX_AGE, band_high, name_parts, spread_over_ages
from engine.memo import derived

MODEL_ID = "esrd_v24"
LABEL = "ESRD_V24"
FAMILY = "ESRD"

#: Continuing-enrollee segments (cells, HCCs, interactions) and those without diagnoses.
CONTINUING_SEGMENTS = ("DI", "GFA", "GFN", "GNPA", "GNPN", "GI")
NO_DIAGNOSIS_SEGMENTS = ("DNE", "GNE", "TRANSPLANT")
NE_GRAFT_SEGMENT = "GNE"
ACTADJ_SEGMENT = "ACTADJ"

_AGE = pl.col("age").cast(pl.Int32)
_OREC = pl.col("orec").cast(pl.Int32)

#: Member columns ``raw.member_models`` carries for this model (``ModelSpec.member_columns``).
MEMBER_COLUMNS: Mapping[str, pl.Expr] = {
    "fbd": pl.col("fbd").cast(pl.Boolean),
    "pbd": pl.col("pbd").cast(pl.Boolean),
    "lti": pl.col("lti").cast(pl.Boolean),
    "graft_duration": pl.col("graft_duration").cast(pl.Utf8),
    "transplant_month": pl.col("transplant_month").cast(pl.Int32),
    # V24_Interactions.csv term "NonAged" (both ports: age < 65).
    "nonaged": _AGE < 65,
}

#: Interaction term -> member column (``ModelSpec.interaction_member_terms``).
INTERACTION_MEMBER_TERMS: Mapping[str, str] = {"NonAged": "nonaged"}

#: Add-on rules: which variable each segment gets, under which coefficient
#: segment, when. ``when`` names a member condition (``CONDITIONS``); the
#: template's ``{...}`` are member words (``_words``). A generated name that the
#: coefficient segment does not list contributes nothing (coefficients.py);
#: tests/esrd checks that every name generated here is listed.
ADDON_RULES = pl.DataFrame(
    [
        # V24_CE_Relative_Factors.csv DIAL / G_COMM_*_GE65 columns; E2118P1M ORIGDS*(SEX)
        ("DI", "DI", "OriginallyDisabled_{sex}", "origds"),
        ("GFA", "GFA", "OriginallyDisabled_{sex}", "origds"),
        ("GNPA", "GNPA", "OriginallyDisabled_{sex}", "origds"),
        # DIAL column; E2118P1M Originally_ESRD_* = (OREC IN ('2','3'))*(SEX)*(AGEF>=65)
        ("DI", "DI", "Originally_ESRD_{sex}", "orig_esrd"),
        # DIAL column; risk-compose _derive_esrd_v24_ce_flags: LTI_Aged = LTI*Aged ...
        ("DI", "DI", "LTI_{aged}", "lti"),
        ("DI", "DI", "FBDual_{sex}_{aged}", "fbd"),
        ("DI", "DI", "PBDual_{sex}_{aged}", "pbd"),
        # GRAFT_INST column "ORIGDIS" (coefficient 0), stored as ORIGDS
        ("GI", "GI", "ORIGDS", "origds"),
        # V24_Graft_Duration_Scores.csv; _append_esrd_v24_scores g_comm_{dual}_{age}_{dur}
        ("GFA", "FGC", "{ge65}_DUR{dur}_{dual}", "always"),
        ("GFN", "FGC", "{ge65}_DUR{dur}_{dual}", "always"),
        ("GNPA", "FGC", "{ge65}_DUR{dur}_{dual}", "always"),
        ("GNPN", "FGC", "{ge65}_DUR{dur}_{dual}", "always"),
        ("GNPA", "FGC", "PBD_{ge65}_flag", "pbd"),
        ("GNPN", "FGC", "PBD_{ge65}_flag", "pbd"),
        # V24_CE_Institutional_Graft_Scores.csv (FGI_ prefix dropped); graft_inst_*
        ("GI", "FGI", "{ge65}_DUR{dur}_{dual}", "always"),
        ("GI", "FGI", "LTI_{ge65}", "lti"),
        ("GI", "FGI", "PBD_{ge65}_flag", "pbd"),
        # graft_ne_{ne_aged}_{dur}_{dual}: duration term by NE_Aged, no PBD flag
        ("GNE", "FGC", "{ne_ge65}_DUR{dur}_{dual}", "always"),
        # V24_Transplant_Scores.csv; G1 -> 1M, G2 -> 2M (= 3M)
        ("TRANSPLANT", "TRANSPLANT", "TRANSPLANT_KIDNEY_ONLY_{month}M", "always"),
    ],
    schema={"segment": pl.Utf8, "coef_segment": pl.Utf8, "template": pl.Utf8, "when": pl.Utf8},
    orient="row",
)

#: Member conditions a rule can name.
CONDITIONS: Mapping[str, pl.Expr] = {
    "always": pl.lit(True),
    "origds": pl.col("origds").fill_null(False),  # OREC 1 and aged (AGESEXV2 ORIGDS)
    "orig_esrd": _OREC.is_in([2, 3]) & (_AGE >= 65),
    "lti": pl.col("lti").fill_null(False),
    "fbd": pl.col("fbd").fill_null(False),
    "pbd": pl.col("pbd").fill_null(False),
}

#: Generated by the generic interaction family but left blank by CMS for the segment
#: (V24_CE_Relative_Factors.csv empty cells). tests/esrd keeps this list honest.
_GI_ONLY = {
    "ART_OPENINGS_PRESSURE_ULCER_V24",
    "ASP_SPEC_B_PNEUM_PRES_ULC_V24",
    "SCHIZOPHRENIA_CHF",
    "SCHIZOPHRENIA_SEIZURES",
    "SCHIZOPHRENIA_gCopdCF",
    "SEPSIS_ARTIF_OPENINGS",
    "SEPSIS_ASP_SPEC_BACT_PNEUM",
    "SEPSIS_PRESSURE_ULCER_V24",
    "gCopdCF_ASP_SPEC_B_PNEUM",
}
_GI_NONAGED = {
    "NONAGED_HCC85",
    "NONAGED_PRESSURE_ULCER_V24",
    "NONAGED_HCC161",
    "NONAGED_HCC39",
    "NONAGED_HCC77",
}
_DI_NONAGED = {
    "NONAGED_HCC110",
    "NONAGED_HCC176",
    "NONAGED_HCC34",
    "NONAGED_HCC46",
    "NONAGED_gSubUseDs_gPsych",
}
# GFA/GNPA members are aged, so no NONAGED_* fires there; GFN/GNPN list none of them.
INTENTIONALLY_ABSENT: Mapping[str, frozenset[str]] = {
    "DI": frozenset(_GI_ONLY | _GI_NONAGED | {"gSubUseDs_gPsych_V24"}),
    "GFA": frozenset(_GI_ONLY | {"gSubUseDs_gPsych_V24"}),
    "GNPA": frozenset(_GI_ONLY | {"gSubUseDs_gPsych_V24"}),
    "GFN": frozenset(_GI_ONLY | _GI_NONAGED | _DI_NONAGED | {"NONAGED_HCC6"}),
    "GNPN": frozenset(_GI_ONLY | _GI_NONAGED | _DI_NONAGED | {"NONAGED_HCC6"}),
    "GI": frozenset(
        _DI_NONAGED | {"HCC47_gCancer", "HCC85_HCC96", "HCC85_gRenal_V24", "gSubUseDs_gPsych_V24"}
    ),
}

_NE_CELL_NAME = r"^(FBD|ND_PBD)_(ORIGDIS|NORIGDIS)_(G_)?NE([FM])(\d+)(?:_(\d+|GT))?$"
_OUT_COLUMNS = ["input_index", "model", "segment", "coef_segment", "variable", "family"]


def _words() -> dict[str, pl.Expr]:
    """Template placeholder -> member word (CMS's spelling in the variable names)."""
    aged = _AGE >= 65
    ne_aged = aged | ((_AGE == 64) & (_OREC == 0))
    return {
        "{sex}": pl.when(pl.col("sex") == "F").then(pl.lit("Female")).otherwise(pl.lit("Male")),
        "{aged}": pl.when(aged).then(pl.lit("Aged")).otherwise(pl.lit("NonAged")),
        "{ge65}": pl.when(aged).then(pl.lit("GE65")).otherwise(pl.lit("LT65")),
        "{ne_ge65}": pl.when(ne_aged).then(pl.lit("GE65")).otherwise(pl.lit("LT65")),
        "{dual}": pl.when(pl.col("fbd").fill_null(False))
        .then(pl.lit("FBD"))
        .otherwise(pl.lit("ND_PBD")),
        "{dur}": pl.col("graft_duration").cast(pl.Utf8),
        "{month}": pl.col("transplant_month").cast(pl.Utf8),
    }


def _condition_holds() -> pl.Expr:
    """The rule's ``when`` condition evaluated for the member (one chain over CONDITIONS)."""
    expr = pl.lit(False)
    for name, condition in reversed(list(CONDITIONS.items())):
        expr = pl.when(pl.col("when") == name).then(condition).otherwise(expr)
    return expr


def addon_variables(members: pl.DataFrame) -> pl.DataFrame:
    """``_OUT_COLUMNS`` for the ``ADDON_RULES`` that hold for each member."""
    variable = pl.col("template")
    for placeholder, word in _words().items():
        variable = variable.str.replace_all(placeholder, word.fill_null("?"), literal=True)
    return (
        members.join(ADDON_RULES, on="segment", how="inner")
        .filter(_condition_holds())
        .with_columns(variable.alias("variable"))
        # a placeholder without a member value ("?") names nothing: no variable
        .filter(~pl.col("variable").str.contains("?", literal=True))
        .with_columns(pl.lit("addon").alias("family"))
        .select(_OUT_COLUMNS)
    )


def ne_cells(variables: pl.DataFrame) -> pl.DataFrame:
    """Cached ``_ne_cells`` (built once per variables table)."""
    return derived(variables, "esrd_ne_cells", lambda: _ne_cells(variables))


def _ne_cells(variables: pl.DataFrame) -> pl.DataFrame:
    """``segment, fbd, ne_origds, sex, ne_age, variable`` from the ESRD ``ne_cell`` names.

    ``{FBD|ND_PBD}_{ORIGDIS|NORIGDIS}_NE{sex}{band}`` -> DNE,
    ``..._G_NE{sex}{band}`` -> GNE (V24_NE_*_Relative_Factors.csv).
    """
    parsed = (
        name_parts(variables, "ne_cell", _NE_CELL_NAME)
        .filter(pl.col("1").is_not_null())
        .select(
            "variable",
            pl.when(pl.col("3").is_null()).then(pl.lit("DNE")).otherwise(pl.lit(NE_GRAFT_SEGMENT))
            .alias("segment"),
            (pl.col("1") == "FBD").alias("fbd"),
            (pl.col("2") == "ORIGDIS").alias("ne_origds"),
            pl.col("4").alias("sex"),
            pl.col("5").cast(pl.Int32).alias("age_low"),
            band_high(pl.col("5"), pl.col("6")).alias("age_high"),
        )
    )
    return spread_over_ages(parsed, "ne_age").select(
        "segment", "fbd", "ne_origds", "sex", "ne_age", "variable"
    )


def ne_cell_variables(members: pl.DataFrame, variables: pl.DataFrame) -> pl.DataFrame:
    """The DNE / GNE cell of each new enrollee.

    Age 64 with OREC 0 takes the 65 cell (DNE 65_69, GNE 65): E2118P1M ``IF AGEF=64
    & OREC='0' THEN AGEF=65``; risk-compose ``_derive_esrd_ne_age_sex_cell`` and
    ``_derive_ne_age_sex_cell``. ORIGDIS is the member's ``ne_origds`` (OREC 1 at any
    age for ED, OREC 1 and aged for E1/E2: ``ratype/codes.csv`` ``ne_origds_rule``).
    """
    ne_members = members.filter(pl.col("segment").is_in(["DNE", NE_GRAFT_SEGMENT])).with_columns(
        pl.when((_AGE == 64) & (_OREC == 0)).then(pl.lit(65)).otherwise(_AGE).clip(0, MAX_AGE)
        .cast(pl.Int32).alias("ne_age"),
        pl.col("fbd").fill_null(False),
        pl.col("ne_origds").fill_null(False),
    )
    return (
        ne_members.join(ne_cells(variables), on=["segment", "fbd", "ne_origds", "sex", "ne_age"])
        .with_columns(pl.col("segment").alias("coef_segment"), pl.lit("ne_cell").alias("family"))
        .select(_OUT_COLUMNS)
    )


def extra_variables(members: pl.DataFrame, model_tables: object) -> pl.DataFrame:
    """``ModelSpec.extra_variables``: ESRD add-ons and new-enrollee cells."""
    members = members.with_columns(pl.col("input_index").cast(pl.UInt32))
    return pl.concat(
        [addon_variables(members), ne_cell_variables(members, model_tables.variables)],
        how="vertical_relaxed",
    )


def actadj_divisors(model_tables: object) -> pl.DataFrame:
    """``graft_duration, actadj_milli`` from the ACTADJ rows (``ActAdj_DUR4_9`` -> ``4_9``)."""
    return derived(model_tables, "actadj_divisors", lambda: model_tables.coefficients.filter(pl.col("segment") == ACTADJ_SEGMENT).select(
        pl.col("variable").str.strip_prefix("ActAdj_DUR").alias("graft_duration"),
        pl.col("variable").alias("actadj_variable"),
        pl.col("coefficient_milli").cast(pl.Int64).alias("actadj_milli"),
    ))




def adjust_rows(rows: pl.DataFrame, member_models: pl.DataFrame, model_tables: object) -> pl.DataFrame:
    """``ModelSpec.adjust_rows``: GNE rows divided by ActAdj (module docstring).

    Each bucket becomes ``round(bucket / ActAdj)`` in thousandths (half away from
    zero); the total is the sum of the new buckets. A GNE member whose duration has
    no ActAdj row would be a reference bug: it raises rather than scoring undivided.
    """
    divisors = (
        member_models.filter(pl.col("segment") == NE_GRAFT_SEGMENT)
        .select(pl.col("input_index").cast(pl.UInt32), "graft_duration")
        .join(actadj_divisors(model_tables), on="graft_duration", how="left")
    )
    if divisors.is_empty():
        return rows
    if divisors["actadj_milli"].null_count():
        bad = divisors.filter(pl.col("actadj_milli").is_null())["graft_duration"].unique().to_list()
        raise ValueError(f"no ACTADJ divisor in esrd_v24 coefficients for graft duration {bad}")
    keyed = rows.with_columns(pl.col("input_index").cast(pl.UInt32)).join(
        divisors.select("input_index", "actadj_variable", "actadj_milli"), on="input_index", how="left"
    )
    divided = pl.col("actadj_milli").is_not_null()
    return (
        keyed.with_columns(
            [
                pl.when(divided)
                .then(round_half_away_from_zero(pl.col(b) * 1000, pl.col("actadj_milli")))
                .otherwise(pl.col(b))
                .alias(b)
                for b in BUCKETS
            ]
        )
        .with_columns(
            pl.when(divided)
            .then(pl.sum_horizontal(*BUCKETS))
            .otherwise(pl.col("total"))
            .alias("total"),
            pl.when(divided & (pl.col("ra_variable") != ""))
            .then(pl.col("ra_variable") + pl.lit(", ") + pl.col("actadj_variable"))
            .otherwise(pl.col("ra_variable"))
            .alias("ra_variable"),
        )
        .select(rows.columns)
    )
