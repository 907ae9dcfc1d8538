"""Peer adapters: score a generated population with hccinfhir 0.4.0 and risk-compose 1.0.2.

Each adapter returns one polars row per member per model:

    MemberID, model ('V28' | 'V24' | 'ESRD_V24'), peer ('hccinfhir' | 'risk_compose'),
    segment (ours, e.g. 'CPD', 'INS', 'NE', 'DI', 'GNPA'...), family (the peer's
    score family / prefix), age,
    demographic, demographic_interaction, disease, disease_count,
    disease_interaction, disability_interaction, total       (Int64, thousandths)
    peer_total (Float64, the peer's own total), hccs (List[Int64], after
    hierarchies), variables (List[String], the peer's scored variables)

The six buckets are the peer's itemised coefficients put into our buckets by
variable name (`bucket_of`), following `scoring.md` "Buckets". Neither peer
reports our buckets itself; the test compares them anyway, because a term in
the wrong bucket is a bug.

What each peer is given (so a difference is never an input mismatch):

* age: the exact completed years on Feb 1 of the payment year (CMS DATE_ASOF),
  computed here from DOB; risk-compose computes the same itself from DOB with
  cutoff 2026-02-01 (only PY2026 exists in it).
* segment: hccinfhir gets `prefix_override` (CNA_ ... INS_, NE_), so it never
  infers one; risk-compose computes every CMS column (as CMS's software does)
  and we read the one of the member's segment.
* LTIMCAID / NEMCAID: hccinfhir derives both from `dual_elgbl_cd` (any
  Medicaid code), so LTIMCAID=Y (RAType I) or NEMCAID=Y (RAType E) is passed as
  dual code '02'; risk-compose has its own `limited_income_medicaid_flag`
  (read as LTIMCAID) and `new_enrollee_medicaid_flag`.
* OREC as sent. Diagnoses: only those with ThruDOS in the collection year,
  cleaned (trim, upper, no dots).
* hccinfhir data files: dx->CC `ra_dx_to_cc_{2025|2026|2027}.csv` for
  PY2024/2025/2026 (the vintage our reference data uses, see population.py), coefficients and
  hierarchies `*_2026.csv` (the V24 and V28 coefficient rows are identical in
  its 2025 and 2026 files), edits `ra_dx_edits.csv`, `switch_edits=True`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from tests.parity.population import (
    HCCINFHIR_MAPPING_YEAR,
    Population,
    age_on_feb1,
    in_year_codes,
)

BUCKETS = [
    "demographic",
    "demographic_interaction",
    "disease",
    "disease_count",
    "disease_interaction",
    "disability_interaction",
]

PEER_SCHEMA = {
    "MemberID": pl.String,
    "model": pl.String,
    "peer": pl.String,
    "segment": pl.String,
    "family": pl.String,
    "age": pl.Int64,
    **{b: pl.Int64 for b in BUCKETS},
    "total": pl.Int64,
    "peer_total": pl.Float64,
    "hccs": pl.List(pl.Int64),
    "variables": pl.List(pl.String),
}

_CE_CELL = re.compile(r"^[FM](0_34|35_44|45_54|55_59|60_64|65_69|70_74|75_79|80_84|85_89|90_94|95_GT)$")
_HCC = re.compile(r"^(HCC)?(\d+)$", re.IGNORECASE)
_COUNT = re.compile(r"^D([1-9]|10P)$")
_DEMO_INTERACTION = re.compile(
    r"^(OriginallyDisabled_|Originally_ESRD_|LTIMCAID$|ORIGDS$|ORIGDIS$|N?MCAID_N?ORIGDIS_|"
    r"(FBD|ND_PBD)_N?ORIGDIS_|FBDual_|PBDual_|LTI_|FGC_|FGI_|GE65_DUR|LT65_DUR|PBD_|"
    r"TRANSPLANT_)",
    re.IGNORECASE,
)


def bucket_of(variable: str) -> str:
    """Our response bucket for an unprefixed CMS variable name (scoring.md 'Buckets')."""
    if _CE_CELL.match(variable):
        return "demographic"
    if _HCC.match(variable):
        return "disease"
    if _COUNT.match(variable):
        return "disease_count"
    if _DEMO_INTERACTION.match(variable):
        return "demographic_interaction"
    if variable.upper().startswith(("DISABLED_", "NONAGED_")):
        return "disability_interaction"
    return "disease_interaction"


def segment_of(ratype: str, age: int) -> str:
    """Our CMS-HCC segment for a supported RAType (docs/scoring.md "Segments from RAType")."""
    if ratype == "I":
        return "INS"
    if ratype == "E":
        return "NE"
    return {"CN": "CN", "CP": "CP", "CF": "CF"}[ratype] + ("A" if age >= 65 else "D")


def _sex(gender: str) -> str:
    return {"1": "M", "2": "F"}.get(gender.strip().upper(), gender.strip().upper())


def _milli(x: float) -> int:
    return round(x * 1000)


def _member_dicts(pop: Population) -> list[dict]:
    return pop.members.to_dicts()


# --------------------------------------------------------------------- hccinfhir


@dataclass
class _HccinfhirData:
    dx_to_cc: dict
    coefficients: dict
    hierarchies: dict
    edits: dict


def _hccinfhir_data(payment_year: int) -> _HccinfhirData:
    from hccinfhir.utils import (
        load_coefficients,
        load_dx_to_cc_mapping,
        load_edits,
        load_hierarchies,
    )

    return _HccinfhirData(
        dx_to_cc=load_dx_to_cc_mapping(f"ra_dx_to_cc_{HCCINFHIR_MAPPING_YEAR[payment_year]}.csv"),
        coefficients=load_coefficients("ra_coefficients_2026.csv"),
        hierarchies=load_hierarchies("ra_hierarchies_2026.csv"),
        edits=load_edits("ra_dx_edits.csv"),
    )


HCCINFHIR_MODELS = {"V28": "CMS-HCC Model V28", "V24": "CMS-HCC Model V24"}


def run_hccinfhir(pop: Population, models: list[str]) -> pl.DataFrame:
    """hccinfhir 0.4.0 `calculate_raf`, one call per member per model."""
    from hccinfhir.model_calculate import calculate_raf

    data = _hccinfhir_data(pop.payment_year)
    codes_by_member = in_year_codes(pop)
    rows = []
    for m in _member_dicts(pop):
        age = age_on_feb1(m["DOB"], pop.payment_year)
        segment = segment_of(m["RAType"], age)
        medicaid = (m["RAType"] == "I" and m["LTIMCAID"].upper() == "Y") or (
            m["RAType"] == "E" and m["NEMCAID"].upper() == "Y"
        )
        codes = codes_by_member.get(m["MemberID"], [])
        for model in models:
            res = calculate_raf(
                diagnosis_codes=list(codes),
                model_name=HCCINFHIR_MODELS[model],
                age=age,
                sex=_sex(m["Gender"]),
                dual_elgbl_cd="02" if medicaid else "00",
                orec=m["OREC"],
                crec="0",
                dx_to_cc_mapping=data.dx_to_cc,
                hierarchies_mapping=data.hierarchies,
                coefficients_mapping=data.coefficients,
                edits_mapping=data.edits,
                prefix_override=f"{segment}_",
                switch_edits=True,
            )
            buckets = dict.fromkeys(BUCKETS, 0)
            for var, value in res.coefficients.items():
                buckets[bucket_of(var)] += _milli(value)
            rows.append(
                _hccinfhir_row(m["MemberID"], model, segment, f"{segment}_", age, buckets, res)
            )
    return pl.DataFrame(rows, schema=PEER_SCHEMA)


def _hccinfhir_row(
    member_id: str, model: str, segment: str, family: str, age: int, buckets: dict, res
) -> dict:
    """One PEER_SCHEMA row from an hccinfhir RAFResult and our bucket split of it."""
    return {
        "MemberID": member_id,
        "model": model,
        "peer": "hccinfhir",
        "segment": segment,
        "family": family,
        "age": age,
        **buckets,
        "total": sum(buckets.values()),
        "peer_total": float(res.risk_score),
        "hccs": sorted(int(h) for h in res.hcc_list),
        "variables": sorted(res.coefficients),
    }


# ------------------------------------------------------------------ risk-compose

RC_V28_FAMILY = {
    "CNA": "community_na",
    "CND": "community_nd",
    "CFA": "community_fba",
    "CFD": "community_fbd",
    "CPA": "community_pba",
    "CPD": "community_pbd",
    "INS": "institutional",
    "NE": "ne",
}


def _rc_request(subjects, diagnoses, version: str):
    from risk_compose.types import ScoringOptions, ScoringRequest

    return ScoringRequest(
        subjects=tuple(subjects),
        diagnoses=tuple(diagnoses),
        options=ScoringOptions(
            model_version=version,
            apply_mce_edits=True,
            strict_validation=False,
            include_diagnosis_mappings=False,
            include_score_contributions=True,
            score_round_digits=3,
        ),
    )


def _rc_diagnoses(pop: Population):
    import datetime as dt

    from risk_compose.types import DiagnosisRecord

    cy = pop.payment_year - 1
    out = []
    for mid, codes in in_year_codes(pop).items():
        for code in codes:
            out.append(DiagnosisRecord(subject_id=mid, icd10_code=code, service_date=dt.date(cy, 7, 1)))
    return out


def _rc_collect(pop, result, family_of: dict[str, str], segment_of_member: dict[str, str], model: str,
                hcc_prefix: str = "HCC") -> pl.DataFrame:
    scores = {r["subject_id"]: r for r in result.scores.subject_scores.rows}
    contrib: dict[tuple[str, str], list[dict]] = {}
    for r in result.scores.score_contributions.rows:
        if r.get("contribution_status") == "applied":
            contrib.setdefault((r["subject_id"], r["score_family"]), []).append(r)
    preds = {r["subject_id"]: r for r in result.predictors.subject_predictors.rows}
    rows = []
    for m in _member_dicts(pop):
        mid = m["MemberID"]
        fam = family_of[mid]
        pred = preds[mid]
        buckets = dict.fromkeys(BUCKETS, 0)
        variables = []
        for c in contrib.get((mid, fam), []):
            var = c["variable_name"]
            variables.append(var)
            buckets[bucket_of(var)] += _milli(c["contribution"])
        total = _milli(scores[mid][f"score_{fam}"])
        hccs = sorted(
            int(k[len(hcc_prefix):]) for k, v in pred.items()
            if k.startswith(hcc_prefix) and k[len(hcc_prefix):].isdigit() and v
        )
        rows.append(
            {
                "MemberID": mid,
                "model": model,
                "peer": "risk_compose",
                "segment": segment_of_member[mid],
                "family": fam,
                "age": pred["age"],
                **buckets,
                "total": total,
                "peer_total": float(scores[mid][f"score_{fam}"]),
                "hccs": hccs,
                "variables": sorted(variables),
            }
        )
    return pl.DataFrame(rows, schema=PEER_SCHEMA)


def run_risk_compose_v28(pop: Population) -> pl.DataFrame:
    """risk-compose 1.0.2 `cms_hcc_v28_2026` (PY2026 only), all members in one request."""
    import datetime as dt

    from risk_compose.core import score_subjects
    from risk_compose.types import SubjectRecord

    assert pop.payment_year == 2026, "risk-compose 1.0.2 only ships the PY2026 V28 package"
    subjects, family, segments = [], {}, {}
    for m in _member_dicts(pop):
        age = age_on_feb1(m["DOB"], pop.payment_year)
        seg = segment_of(m["RAType"], age)
        segments[m["MemberID"]] = seg
        family[m["MemberID"]] = RC_V28_FAMILY[seg]
        subjects.append(
            SubjectRecord(
                subject_id=m["MemberID"],
                date_of_birth=dt.date.fromisoformat(m["DOB"]),
                sex=1 if _sex(m["Gender"]) == "M" else 2,
                original_reason_entitlement_code=int(m["OREC"]),
                limited_income_medicaid_flag=int(m["RAType"] == "I" and m["LTIMCAID"].upper() == "Y"),
                new_enrollee_medicaid_flag=int(m["RAType"] == "E" and m["NEMCAID"].upper() == "Y"),
            )
        )
    result = score_subjects(_rc_request(subjects, _rc_diagnoses(pop), "cms_hcc_v28_2026"))
    return _rc_collect(pop, result, family, segments, "V28")


# RAType -> (full dual, partial dual, LTI, graft duration) as in docs/scoring.md's ESRD table.
ESRD_RATYPE_FLAGS = {
    "D1": (1, 0, 0, None), "D2": (0, 0, 0, None),
    "I3": (1, 0, 1, None), "I4": (0, 0, 1, None),
    "C3": (1, 0, 0, "dur4_9"), "C4": (0, 1, 0, "dur4_9"), "C5": (0, 0, 0, "dur4_9"),
    "C6": (1, 0, 0, "dur10pl"), "C7": (0, 1, 0, "dur10pl"), "C8": (0, 0, 0, "dur10pl"),
    "I5": (1, 0, 1, "dur4_9"), "I6": (0, 1, 1, "dur4_9"), "I7": (0, 0, 1, "dur4_9"),
    "I8": (1, 0, 1, "dur10pl"), "I9": (0, 1, 1, "dur10pl"), "IA": (0, 0, 1, "dur10pl"),
}


def esrd_family(ratype: str, age: int, orec: str, nemcaid: str) -> tuple[str, str]:
    """(risk-compose ESRD V24 score family, our segment) for an ESRD RAType."""
    aged = "ge65" if age >= 65 else "lt65"
    if ratype in ("D1", "D2", "I3", "I4"):
        return "dial", "DI"
    if ratype == "ED":
        return "dial_ne", "DNE"
    if ratype == "G1":
        return "transplant_kidney_only_1m", "TRANSPLANT"
    if ratype == "G2":
        return "transplant_kidney_only_2m", "TRANSPLANT"
    if ratype in ("E1", "E2"):
        ne_aged = "ge65" if (age >= 65 or (age == 64 and orec == "0")) else "lt65"
        dur = "dur4_9" if ratype == "E1" else "dur10pl"
        dual = "fbd" if nemcaid.upper() == "Y" else "nd_pbd"
        return f"graft_ne_{ne_aged}_{dur}_{dual}", "GNE"
    fbd, _pbd, lti, dur = ESRD_RATYPE_FLAGS[ratype]
    dual = "fbd" if fbd else "nd_pbd"
    if lti:
        return f"graft_inst_{dual}_{aged}_{dur}", "GI"
    seg = ("GF" if fbd else "GNP") + ("A" if age >= 65 else "N")
    return f"g_comm_{dual}_{aged}_{dur}", seg


def run_risk_compose_esrd(pop: Population) -> pl.DataFrame:
    """risk-compose 1.0.2 `esrd_v24_2026`, all members in one request."""
    import datetime as dt

    from risk_compose.core import score_subjects
    from risk_compose.types import SubjectRecord

    assert pop.payment_year == 2026
    subjects, family, segments = [], {}, {}
    for m in _member_dicts(pop):
        age = age_on_feb1(m["DOB"], pop.payment_year)
        fam, seg = esrd_family(m["RAType"], age, m["OREC"], m["NEMCAID"])
        family[m["MemberID"]] = fam
        segments[m["MemberID"]] = seg
        if m["RAType"] in ESRD_RATYPE_FLAGS:
            fbd, pbd, lti, _ = ESRD_RATYPE_FLAGS[m["RAType"]]
        else:  # ED, E1, E2 (dual status from NEMCAID, docs/scoring.md), G1, G2
            fbd, pbd, lti = int(m["NEMCAID"].upper() == "Y"), 0, 0
        subjects.append(
            SubjectRecord(
                subject_id=m["MemberID"],
                date_of_birth=dt.date.fromisoformat(m["DOB"]),
                sex=1 if _sex(m["Gender"]) == "M" else 2,
                original_reason_entitlement_code=int(m["OREC"]),
                full_benefit_dual_flag=fbd,
                partial_benefit_dual_flag=pbd,
                long_term_institutional_flag=lti,
                new_enrollee_medicaid_flag=int(m["NEMCAID"].upper() == "Y"),
            )
        )
    result = score_subjects(_rc_request(subjects, _rc_diagnoses(pop), "esrd_v24_2026"))
    return _rc_collect(pop, result, family, segments, "ESRD_V24")


HI_ESRD_PREFIX = {"DI": "DI_", "DNE": "DNE_", "GNE": "GNE_", "GI": "GI_", "GFA": "GFA_", "GFN": "GFN_",
                  "GNPA": "GNPA_", "GNPN": "GNPN_"}


def run_hccinfhir_esrd(pop: Population) -> pl.DataFrame:
    """hccinfhir 0.4.0 `CMS-HCC ESRD Model V24`, one call per member.

    Dual status as a dual code (FBD '02', PBD '01', else '00'; ED/E1/E2 from
    NEMCAID), `lti` for I3/I4/I5-IA, `graft_months` 4 (4-9) or 10 (10+), and
    CREC '2' (currently ESRD) so hccinfhir picks the ESRD prefix itself: its
    `prefix_override` for GNPA_/GNPN_ clears the partial-dual flag. Transplant
    members (G1/G2) get `graft_months` 1 or 2 and CREC '0': hccinfhir's only
    route to its transplant prefix is a non-ESRD member.
    """
    from hccinfhir.model_calculate import calculate_raf

    data = _hccinfhir_data(pop.payment_year)
    codes_by_member = in_year_codes(pop)
    rows = []
    for m in _member_dicts(pop):
        age = age_on_feb1(m["DOB"], pop.payment_year)
        ratype = m["RAType"]
        _fam, segment = esrd_family(ratype, age, m["OREC"], m["NEMCAID"])
        if ratype in ESRD_RATYPE_FLAGS:
            fbd, pbd, lti, dur = ESRD_RATYPE_FLAGS[ratype]
        else:
            fbd, pbd, lti = int(m["NEMCAID"].upper() == "Y"), 0, 0
            dur = {"E1": "dur4_9", "E2": "dur10pl"}.get(ratype)
        graft_months = {"dur4_9": 4, "dur10pl": 10}.get(dur) if dur else {"G1": 1, "G2": 2}.get(ratype)
        res = calculate_raf(
            diagnosis_codes=list(codes_by_member.get(m["MemberID"], [])),
            model_name="CMS-HCC ESRD Model V24",
            age=age,
            sex=_sex(m["Gender"]),
            dual_elgbl_cd="02" if fbd else ("01" if pbd else "00"),
            orec=m["OREC"] if ratype not in ("G1", "G2") else "0",
            crec="0" if ratype in ("G1", "G2") else "2",
            lti=bool(lti),
            new_enrollee=ratype in ("ED", "E1", "E2"),
            graft_months=graft_months,
            dx_to_cc_mapping=data.dx_to_cc,
            hierarchies_mapping=data.hierarchies,
            coefficients_mapping=data.coefficients,
            edits_mapping=data.edits,
            switch_edits=True,
        )
        buckets = dict.fromkeys(BUCKETS, 0)
        for var, value in res.coefficients.items():
            buckets[bucket_of(var)] += _milli(value)
        rows.append(
            _hccinfhir_row(
                m["MemberID"],
                "ESRD_V24",
                segment,
                HI_ESRD_PREFIX.get(segment, f"graft_months={graft_months}"),
                age,
                buckets,
                res,
            )
        )
    return pl.DataFrame(rows, schema=PEER_SCHEMA)
