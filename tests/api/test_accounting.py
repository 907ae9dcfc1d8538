"""`POST /v1/risk-scores` accounts for every membership row and diagnosis, and warns
when the scores rest on little of the input (issue 12; each failed before the fix)."""

from __future__ import annotations

import pytest

from app.quality import WarningThresholds
from app.settings import Settings

URL = "/v1/risk-scores"


def test_identical_duplicate_rows_are_named_in_errors_and_scored_once(client, seed_request):
    seed_request["memberships"].append(dict(seed_request["memberships"][1]))  # 3 rows, 2 members
    body = client.post(URL, json=seed_request).json()
    assert (body["member_count"], body["members_scored"]) == (3, 2)
    assert body["status"] == "partial"
    [error] = body["errors"]
    assert (error["MemberID"], error["field"]) == ("M00913", "MemberID")
    assert error["message"].startswith("identical duplicate of memberships[1] (MemberID M00913")
    assert [r["Member_Id"] for r in body["results"]].count("M00913") == 3  # once: 3 rows
    assert "repeat an earlier row" in body["message"]


def test_every_row_of_a_conflicting_member_id_has_its_own_error(client, seed_request):
    seed_request["memberships"] += [
        dict(seed_request["memberships"][1], OREC="1"),
        dict(seed_request["memberships"][1], OREC="1"),
    ]
    body = client.post(URL, json=seed_request).json()
    assert [e["MemberID"] for e in body["errors"]] == ["M00913"] * 3
    assert body["member_count"] == 4 and body["members_scored"] == 1
    assert body["member_count"] == body["members_scored"] + len(body["errors"])


def test_diagnoses_of_a_rejected_member_count_as_member_rejected(client, seed_request):
    seed_request["memberships"][0]["Gender"] = "X"
    seed_request["diagnoses"].append(
        {"MemberID": "NOBODY", "FromDOS": "2024-03-01", "ThruDOS": "2024-03-02", "DxCode": "E119"}
    )
    summary = client.post(URL, json=seed_request).json()["diagnoses_summary"]
    assert summary["member_rejected"] == 2  # M00912's two diagnoses
    assert summary["unknown_member"] == 1  # an ID the request does not list
    assert sum(summary.values()) == 3


def test_member_rejected_is_the_same_from_the_cache(make_client, seed_request):
    client = make_client(Settings(cache_size=100))
    seed_request["memberships"][0]["Gender"] = "X"
    first = client.post(URL, json=seed_request).json()
    second = client.post(URL, json=seed_request).json()
    assert second["cache_status"] == "Cache hit"
    assert second["diagnoses_summary"] == first["diagnoses_summary"]
    assert second["diagnoses_summary"]["member_rejected"] == 2


def test_py2026_on_2024_dates_warns_naming_the_years(client, seed_request):
    seed_request["payment_year"] = 2026
    body = client.post(URL, json=seed_request).json()
    codes = {w["code"]: w for w in body["warnings"]}
    assert set(codes) == {"outside_collection_year", "no_diagnosis_used"}
    warning = codes["outside_collection_year"]
    assert warning["count"] == 2
    assert warning["message"].startswith(
        "100% of diagnoses (2 of 2) are dated 2024; PY2026 scores diagnoses from 2025"
    )
    assert "2024: 2 rows" in warning["message"]
    assert body["members_scored"] == 2  # scored, demographic only: that is why it warns


def test_the_seed_request_warns_only_about_its_unknown_code(client, seed_request):
    body = client.post(URL, json=seed_request).json()
    assert [(w["code"], w["count"]) for w in body["warnings"]] == [("unknown_code", 1)]
    assert [r["Active_Score"] for r in body["results"]] == [0, 0, 1, 0, 0, 1]  # rows unchanged


def test_thresholds_are_settings(make_client, seed_request):
    client = make_client(Settings(warning_thresholds=WarningThresholds(unknown_code_pct=50)))
    assert client.post(URL, json=seed_request).json()["warnings"] == []  # 50% is not over 50%


def test_demographic_only_request_says_no_diagnosis_was_used(client, seed_request):
    seed_request["diagnoses"] = []
    [warning] = client.post(URL, json=seed_request).json()["warnings"]
    assert warning == {
        "code": "no_diagnosis_used",
        "message": "no diagnoses were sent; every score is demographic only",
        "count": 0,
    }


@pytest.mark.parametrize("value", ["x", "150", "-1"])
def test_bad_threshold_setting_is_rejected_at_start(value):
    from app.settings import SettingsError

    with pytest.raises(SettingsError, match="RAF_WARN_INVALID_DATES_PCT"):
        Settings.from_env({"RAF_WARN_INVALID_DATES_PCT": value})
