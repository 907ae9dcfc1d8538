"""One test per row of the error table in `docs/api.md` "Errors"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.settings import Settings

URL = "/v1/risk-scores"


def assert_failure(response: Any, status_code: int) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["status"] == "failure"
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
    return body


# -- 400: body is not JSON, or not an object


def test_400_body_is_not_json(client) -> None:
    body = assert_failure(client.post(URL, content=b'{"payment_year": 2025,'), 400)
    assert "not valid JSON" in body["message"]


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"42", b"null"])
def test_400_body_is_not_an_object(client, payload: bytes) -> None:
    body = assert_failure(client.post(URL, content=payload), 400)
    assert "must be a JSON object" in body["message"]


# -- 400: missing/mistyped request field (path named), unsupported payment_year


def test_400_missing_field_names_the_path(client, seed_request) -> None:
    del seed_request["memberships"][1]["DOB"]
    body = assert_failure(client.post(URL, json=seed_request), 400)
    assert "$.memberships[1]" in body["message"] and "DOB" in body["message"]


def test_400_missing_top_level_field(client, seed_request) -> None:
    del seed_request["payment_year"]
    body = assert_failure(client.post(URL, json=seed_request), 400)
    assert "payment_year" in body["message"]


def test_400_mistyped_field_names_the_path(client, seed_request) -> None:
    seed_request["diagnoses"][1]["DxCode"] = 123
    body = assert_failure(client.post(URL, json=seed_request), 400)
    assert body["message"].startswith("$.diagnoses[1].DxCode:")
    assert body["errors"] == [{"field": "$.diagnoses[1].DxCode",
                               "message": "Expected `str`, got `int`"}]


def test_400_payment_year_as_string_is_mistyped(client, seed_request) -> None:
    seed_request["payment_year"] = "2025"
    body = assert_failure(client.post(URL, json=seed_request), 400)
    assert body["message"].startswith("$.payment_year:")


def test_400_unsupported_payment_year(client, seed_request) -> None:
    seed_request["payment_year"] = 2019
    body = assert_failure(client.post(URL, json=seed_request), 400)
    assert body["message"].startswith("$.payment_year:")
    assert "2019" in body["message"] and "2025" in body["message"]  # names the supported years


# -- 200 partial: one member bad, the others scored


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"RAType": "PK"}, "RAType"),  # PACE code
        ({"DOB": "1950-13-45"}, "DOB"),  # not a date
        ({"DOB": "2999-01-01"}, "DOB"),  # in the future
        ({"Gender": "X"}, "Gender"),
        ({"Hospice": "maybe"}, "Hospice"),  # Y/N flag not Y/N
    ],
)
def test_200_partial_when_one_member_is_bad(client, seed_request, change, field) -> None:
    seed_request["memberships"][0].update(change)
    response = client.post(URL, json=seed_request)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "partial"
    assert [(e["MemberID"], e["field"]) for e in body["errors"]] == [("M00912", field)]
    assert {r["Member_Id"] for r in body["results"]} == {"M00913"}
    assert body["count"] == 3 and body["member_count"] == 2


def test_200_partial_on_conflicting_duplicate_member_id(client, seed_request) -> None:
    duplicate = dict(seed_request["memberships"][1], DOB="1940-01-01")
    seed_request["memberships"].append(duplicate)
    body = client.post(URL, json=seed_request).json()
    assert body["status"] == "partial"
    assert [e["MemberID"] for e in body["errors"]] == ["M00913", "M00913"]  # one per row
    assert {r["Member_Id"] for r in body["results"]} == {"M00912"}
    assert (body["member_count"], body["members_scored"]) == (3, 1)


# -- 200: diagnoses for unknown members, bad dates, ThruDOS before FromDOS are counted


def test_unusable_diagnoses_are_ignored_and_counted(client, seed_request) -> None:
    seed_request["diagnoses"] += [
        {"MemberID": "NOBODY", "FromDOS": "2024-03-01", "ThruDOS": "2024-03-02", "DxCode": "E119"},
        {"MemberID": "M00913", "FromDOS": "2024-02-30", "ThruDOS": "2024-03-02", "DxCode": "E119"},
        {"MemberID": "M00913", "FromDOS": "2024-05-01", "ThruDOS": "2024-04-01", "DxCode": "E119"},
    ]
    body = client.post(URL, json=seed_request).json()
    assert body["status"] == "success"
    assert body["diagnoses_summary"]["unknown_member"] == 1
    assert body["diagnoses_summary"]["invalid_dates"] == 2
    assert [r["RAF_Total"] for r in body["results"] if r["Member_Id"] == "M00913"] == [
        0.624, 0.641, 0.549109]


# -- 401: API keys configured, key missing or wrong


@pytest.fixture
def keyed_client(make_client):
    return make_client(Settings(api_keys=("k-one", "k-two")))


def test_401_without_a_key(keyed_client, seed_request) -> None:
    body = assert_failure(keyed_client.post(URL, json=seed_request), 401)
    assert "missing API key" in body["message"]


def test_401_with_a_wrong_key(keyed_client, seed_request) -> None:
    assert_failure(keyed_client.post(URL, json=seed_request, headers={"ApiKey": "k-on"}), 401)
    assert_failure(
        keyed_client.post(URL, json=seed_request, headers={"Authorization": "Bearer nope"}), 401
    )
    assert_failure(keyed_client.get("/v1/reference", headers={"ApiKey": "wrong"}), 401)


def test_right_key_in_either_header_is_accepted(keyed_client, seed_request) -> None:
    assert keyed_client.post(URL, json=seed_request, headers={"ApiKey": "k-two"}).status_code == 200
    ok = keyed_client.post(URL, json=seed_request, headers={"Authorization": "Bearer k-one"})
    assert ok.status_code == 200
    assert keyed_client.get("/health").status_code == 200  # liveness stays open
    assert keyed_client.get("/schema/openapi.json").status_code == 200


# -- 413: body over the configured size, or more members than the limit


def test_413_body_too_large_names_the_limit(make_client, seed_request) -> None:
    client = make_client(Settings(max_body_bytes=200))
    body = assert_failure(client.post(URL, content=json.dumps(seed_request).encode()), 413)
    assert "200 bytes" in body["message"]


def test_413_too_many_members_names_the_limit(make_client, seed_request) -> None:
    client = make_client(Settings(max_members=1))
    body = assert_failure(client.post(URL, json=seed_request), 413)
    assert "limit of 1 members" in body["message"]


# -- 500: anything unexpected -> request id; the log has the traceback, no member data


def test_500_has_a_request_id_and_logs_no_member_data(make_client, seed_request, capsys) -> None:
    def exploding_score_batch(memberships, *args, **kwargs):
        member_id = memberships["MemberID"][0]
        raise RuntimeError(f"boom while scoring {member_id} born 1985-10-13 with F13229")

    client = make_client(score_batch=exploding_score_batch)
    response = client.post(URL, json=seed_request, headers={"X-Request-ID": "req-123"})
    body = assert_failure(response, 500)
    assert body["request_id"] == "req-123"
    assert "req-123" in body["message"]
    assert response.headers["x-request-id"] == "req-123"
    logged = capsys.readouterr().out
    error_lines = [json.loads(line) for line in logged.splitlines()
                   if line.startswith("{") and '"unhandled_exception"' in line]
    assert error_lines and error_lines[0]["request_id"] == "req-123"
    assert any("exploding_score_batch" in frame for frame in error_lines[0]["traceback"])
    for secret in ("M00912", "1985-10-13", "F13229", "M00913"):
        assert secret not in logged


def test_400_bad_query_parameter_names_it(client, seed_request) -> None:
    body = assert_failure(client.post(URL + "?detail=perhaps", json=seed_request), 400)
    assert [e["field"] for e in body["errors"]] == ["detail"]
