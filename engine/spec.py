"""Per-model scoring specs: which variable families each segment of a model uses.

The reference tables say *what* the variables are (cells, HCCs, groups,
interactions, counts and their coefficients). This module says *which family of
variables each segment's regression uses*, exactly as CMS's SAS programs list
them, so that one engine serves every model:

* CMS-HCC V24, ``V2419P1M.TXT`` step 2 (``COMM_REGA``, ``COMM_REGD``, ``INST_REG``,
  ``NE_REG``) and the ``%SCOREMAC`` calls (prefixes ``CNA_`` ... ``SNPNE_``).
  ``INST_REG`` has no ``D1..D10P`` in V24.
* CMS-HCC V28, ``V2823T2M.TXT`` lines 146-185 (same lists; ``INST_REG`` ends with
  ``&ADDZ``, so V28 INS has the payment-HCC counts) and the heart patch at
  lines 458-460 (``IF CC223 = 1 AND MAX(CC221, CC222, CC224, CC225, CC226) = 0
  THEN CC223 = 0``), which is V28 only.

``intentionally_absent`` lists, per segment, the variables the engine computes
for every segment of a model but CMS's list for that segment leaves out (for
example ``HF_HCC238_V28`` is in ``INTERRACC_VARSA/D`` but not in
``INTERRACI_VARS``). Any other generated variable must have a coefficient for
the segment; ``tests/engine/test_pitfalls.py::test_pitfall_03_silent_key_mismatch``
walks them all.

ESRD hook: the 2023 ESRD model ("ESRD_V24") plugs in as one more ``ModelSpec``
(segments ``DI DNE GFA GFN GNPA GNPN GI GNE TRANSPLANT``, no ``COUNT`` family)
plus a small module that adds its add-on variables (graft duration, LTI, dual
terms under the pseudo-segments ``FGC FGI TRANSPLANT ACTADJ``) through
``ModelSpec.extra_variables`` and its new-enrollee graft divisor through
``ModelSpec.adjust_rows`` (``ESRD_V24`` below; rules and sources in
``engine/esrd.py``). Its members need ``ModelSpec.member_columns`` (dual, LTI,
graft duration, transplant month, NonAged) carried by ``raw.member_models``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import polars as pl

from engine import esrd

# Variable families (what a segment's regression list is made of).
AGE_SEX = "age_sex"  # continuing-enrollee cell F0_34 ... M95_GT
NE_CELL = "ne_cell"  # new-enrollee cell {N,}MCAID_{N,}ORIGDIS_NE{F,M}{band}
ORIGINALLY_DISABLED = "originally_disabled"  # OriginallyDisabled_Female/Male
INSTITUTIONAL_FLAGS = "institutional_flags"  # LTIMCAID, ORIGDS
HCC = "hcc"  # payment HCCs after edits, patches and hierarchies
INTERACTION = "interaction"  # interactions.csv terms (groups, HCCs, member flags)
COUNT = "count"  # D1..D9, D10P

#: Families that need diagnoses. A segment without any of them (new enrollees)
#: never looks at a member's diagnoses.
DIAGNOSIS_FAMILIES = frozenset({HCC, INTERACTION, COUNT})


@dataclass(frozen=True)
class CcPatch:
    """Set ``cc`` to 0 unless one of ``requires_any`` is present (before hierarchies)."""

    name: str
    cc: int
    requires_any: tuple[int, ...]
    source: str


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    #: the `model` column of raw rows ("V28", "V24", "ESRD_V24") and the members'
    #: model_family it scores; `specs_for_year` takes both from the model's model.json
    label: str
    family: str
    segments: Mapping[str, frozenset[str]]
    #: variable name -> boolean polars expression over member columns, per family.
    flag_variables: Mapping[str, Mapping[str, pl.Expr]] = field(default_factory=dict)
    #: interaction term (as in interactions.csv) -> boolean member column.
    interaction_member_terms: Mapping[str, str] = field(default_factory=dict)
    cc_patches: tuple[CcPatch, ...] = ()
    intentionally_absent: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: hook for add-on variables (ESRD): (member_models, tables) -> frame of
    #: input_index, model, segment, coef_segment, variable.
    extra_variables: Callable[[pl.DataFrame, object], pl.DataFrame] | None = None
    #: derived member columns the model needs beyond ``raw.MEMBER_COLUMNS``: name ->
    #: polars expression over the members frame (ESRD: dual, LTI, graft duration,
    #: NonAged). ``raw.member_models`` evaluates them; a column whose inputs the
    #: members frame lacks is null.
    member_columns: Mapping[str, pl.Expr] = field(default_factory=dict)
    #: hook on this model's raw rows once the buckets are summed (ESRD: new-enrollee
    #: graft divisor): (rows, member_models, model_tables) -> rows, same columns.
    adjust_rows: Callable[[pl.DataFrame, pl.DataFrame, object], pl.DataFrame] | None = None

    def segments_with(self, family: str) -> list[str]:
        return sorted(s for s, fams in self.segments.items() if family in fams)


# AGESEXV2.TXT: ORIGDS = (OREC='1')*(DISABL=0); main programs:
# OriginallyDisabled_Female = ORIGDS*(SEX='2'); OriginallyDisabled_Male = ORIGDS*(SEX='1').
_ORIGINALLY_DISABLED = {
    "OriginallyDisabled_Female": pl.col("origds") & (pl.col("sex") == "F"),
    "OriginallyDisabled_Male": pl.col("origds") & (pl.col("sex") == "M"),
}
# INST_REG = AGESEXV LTIMCAID ORIGDS ... (V2419P1M and V2823T2M).
_INSTITUTIONAL_FLAGS = {
    "LTIMCAID": pl.col("ltimcaid"),
    "ORIGDS": pl.col("origds"),
}
_CMS_HCC_FLAGS = {
    ORIGINALLY_DISABLED: _ORIGINALLY_DISABLED,
    INSTITUTIONAL_FLAGS: _INSTITUTIONAL_FLAGS,
}
# DISABL = (AGEF < 65 & OREC ne "0") (AGESEXV2.TXT), used as an interaction term.
_CMS_HCC_MEMBER_TERMS = {"DISABL": "disabl"}

_AGED_COMMUNITY = frozenset({AGE_SEX, ORIGINALLY_DISABLED, HCC, INTERACTION, COUNT})
_DISABLED_COMMUNITY = frozenset({AGE_SEX, HCC, INTERACTION, COUNT})
_NEW_ENROLLEE = frozenset({NE_CELL})


def _cms_hcc_segments(institutional: frozenset[str]) -> dict[str, frozenset[str]]:
    return {
        "CNA": _AGED_COMMUNITY,
        "CFA": _AGED_COMMUNITY,
        "CPA": _AGED_COMMUNITY,
        "CND": _DISABLED_COMMUNITY,
        "CFD": _DISABLED_COMMUNITY,
        "CPD": _DISABLED_COMMUNITY,
        "INS": institutional,
        "NE": _NEW_ENROLLEE,
        "SNPNE": _NEW_ENROLLEE,
    }


def _per_segment(aged: set[str], disabled: set[str], institutional: set[str]) -> dict:
    return {
        **{s: frozenset(aged) for s in ("CNA", "CFA", "CPA")},
        **{s: frozenset(disabled) for s in ("CND", "CFD", "CPD")},
        "INS": frozenset(institutional),
    }


# V28, V2823T2M.TXT: INTERRACC_VARSA (aged community) lacks gSubUseDisorder_gPsych_V28;
# neither community list has the DISABLED_* terms; INTERRACI_VARS (institutional)
# lacks HF_HCC238_V28 and gSubUseDisorder_gPsych_V28.
_V28_DISABLED_TERMS = {
    "DISABLED_CANCER_V28",
    "DISABLED_NEURO_V28",
    "DISABLED_HF_V28",
    "DISABLED_CHR_LUNG_V28",
    "DISABLED_ULCER_V28",
}
_V28_ABSENT = _per_segment(
    aged=_V28_DISABLED_TERMS | {"gSubUseDisorder_gPsych_V28"},
    disabled=_V28_DISABLED_TERMS,
    institutional={"HF_HCC238_V28", "gSubUseDisorder_gPsych_V28"},
)

# V24, V2419P1M.TXT: community lists have HCC47_gCancer DIABETES_CHF CHF_gCopdCF
# HCC85_gRenal_V24 gCopdCF_CARD_RESP_FAIL HCC85_HCC96 (+ gSubstanceUseDisorder_gPsych
# for the disabled); INST_REG has the DISABLED_* and the institutional terms.
_V24_INSTITUTIONAL_ONLY = {
    "DISABLED_HCC85",
    "DISABLED_PRESSURE_ULCER",
    "DISABLED_HCC161",
    "DISABLED_HCC39",
    "DISABLED_HCC77",
    "DISABLED_HCC6",
    "SEPSIS_PRESSURE_ULCER",
    "SEPSIS_ARTIF_OPENINGS",
    "ART_OPENINGS_PRESS_ULCER",
    "gCopdCF_ASP_SPEC_B_PNEUM",
    "ASP_SPEC_B_PNEUM_PRES_ULC",
    "SEPSIS_ASP_SPEC_BACT_PNEUM",
    "SCHIZOPHRENIA_gCopdCF",
    "SCHIZOPHRENIA_CHF",
    "SCHIZOPHRENIA_SEIZURES",
}
_V24_ABSENT = _per_segment(
    aged=_V24_INSTITUTIONAL_ONLY | {"gSubstanceUseDisorder_gPsych"},
    disabled=_V24_INSTITUTIONAL_ONLY,
    institutional={
        "HCC47_gCancer",
        "HCC85_gRenal_V24",
        "HCC85_HCC96",
        "gSubstanceUseDisorder_gPsych",
    },
)

V28_HEART_PATCH = CcPatch(
    name="v28_heart_patch",
    cc=223,
    requires_any=(221, 222, 224, 225, 226),
    source="V2823T2M.TXT: IF CC223 = 1 AND MAX(CC221, CC222, CC224, CC225, CC226) = 0 "
    "THEN CC223 = 0 (before %HIERMAC)",
)

CMS_HCC_V28 = ModelSpec(
    model_id="cms_hcc_v28",
    label="V28",
    family="CMS-HCC",
    segments=_cms_hcc_segments(frozenset({AGE_SEX, INSTITUTIONAL_FLAGS, HCC, INTERACTION, COUNT})),
    flag_variables=_CMS_HCC_FLAGS,
    interaction_member_terms=_CMS_HCC_MEMBER_TERMS,
    cc_patches=(V28_HEART_PATCH,),
    intentionally_absent=_V28_ABSENT,
)

CMS_HCC_V24 = ModelSpec(
    model_id="cms_hcc_v24",
    label="V24",
    family="CMS-HCC",
    segments=_cms_hcc_segments(frozenset({AGE_SEX, INSTITUTIONAL_FLAGS, HCC, INTERACTION})),
    flag_variables=_CMS_HCC_FLAGS,
    interaction_member_terms=_CMS_HCC_MEMBER_TERMS,
    cc_patches=(),
    intentionally_absent=_V24_ABSENT,
)

# ESRD V24 (engine/esrd.py): continuing segments list cells, HCCs and interactions
# (V24_CE_Relative_Factors.csv has no count rows); NE and transplant segments take no
# diagnoses. Their flags, add-ons, NE cells and the GNE divisor come from engine.esrd.
_ESRD_CONTINUING = frozenset({AGE_SEX, HCC, INTERACTION})

ESRD_V24 = ModelSpec(
    model_id=esrd.MODEL_ID,
    label=esrd.LABEL,
    family=esrd.FAMILY,
    segments={
        **{s: _ESRD_CONTINUING for s in esrd.CONTINUING_SEGMENTS},
        **{s: frozenset() for s in esrd.NO_DIAGNOSIS_SEGMENTS},
    },
    interaction_member_terms=esrd.INTERACTION_MEMBER_TERMS,
    intentionally_absent=esrd.INTENTIONALLY_ABSENT,
    extra_variables=esrd.extra_variables,
    member_columns=esrd.MEMBER_COLUMNS,
    adjust_rows=esrd.adjust_rows,
)

#: Registered models.
MODEL_SPECS: dict[str, ModelSpec] = {
    CMS_HCC_V28.model_id: CMS_HCC_V28,
    CMS_HCC_V24.model_id: CMS_HCC_V24,
    ESRD_V24.model_id: ESRD_V24,
}


#: (model_id, label, family) -> the spec bound to that identity (one object per identity,
#: so the per-spec caches of engine.raw stay warm).
_BOUND: dict[tuple[str, str, str], ModelSpec] = {}


def specs_for_year(models_of_year: list[str], identities: Mapping | None = None) -> list[ModelSpec]:
    """Specs of the year's models that this engine implements, in the year's order.

    ``identities`` (model_id -> ``reference.store.ModelIdentity``, from model.json)
    name each model's raw-row label and member family; without them the specs'
    own (the bundled model.json values) stand.
    """
    out = []
    for model_id in models_of_year:
        spec = MODEL_SPECS.get(model_id)
        if spec is None:
            continue
        identity = (identities or {}).get(model_id)
        if identity is not None and (identity.label, identity.family) != (spec.label, spec.family):
            key = (model_id, identity.label, identity.family)
            if key not in _BOUND:
                _BOUND[key] = replace(spec, label=identity.label, family=identity.family)
            spec = _BOUND[key]
        out.append(spec)
    return out
