"""Client input never gets a 500, and every 4xx carries the request id (body and header).

The two 500s a fuzz run found (every one of ~5,000 server errors): a non-UTF-8
byte in a multipart text field of `POST /v1/jobs` (`UnicodeDecodeError` in
Litestar's multipart parser) and JSON nested ~970 levels deep (`RecursionError`
in `decode_request`, a 2 KB body).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from app.json_depth import MAX_JSON_DEPTH, JsonTooDeep, check_json_depth
from app.main import create_app
from app.settings import Settings


@pytest.fixture
def app_client(tmp_path, monkeypatch) -> Iterator[TestClient]:
    """The whole app, jobs included (thread executor: no worker process to spawn)."""
    monkeypatch.setenv("RAF_JOB_EXECUTOR", "thread")
    app = create_app(Settings(data_dir=str(tmp_path / "data")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_request_id(response, sent: str | None = None) -> None:
    body = response.json()
    assert body["status"] == "failure"
    assert body["request_id"], body
    assert response.headers["x-request-id"] == body["request_id"]
    if sent is not None:
        assert body["request_id"] == sent


def nested(depth: int) -> bytes:
    """A request whose unknown field `x` nests `depth` levels below the top object."""
    return b'{"payment_year":2025,"memberships":[],"x":' + b"[" * depth + b"]" * depth + b"}"


def test_non_utf8_multipart_text_field_is_400_naming_it(app_client) -> None:
    response = app_client.post(
        "/v1/jobs",
        files={"memberships": ("m.csv", b"MemberID,DOB,Gender,RAType\n", "text/csv")},
        data={"payment_year": b"20\xff25"},
        headers={"X-Request-ID": "fuzz-1"},
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["field"] == "payment_year"
    assert "payment_year" in body["message"] and "UTF-8" in body["message"]
    assert_request_id(response, "fuzz-1")


@pytest.mark.parametrize("field", ["rates", "diagnoses"])
def test_text_where_a_file_is_expected_is_400_naming_the_field(app_client, field) -> None:
    # `rates` was a 500: Litestar reports a form field named like a dependency as a server
    # error when it fails validation (found by tests/api/test_fuzz.py)
    response = app_client.post(
        "/v1/jobs",
        files={"memberships": ("m.csv", b"MemberID,DOB,Gender,RAType\n", "text/csv")},
        data={"payment_year": "2025", field: "null"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field
    assert_request_id(response)


def test_deep_json_is_400_before_the_decoder_recurses(app_client) -> None:
    response = app_client.post(
        "/v1/risk-scores", content=nested(970), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "$"
    assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["message"]
    assert_request_id(response)


def test_deep_json_to_the_async_route_is_400(app_client) -> None:
    response = app_client.post("/api/risk-assessment", content=nested(5000))
    assert response.status_code == 400, response.text
    assert_request_id(response)


def test_json_at_the_depth_limit_still_decodes(app_client) -> None:
    # `x` at depth MAX-1 under the top object: the document nests exactly MAX levels
    response = app_client.post(
        "/v1/risk-scores",
        content=nested(MAX_JSON_DEPTH - 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body, too_deep",
    [
        (b"[" * 65 + b"]" * 65, True),
        (b"[" * 64 + b"]" * 64, False),
        (b'{"a":"' + b"[" * 200 + b'"}', False),  # brackets inside a string are text
        (b'{"a":"\\"' + b"[" * 200 + b'"}', False),  # after an escaped quote, still text
        (b'{"a":[' + b'"]",[' * 70 + b"1" + b"]" * 71 + b"}", True),  # a "]" string closes nothing
        (b"[1,2" * 30 + b"}", False),  # not JSON, shallow: the decoder says where
        (b"[" * 100, True),  # unclosed and deep: the decoder would recurse
    ],
    ids=["65", "64", "in-string", "escaped-quote", "string-bracket", "shallow-broken", "unclosed"],
)
def test_depth_check_reads_strings_and_escapes(body: bytes, too_deep: bool) -> None:
    if too_deep:
        with pytest.raises(JsonTooDeep):
            check_json_depth(body)
    else:
        check_json_depth(body)


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/no-such-route"), ("DELETE", "/v1/risk-scores"), ("PUT", "/v1/jobs/abc")],
)
def test_unknown_routes_and_methods_carry_the_request_id(app_client, method, path) -> None:
    response = app_client.request(method, path, headers={"X-Request-ID": "r-404"})
    assert response.status_code in (404, 405)
    assert_request_id(response, "r-404")


def test_400_404_and_413_carry_the_request_id(make_client, app_client, seed_request) -> None:
    bad = app_client.post("/v1/risk-scores", json={**seed_request, "payment_year": "x"})
    assert bad.status_code == 400
    assert_request_id(bad)
    missing_job = app_client.get("/v1/jobs/0123abc")
    assert missing_job.status_code == 404
    assert_request_id(missing_job)
    bad_submit = app_client.post(
        "/v1/jobs",
        data={"payment_year": "2025"},
        files={
            "memberships": ("m.txt", b"x", "application/octet-stream"),
            "diagnoses": ("d.exe", b"", "x/y"),
        },
    )
    assert bad_submit.status_code == 400
    assert_request_id(bad_submit)
    small = make_client(Settings(max_body_bytes=100))
    too_large = small.post("/v1/risk-scores", json=seed_request)
    assert too_large.status_code == 413
    assert_request_id(too_large)


def test_an_integer_past_int64_in_a_json_roster_is_accepted_not_a_500(
    app_client, seed_request
) -> None:
    """JSON allows any integer; polars cannot cast one past Int64 to text (a 500 found by
    the fuzz run on `POST /api/risk-assessment`)."""
    request = {**seed_request, "memberships": [
        {**seed_request["memberships"][0], "Enrollment_Months": 9223372036854775808},
        seed_request["memberships"][1],
    ]}
    response = app_client.post("/api/risk-assessment", json=request)
    assert response.status_code == 202, response.text
