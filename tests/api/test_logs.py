"""Structured JSON logs: request id, counts, cache hits, duration; no member data at INFO
(`docs/api.md` "Errors", last paragraph)."""

from __future__ import annotations

import json

from app.settings import Settings


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_request_log_has_counts_and_no_member_data(make_client, seed_request, capsys) -> None:
    client = make_client(Settings(log_level="INFO"))
    capsys.readouterr()
    seed_request["memberships"][0]["Gender"] = "Q"  # a member error: its message names values
    response = client.post("/v1/risk-scores", json=seed_request, headers={"X-Request-ID": "abc-1"})
    assert response.status_code == 200
    out = capsys.readouterr().out
    lines = log_lines(out)
    scoring = [line for line in lines if line["event"] == "risk_scores"]
    assert len(scoring) == 1
    event = scoring[0]
    assert event["request_id"] == "abc-1"
    assert event["level"] == "info"
    assert event["member_count"] == 2 and event["row_count"] == 3 and event["error_count"] == 1
    assert event["cache_hits"] == 0 and event["cache_misses"] == 2
    assert event["duration_ms"] >= event["engine_ms"] > 0
    access = [line for line in lines if line["event"] == "http_request"]
    assert access[0]["status_code"] == 200 and access[0]["duration_ms"] > 0
    assert access[0]["request_id"] == "abc-1"
    for member_data in ("M00912", "M00913", "1985-10-13", "1938-06-16", "F13229", "S62X5", '"Q"'):
        assert member_data not in out


def test_request_id_is_generated_and_returned(client) -> None:
    response = client.get("/health")
    assert len(response.headers["x-request-id"]) == 32


def test_warning_level_silences_info(make_client, seed_request, capsys) -> None:
    client = make_client(Settings(log_level="WARNING"))
    capsys.readouterr()
    client.post("/v1/risk-scores", json=seed_request)
    assert not [line for line in log_lines(capsys.readouterr().out) if line["level"] == "info"]
