"""One hand-checked ESRD member per segment, end to end through ``score_batch``.

Every expected number below was added up by hand from CMS's ESRD V24 tables
(``ESRD_v24_2026_T_package_v2/software/ESRD_v24/data/input/internal/``, cited
as file:line; the header is line 1):

  CE   = V24_CE_Relative_Factors.csv   (columns DIAL, G_COMM_ND_PBD_GE65,
         G_COMM_ND_PBD_LT65, G_COMM_FBD_GE65, G_COMM_FBD_LT65, GRAFT_INST)
  NED  = V24_NE_Dialysis_Relative_Factors.csv (DIAL_NE)
  NEG  = V24_NE_Graft_Relative_Factors.csv    (GRAFT_NE)
  GD   = V24_Graft_Duration_Scores.csv        (community duration, PBD flags)
  GIS  = V24_CE_Institutional_Graft_Scores.csv (FGI_ duration, FGI_PBD, LTI_GE65/LT65)
  TR   = V24_Transplant_Scores.csv
  ActAdj 0.905 / 0.698: CMS SAS coefficient file D2423T2M (reference/SOURCES.md)

and the codes map through the ESRD V24 crosswalk of each year (I509 -> 85,
N186 -> 136, E1122 -> 18, F200 -> 57, F1020 -> 55, E840 -> 110, G35 -> 77; the
same in PY2024, PY2025 and PY2026). The active row is the raw row divided by the
year's ESRD normalization factor of the member's group and multiplied by
(1 - 0.059), rounded to 6 decimals per bucket (parameters.csv: dialysis 1.022 /
graft 1.028 in PY2024, 1.062 / 1.104 in PY2026; PY2025 is missing, so every
ESRD member is a member error naming the factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest

from tests.esrd.conftest import Member, active_value, rows_of, score

FACTORS = {
    2024: {"dialysis": "1.022", "graft": "1.028"},
    2026: {"dialysis": "1.062", "graft": "1.104"},
}
BUCKET_FIELDS = {
    "demo": "RAF_Demographic",
    "demo_int": "RAF_Demographic_Interaction_With_Medicaid_Or_OREC",
    "disease": "RAF_Disease",
    "count": "RAF_Disease_Count",
    "disease_int": "RAF_Disease_Interaction_With_Disease",
    "nonaged": "RAF_Disease_Interaction_With_Disability_Or_NonAged",
    "total": "RAF_Total",
}


@dataclass(frozen=True)
class Case:
    member: Member
    segment: str  # standardized RAType
    group: str  # normalization group
    model: str  # raw row `Model`
    ra_variable: str
    raw: dict  # bucket -> decimal string (missing buckets are "0")


CASES = [
    # D1, F 75, OREC 2, full dual. CE:9 F75_79 DIAL 0.617; CE:33 FBDual_Female_Aged 0.06;
    # CE:29 Originally_ESRD_Female -0.024 -> 0.036; CE:89 HCC85 0.063; CE:110 HCC136 0
    # (renal, not listed); CE:130 HCC85_gRenal_V24 fires with 0 (not listed). Total 0.716.
    Case(
        Member("D1", "D1", "F", 75, orec="2", codes=("I509", "N186")),
        "DI", "dialysis", "ESRD Model-Dialysis",
        "DI_F75_79, FBDual_Female_Aged, Originally_ESRD_Female, HCC85",
        {"demo": "0.617", "demo_int": "0.036", "disease": "0.063", "total": "0.716"},
    ),
    # I3, F 70, OREC 1, full dual, institutional. CE:8 F70_74 DIAL 0.624; CE:27
    # OriginallyDisabled_Female 0.024 + CE:31 LTI_Aged 0.02 + CE:33 FBDual_Female_Aged 0.06
    # = 0.104. Total 0.728.
    Case(
        Member("I3", "I3", "F", 70, orec="1"),
        "DI", "dialysis", "ESRD Model-Dialysis",
        "DI_F70_74, FBDual_Female_Aged, LTI_Aged, OriginallyDisabled_Female",
        {"demo": "0.624", "demo_int": "0.104", "total": "0.728"},
    ),
    # I4, M 45, OREC 1 (not aged: no OriginallyDisabled), not full dual, institutional.
    # CE:16 M45_54 DIAL 0.551; CE:32 LTI_NonAged 0.098; CE:71 HCC57 0.111 + CE:69 HCC55 0.111
    # + CE:101 HCC110 0.125 = 0.347; gSubUseDs_gPsych_V24 fires but DIAL has no value
    # (CE:133); CE:143 NONAGED_gSubUseDs_gPsych 0.055 (an interaction of an interaction)
    # + CE:147 NONAGED_HCC110 0.657 = 0.712. Total 1.708.
    Case(
        Member("I4", "I4", "M", 45, orec="1", codes=("F200", "F1020", "E840")),
        "DI", "dialysis", "ESRD Model-Dialysis",
        "DI_M45_54, LTI_NonAged, HCC55, HCC57, HCC110, NONAGED_HCC110, NONAGED_gSubUseDs_gPsych",
        {"demo": "0.551", "demo_int": "0.098", "disease": "0.347", "nonaged": "0.712",
         "total": "1.708"},
    ),
    # ED, M 64, OREC 0, NEMCAID N: 64 with OREC 0 takes the 65-69 cell; ND_PBD.
    # NED:17 ND_PBD_NORIGDIS_NEM65_69 0.891. The diagnosis is ignored (no HCCs for NE).
    Case(
        Member("ED", "ED", "M", 64, orec="0", codes=("I509",)),
        "DNE", "dialysis", "ESRD Model-Dialysis New Enrollee",
        "DNE_ND_PBD_NORIGDIS_NEM65_69",
        {"demo_int": "0.891", "total": "0.891"},
    ),
    # ED, F 50, OREC 1, NEMCAID Y: dialysis NE ORIGDIS is OREC 1 at any age; FBD from
    # NEMCAID. NED:64 FBD_ORIGDIS_NEF45_54 1.118.
    Case(
        Member("ED_OD", "ED", "F", 50, orec="1", nemcaid="Y"),
        "DNE", "dialysis", "ESRD Model-Dialysis New Enrollee",
        "DNE_FBD_ORIGDIS_NEF45_54",
        {"demo_int": "1.118", "total": "1.118"},
    ),
    # C3, M 75, OREC 1, full dual, graft 4-9 -> GFA. CE:21 M75_79 G_COMM_FBD_GE65 0.646;
    # CE:28 OriginallyDisabled_Male 0.136 + GD:8 GE65_DUR4_9_FBD 2.605 = 2.741;
    # CE:89 HCC85 0.257 + CE:50 HCC18 0.233 = 0.490; CE:128 DIABETES_CHF 0.223. Total 4.100.
    Case(
        Member("C3", "C3", "M", 75, orec="1", codes=("I509", "E1122")),
        "GFA", "graft", "ESRD Model-Functioning Graft Community",
        "GFA_M75_79, GE65_DUR4_9_FBD, OriginallyDisabled_Male, HCC18, HCC85, DIABETES_CHF",
        {"demo": "0.646", "demo_int": "2.741", "disease": "0.49", "disease_int": "0.223",
         "total": "4.1"},
    ),
    # C6, F 50, OREC 2, full dual, graft 10+ -> GFN. CE:4 F45_54 G_COMM_FBD_LT65 0.328;
    # GD:11 LT65_DUR10PL_FBD 0.648; CE:89 HCC85 0.302. Total 1.278.
    Case(
        Member("C6", "C6", "F", 50, orec="2", codes=("I509",)),
        "GFN", "graft", "ESRD Model-Functioning Graft Community",
        "GFN_F45_54, LT65_DUR10PL_FBD, HCC85",
        {"demo": "0.328", "demo_int": "0.648", "disease": "0.302", "total": "1.278"},
    ),
    # C4, F 80, OREC 0, partial dual, graft 4-9 -> GNPA. CE:10 F80_84 G_COMM_ND_PBD_GE65
    # 0.474; GD:2 GE65_DUR4_9_ND_PBD 2.529 + GD:4 PBD_GE65_flag 0.162 = 2.691. Total 3.165.
    Case(
        Member("C4", "C4", "F", 80),
        "GNPA", "graft", "ESRD Model-Functioning Graft Community",
        "GNPA_F80_84, GE65_DUR4_9_ND_PBD, PBD_GE65_flag",
        {"demo": "0.474", "demo_int": "2.691", "total": "3.165"},
    ),
    # C8, M 40, OREC 2, non-dual, graft 10+ -> GNPN (no PBD flag). CE:15 M35_44
    # G_COMM_ND_PBD_LT65 0.155; GD:6 LT65_DUR10PL_ND_PBD 0.335; CE:71 HCC57 0.372 + CE:69
    # HCC55 0.256 = 0.628; CE:133 gSubUseDs_gPsych_V24 0.122 (NONAGED_gSubUseDs_gPsych
    # fires but CE:143 is DIAL only). Total 1.240.
    Case(
        Member("C8", "C8", "M", 40, orec="2", codes=("F200", "F1020")),
        "GNPN", "graft", "ESRD Model-Functioning Graft Community",
        "GNPN_M35_44, LT65_DUR10PL_ND_PBD, HCC55, HCC57, gSubUseDs_gPsych_V24",
        {"demo": "0.155", "demo_int": "0.335", "disease": "0.628", "disease_int": "0.122",
         "total": "1.24"},
    ),
    # I6, M 55, OREC 1, partial dual, institutional graft 4-9 -> GI. CE:17 M55_59 GRAFT_INST
    # 1.143; GIS:2 FGI_LT65_DUR4_9_ND_PBD 1.737 + GIS:12 LTI_LT65 2.146 + GIS:10
    # FGI_PBD_LT65_flag 0.141 = 4.024; CE:82 HCC77 0.042; CE:153 NONAGED_HCC77 0.484.
    # Total 5.693.
    Case(
        Member("I6", "I6", "M", 55, orec="1", codes=("G35",)),
        "GI", "graft", "ESRD Model-Functioning Graft Institutional",
        "GI_M55_59, LT65_DUR4_9_ND_PBD, LTI_LT65, PBD_LT65_flag, HCC77, NONAGED_HCC77",
        {"demo": "1.143", "demo_int": "4.024", "disease": "0.042", "nonaged": "0.484",
         "total": "5.693"},
    ),
    # E1, F 70, OREC 1, NEMCAID Y (FBD), graft NE 4-9 -> GNE. NEG:93 FBD_ORIGDIS_G_NEF70_74
    # 2.004 + GD:8 GE65_DUR4_9_FBD 2.605 = 4.609; / ActAdj_DUR4_9 0.905 = 5.09281... -> 5.093.
    Case(
        Member("E1", "E1", "F", 70, orec="1", nemcaid="Y", codes=("I509",)),
        "GNE", "graft", "ESRD Model-Functioning Graft New Enrollee",
        "GNE_FBD_ORIGDIS_G_NEF70_74, GE65_DUR4_9_FBD, ActAdj_DUR4_9",
        {"demo_int": "5.093", "total": "5.093"},
    ),
    # E2, M 64, OREC 0, NEMCAID N, graft NE 10+: 64 with OREC 0 is NE_Aged (65 cell and
    # GE65 duration). NEG:23 ND_PBD_NORIGDIS_G_NEM65 0.562 + GD:3 GE65_DUR10PL_ND_PBD 0.905
    # = 1.467; / ActAdj_DUR10PL 0.698 = 2.10172... -> 2.102.
    Case(
        Member("E2", "E2", "M", 64, orec="0"),
        "GNE", "graft", "ESRD Model-Functioning Graft New Enrollee",
        "GNE_ND_PBD_NORIGDIS_G_NEM65, GE65_DUR10PL_ND_PBD, ActAdj_DUR10PL",
        {"demo_int": "2.102", "total": "2.102"},
    ),
    # G1: TR:2 TRANSPLANT_KIDNEY_ONLY_1M 5.985, flat (diagnoses ignored); dialysis factor
    # (E2118P1M: SCORE_TRANS_KIDNEY_ONLY_1M = &DF_DG*TRANSPLANT_KIDNEY_ONLY_1M).
    Case(
        Member("G1", "G1", "F", 58, orec="2", codes=("I509",)),
        "TRANSPLANT", "dialysis", "ESRD Model-Kidney Transplant",
        "TRANSPLANT_KIDNEY_ONLY_1M",
        {"demo_int": "5.985", "total": "5.985"},
    ),
    # G2: TR:3 TRANSPLANT_KIDNEY_ONLY_2M 0.941 (months 2-3; _3M is the same value).
    Case(
        Member("G2", "G2", "M", 81),
        "TRANSPLANT", "dialysis", "ESRD Model-Kidney Transplant",
        "TRANSPLANT_KIDNEY_ONLY_2M",
        {"demo_int": "0.941", "total": "0.941"},
    ),
]


def _expected_raw(case: Case) -> dict[str, float]:
    return {field: float(case.raw.get(b, "0")) for b, field in BUCKET_FIELDS.items()}


def test_every_esrd_segment_has_a_case():
    assert {c.segment for c in CASES} == {
        "DI", "DNE", "GFA", "GFN", "GNPA", "GNPN", "GI", "GNE", "TRANSPLANT",
    }


def test_hand_sums_add_up():
    """The bucket figures of each case add up to its total (guards typos in the cases)."""
    from decimal import Decimal

    for case in CASES:
        parts = sum(Decimal(v) for b, v in case.raw.items() if b != "total")
        assert parts == Decimal(case.raw["total"]), case.member.member_id


@pytest.fixture(scope="module", params=[2024, 2026])
def scored(request, store):
    year = request.param
    return year, score(store, [c.member for c in CASES], year)


@pytest.mark.parametrize("case", CASES, ids=[c.member.member_id for c in CASES])
def test_raw_row(scored, case):
    _year, result = scored
    raw, _ = rows_of(result, case.member.member_id)
    assert raw["RAType"] == case.segment
    assert {f: raw[f] for f in BUCKET_FIELDS.values()} == _expected_raw(case)
    assert raw["RA_Variable"] == case.ra_variable
    assert raw["Model"] == case.model
    assert raw["Clinical_Version"] == "ESRD V24"


@pytest.mark.parametrize("case", CASES, ids=[c.member.member_id for c in CASES])
def test_active_row(scored, case):
    year, result = scored
    _, active = rows_of(result, case.member.member_id)
    factor = FACTORS[year][case.group]
    expected = {field: active_value(case.raw.get(b, "0"), factor) for b, field in BUCKET_FIELDS.items()}
    assert {f: active[f] for f in BUCKET_FIELDS.values()} == expected
    assert active["Model"] == f"100.0000% of {case.model} ESRD V24"
    assert active["Clinical_Version"] == "ESRD V24"
    assert active["RA_Variable"] == f"ESRD V24 ( {case.ra_variable} )"


def test_active_rows_spelled_out_for_py2026(store):
    """Two active totals written out, not recomputed by the helper."""
    result = score(store, [CASES[0].member, CASES[10].member], 2026)
    # 0.716 / 1.062 * 0.941 = 0.634422...
    assert rows_of(result, "D1")[1]["RAF_Total"] == 0.634422
    # 5.093 * 0.941 = 4.792513; / 1.104 = 4.3410443... (the rounded raw row is divided)
    assert rows_of(result, "E1")[1]["RAF_Total"] == 4.341044


def test_no_errors_for_scored_years(scored):
    _, result = scored
    assert result.errors.height == 0, result.errors


@pytest.mark.parametrize("case", CASES, ids=[c.member.member_id for c in CASES])
def test_py2025_raw_row_equals_the_py2024_and_py2026_logic(store, case):
    """PY2025's ESRD factors are missing: the raw ESRD V24 row is still scored, with the
    same hand-read CMS coefficients as PY2024/PY2026 (test_raw_row) and the same
    RA_Variable; the active row is left out and the member carries a warning."""
    result = score(store, [c.member for c in CASES], 2025)
    assert result.errors.height == 0, result.errors
    rows = result.rows.filter(pl.col("Member_Id") == case.member.member_id).to_dicts()
    assert [r["Active_Score"] for r in rows] == [0]
    raw = rows[0]
    assert {f: raw[f] for f in BUCKET_FIELDS.values()} == _expected_raw(case)
    assert raw["RA_Variable"] == case.ra_variable and raw["Model"] == case.model
    (warning,) = [w for w in raw["Warnings"] if "is not published" in w]
    assert warning.startswith(
        f"normalization_factor ESRD_V24_{case.group} for PY2025 is not published"
    )
    assert "active row is left out" in warning
    codes = {(w["code"], w["count"]) for w in result.warnings if "ESRD_V24_" + case.group in w["message"]}
    assert codes == {("active_row_missing_parameter", sum(c.group == case.group for c in CASES))}


def test_py2025_cms_hcc_members_still_score_next_to_esrd_members(store):
    members = [CASES[0].member, Member("CN", "CN", "F", 70)]
    result = score(store, members, 2025)
    assert set(result.rows["Member_Id"]) == {"CN", "D1"}
    assert result.errors.is_empty()
    assert result.rows.filter(pl.col("Active_Score") == 1)["Member_Id"].to_list() == ["CN"]
