"""The seed's request returns the seed's six rows, field for field
(`app/examples/seed_response.json`, from the provider's API guide; timestamp aside)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

SEED_FIELDS = [
    "Payment_Year", "Member_Id", "BirthDate_Org", "BirthDate", "Age", "Age_Band", "Gender_Org",
    "Gender", "RAType_Org", "RAType", "Hospice_Org", "Hospice", "LTIMCAID_Org", "LTIMCAID",
    "NEMCAID_Org", "NEMCAID", "OREC_Org", "OREC", "Originally_Disabled", "Originally_ESRD",
    "RA_Variable", "RAF_Demographic", "RAF_Demographic_Interaction_With_Medicaid_Or_OREC",
    "RAF_Disease", "RAF_Disease_Count", "RAF_Disease_Interaction_With_Disease",
    "RAF_Disease_Interaction_With_Disability_Or_NonAged", "RAF_Total", "Model",
    "Clinical_Version", "Active_Score",
]

M00912 = {
    "Payment_Year": 2025, "Member_Id": "M00912", "BirthDate_Org": "1985-10-13",
    "BirthDate": "1985-10-13", "Age": 39, "Age_Band": "35_44", "Gender_Org": "M", "Gender": "M",
    "RAType_Org": "CP", "RAType": "CPD", "Hospice_Org": "N", "Hospice": "N", "LTIMCAID_Org": "N",
    "LTIMCAID": "N", "NEMCAID_Org": "N", "NEMCAID": "N", "OREC_Org": "0", "OREC": "1",
    "Originally_Disabled": "N", "Originally_ESRD": "0",
}
M00913 = {
    "Payment_Year": 2025, "Member_Id": "M00913", "BirthDate_Org": "1938-06-16",
    "BirthDate": "1938-06-16", "Age": 86, "Age_Band": "85_89", "Gender_Org": "F", "Gender": "F",
    "RAType_Org": "CN", "RAType": "CNA", "Hospice_Org": "N", "Hospice": "N", "LTIMCAID_Org": "N",
    "LTIMCAID": "N", "NEMCAID_Org": "N", "NEMCAID": "N", "OREC_Org": "0", "OREC": "0",
    "Originally_Disabled": "N", "Originally_ESRD": "0",
}
BLEND_MODEL = "67.0000% of HCC Model-Regular V28 / 33.0000% of HCC Model-Regular V24"


def scores(ra_variable: str, demographic: float, disease: float, total: float, model: str,
           version: str, active: int) -> dict[str, Any]:
    return {
        "RA_Variable": ra_variable,
        "RAF_Demographic": demographic,
        "RAF_Demographic_Interaction_With_Medicaid_Or_OREC": 0.0,
        "RAF_Disease": disease,
        "RAF_Disease_Count": 0.0,
        "RAF_Disease_Interaction_With_Disease": 0.0,
        "RAF_Disease_Interaction_With_Disability_Or_NonAged": 0.0,
        "RAF_Total": total,
        "Model": model,
        "Clinical_Version": version,
        "Active_Score": active,
    }


SEED_ROWS = [
    {**M00912, **scores("CPD_M35_44, HCC137", 0.261, 0.348, 0.609, "HCC Model-Regular", "V28", 0)},
    {**M00912, **scores("CPD_M35_44, HCC55", 0.282, 0.275, 0.557, "HCC Model-Regular", "V24", 0)},
    {**M00912, **scores("V24 ( CPD_M35_44, HCC55 ) and V28 ( CPD_M35_44, HCC137 )",
                        0.233416, 0.28402, 0.517435, BLEND_MODEL, "V28 / V24", 1)},
    {**M00913, **scores("CNA_F85_89", 0.624, 0.0, 0.624, "HCC Model-Regular", "V28", 0)},
    {**M00913, **scores("CNA_F85_89", 0.641, 0.0, 0.641, "HCC Model-Regular", "V24", 0)},
    {**M00913, **scores("V24 ( CNA_F85_89 ) and V28 ( CNA_F85_89 )",
                        0.549109, 0.0, 0.549109, BLEND_MODEL, "V28 / V24", 1)},
]


def test_seed_request_returns_the_seed_rows_field_for_field(client, seed_request) -> None:
    response = client.post("/v1/risk-scores", json=seed_request)
    assert response.status_code == 200
    body = response.json()
    assert list(body)[:6] == ["status", "message", "cache_status", "count", "results", "timestamp"]
    assert body["status"] == "success"
    assert body["message"] == "Data processed successfully"
    assert body["count"] == 6
    for got, expected in zip(body["results"], SEED_ROWS, strict=True):
        assert list(got) == SEED_FIELDS  # same fields, same order, nothing extra
        assert got == expected
    datetime.fromisoformat(body["timestamp"])


def test_seed_numbers_to_the_last_digit_in_the_raw_json(client, seed_request) -> None:
    """The wire text itself: no float noise (0.609, not 0.6090000000000001)."""
    text = client.post("/v1/risk-scores", json=seed_request).text
    for literal in ('"RAF_Total":0.517435', '"RAF_Total":0.549109', '"RAF_Demographic":0.233416',
                    '"RAF_Disease":0.28402,', '"RAF_Total":0.609', '"RAF_Total":0.557',
                    '"RAF_Disease":0.348,', '"RAF_Demographic":0.282,'):
        assert literal in text
    assert "0000000" not in text and "9999999" not in text


def test_seed_extensions(client, seed_request) -> None:
    body = client.post("/v1/risk-scores", json=seed_request).json()
    assert body["member_count"] == 2
    assert body["errors"] == []
    assert body["cache"] == {"hits": 0, "misses": 2}
    assert body["cache_status"] == "Cache miss"
    assert body["reference"]["payment_year"] == 2025
    assert body["reference"]["release_id"].startswith("PY2025")
    assert len(body["reference"]["sha256"]) == 64
    summary = body["diagnoses_summary"]
    assert summary["used"] == 1  # F13229 -> HCC137 / HCC55
    assert summary["unknown_code"] == 1  # S62X5 is not a billable code


def test_py2026_rows_are_v28_only(client, seed_request) -> None:
    seed_request["payment_year"] = 2026
    for dx in seed_request["diagnoses"]:
        dx["FromDOS"], dx["ThruDOS"] = "2025-03-01", "2025-03-02"
    body = client.post("/v1/risk-scores", json=seed_request).json()
    assert body["status"] == "success", body["errors"]
    assert [r["Clinical_Version"] for r in body["results"]] == ["V28", "V28", "V28", "V28"]
    assert [r["Active_Score"] for r in body["results"]] == [0, 1, 0, 1]
    active = body["results"][1]
    assert active["Model"] == "100.0000% of HCC Model-Regular V28"
    assert active["RA_Variable"].startswith("V28 ( CPD_M35_44")


def test_py2024_weights_in_the_model_text(client, seed_request) -> None:
    seed_request["payment_year"] = 2024
    body = client.post("/v1/risk-scores", json=seed_request).json()
    active = [r for r in body["results"] if r["Active_Score"] == 1]
    assert active[0]["Model"] == (
        "33.0000% of HCC Model-Regular V28 / 67.0000% of HCC Model-Regular V24"
    )
    assert active[0]["Clinical_Version"] == "V28 / V24"
