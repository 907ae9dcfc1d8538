"""ESRD members through the HTTP API (the wire form of the rows and errors)."""

from __future__ import annotations

from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings


def _member(member_id: str, ratype: str, dob: str, gender: str, orec: str) -> dict:
    return {"MemberID": member_id, "DOB": dob, "Gender": gender, "RAType": ratype,
            "Hospice": "N", "LTIMCAID": "N", "NEMCAID": "N", "OREC": orec}


def _post(payment_year: int) -> dict:
    request = {
        "payment_year": payment_year,
        "memberships": [
            _member("D1", "D1", f"{payment_year - 76}-06-01", "F", "2"),  # 75 on Feb 1
            _member("G1", "G1", f"{payment_year - 59}-06-01", "F", "2"),
            _member("C1", "C1", f"{payment_year - 76}-06-01", "F", "0"),  # pre-2023 code
        ],
        "diagnoses": [
            {"MemberID": "D1", "FromDOS": f"{payment_year - 1}-03-01",
             "ThruDOS": f"{payment_year - 1}-03-01", "DxCode": "I50.9"},
        ],
    }
    app = create_app(Settings(), enable_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/risk-scores", json=request)
    assert response.status_code == 200, response.text
    return response.json()


def test_esrd_rows_on_the_wire_py2026():
    body = _post(2026)
    rows = [r for r in body["results"] if r["Member_Id"] == "D1"]
    assert [r["Active_Score"] for r in rows] == [0, 1]
    raw, active = rows
    # V24_CE_Relative_Factors.csv DIAL: F75_79 0.617 + FBDual_Female_Aged 0.06
    # + Originally_ESRD_Female -0.024 + HCC85 0.063 = 0.716; active 0.716/1.062*0.941
    assert (raw["RAF_Total"], raw["Model"], raw["Clinical_Version"]) == (
        0.716, "ESRD Model-Dialysis", "ESRD V24",
    )
    assert (active["RAF_Total"], active["Model"]) == (
        0.634422, "100.0000% of ESRD Model-Dialysis ESRD V24",
    )
    transplant = next(r for r in body["results"] if r["Member_Id"] == "G1")
    assert (transplant["RAF_Total"], transplant["Model"]) == (5.985, "ESRD Model-Kidney Transplant")
    errors = {e["MemberID"]: e for e in body["errors"]}
    assert set(errors) == {"C1"} and errors["C1"]["field"] == "RAType"


def test_esrd_members_get_raw_rows_and_warnings_on_the_wire_py2025():
    body = _post(2025)
    assert [r["Active_Score"] for r in body["results"]] == [0, 0]
    assert {e["MemberID"] for e in body["errors"]} == {"C1"}
    warnings = {r["Member_Id"]: r["Warnings"] for r in body["results"]}
    # transplant takes the dialysis factor (E2118P1M: DF_DG multiplies transplant scores)
    for member in ("D1", "G1"):
        assert warnings[member][0].startswith("normalization_factor ESRD_V24_dialysis for PY2025")
    assert body["warnings"][0]["count"] == 2
