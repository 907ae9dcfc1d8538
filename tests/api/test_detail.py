"""`?detail=true`: the audit trail on raw rows (`docs/api.md` extensions)."""

from __future__ import annotations

DETAIL_FIELDS = {"HCCs", "Hierarchy_Dropped", "Interactions", "Dropped_Diagnoses"}


def test_detail_trail_on_raw_rows(client, seed_request) -> None:
    body = client.post("/v1/risk-scores?detail=true", json=seed_request).json()
    v28, v24, active = body["results"][:3]
    assert v28["HCCs"] == [{"HCC": "HCC137", "Label": v28["HCCs"][0]["Label"],
                            "Coefficient": 0.348, "DxCodes": ["F13229"]}]
    assert v24["HCCs"][0]["HCC"] == "HCC55" and v24["HCCs"][0]["Coefficient"] == 0.275
    assert v28["Dropped_Diagnoses"] == [{"DxCode": "S62X5", "FromDOS": "2024-01-06",
                                         "ThruDOS": "2024-01-10", "Reason": "unknown_code"}]
    assert v28["Hierarchy_Dropped"] == [] and v28["Interactions"] == []
    assert not DETAIL_FIELDS & set(active)  # the active row has no trail
    assert active["RAF_Total"] == 0.517435  # detail changes nothing in the numbers


def test_hierarchy_drop_is_reported(client, seed_request) -> None:
    # E11.9 (diabetes w/o complication) and E11.22 (with CKD): the higher HCC drops the lower
    seed_request["diagnoses"] += [
        {"MemberID": "M00913", "FromDOS": "2024-03-01", "ThruDOS": "2024-03-01", "DxCode": code}
        for code in ("E119", "E1122")
    ]
    body = client.post("/v1/risk-scores?detail=true", json=seed_request).json()
    m00913_raw = [r for r in body["results"] if r["Member_Id"] == "M00913" and r["Active_Score"] == 0]
    assert any(row["Hierarchy_Dropped"] for row in m00913_raw)


def test_no_detail_fields_without_detail(client, seed_request) -> None:
    body = client.post("/v1/risk-scores", json=seed_request).json()
    for row in body["results"]:
        assert not DETAIL_FIELDS & set(row)
