"""ESRD members through the API: weight 1, their group's factor, and no default factor
(`docs/scoring.md`: PY2025 ESRD factors are not published -> raw row only, with a
warning naming the factor)."""

from __future__ import annotations

ESRD_MEMBERS = [
    {"MemberID": "E1", "DOB": "1950-03-03", "Gender": "F", "RAType": "D1", "OREC": "2"},
    {"MemberID": "E2", "DOB": "1970-03-03", "Gender": "M", "RAType": "C5", "OREC": "2"},
]


def test_py2025_esrd_member_gets_its_raw_row_and_a_warning_naming_the_missing_factor(
    client, seed_request
) -> None:
    seed_request["memberships"] += ESRD_MEMBERS
    body = client.post("/v1/risk-scores", json=seed_request).json()
    assert body["status"] == "success" and body["errors"] == []
    esrd = {r["Member_Id"]: r for r in body["results"] if r["Member_Id"] in ("E1", "E2")}
    assert [r["Active_Score"] for r in body["results"] if r["Member_Id"] == "E1"] == [0]
    assert esrd["E1"]["Clinical_Version"] == "ESRD V24"
    assert esrd["E1"]["Warnings"][0].startswith(
        "normalization_factor ESRD_V24_dialysis for PY2025 is not published in our reference data")
    assert esrd["E2"]["Warnings"][0].startswith("normalization_factor ESRD_V24_graft for PY2025")
    warnings = {w["message"].split(" for ")[0]: w for w in body["warnings"]}
    assert warnings["normalization_factor ESRD_V24_dialysis"]["count"] == 1
    assert warnings["normalization_factor ESRD_V24_graft"]["code"] == "active_row_missing_parameter"
    caveats = {c["model"]: c["status"] for c in body["reference"]["parameter_caveats"]}
    assert caveats == {"ESRD_V24_dialysis": "missing", "ESRD_V24_graft": "missing"}


def test_py2024_esrd_members_get_one_raw_row_and_an_unblended_active_row(client) -> None:
    request = {"payment_year": 2024, "memberships": ESRD_MEMBERS, "diagnoses": []}
    body = client.post("/v1/risk-scores", json=request).json()
    assert body["status"] == "success", body["errors"]
    assert [r["Active_Score"] for r in body["results"]] == [0, 1, 0, 1]
    for raw, active in (body["results"][0:2], body["results"][2:4]):
        assert raw["Clinical_Version"] == active["Clinical_Version"] == "ESRD V24"
        assert active["Model"] == f"100.0000% of {raw['Model']} ESRD V24"
        assert active["RA_Variable"] == f"ESRD V24 ( {raw['RA_Variable']} )"
    # dialysis factor 1.022 (PY2024), coding adjustment 5.9%, weight 1
    raw_total, active_total = body["results"][0]["RAF_Total"], body["results"][1]["RAF_Total"]
    expected = round(raw_total * 1000 * 941_000 / 1022) / 1_000_000  # exact here (no .5 tie)
    assert active_total == expected
