"""Jobs: a rate table part, and the summary, report and compare routes of completed jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.cli import main
from app.main import create_app
from app.settings import Settings
from tests.finance.roster import write_priced_roster


def wait_completed(client: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in ("completed", "failed"):
            assert body["status"] == "completed", body
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture
def jobs_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RAF_JOB_EXECUTOR", "thread")
    app = create_app(Settings(data_dir=str(tmp_path / "data")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def submit(client: TestClient, files: dict[str, Path], year: int) -> str:
    parts = {name: (path.name, path.read_bytes(), "text/csv") for name, path in files.items()}
    response = client.post("/v1/jobs", data={"payment_year": str(year)}, files=parts)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def test_job_summary_report_and_compare(jobs_client: TestClient, tmp_path: Path) -> None:
    members, diagnoses, rates = write_priced_roster(tmp_path)
    files = {"memberships": members, "diagnoses": diagnoses, "rates": rates}
    first = submit(jobs_client, files, 2025)
    assert jobs_client.get(f"/v1/jobs/{first}/summary").status_code in (200, 409)
    wait_completed(jobs_client, first)

    response = jobs_client.get(f"/v1/jobs/{first}/summary")
    assert response.status_code == 200
    summary = response.json()
    # the same roster through the CLI says the same
    cli_summary = tmp_path / "cli-summary.json"
    main(["score", "--payment-year", "2025", "--members", str(members), "--diagnoses",
          str(diagnoses), "--rates", str(rates), "--out", str(tmp_path / "cli.parquet"),
          "--summary", str(cli_summary), "--quiet"])
    expected = json.loads(cli_summary.read_text())
    for key in ("members_received", "members_scored", "members_rejected", "scores", "by_segment",
                "payment", "transition", "rejected", "diagnoses", "warnings", "active_histogram"):
        assert summary[key] == expected[key], key
    assert summary["payment"]["total_cents"] > 0
    assert jobs_client.get(f"/v1/jobs/{first}/summary").json() == summary  # kept, same

    report = jobs_client.get(f"/v1/jobs/{first}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.text.count('<figure class="chart"') == 4
    assert "http://" not in report.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in report.text

    second = submit(jobs_client, files, 2026)
    wait_completed(jobs_client, second)
    compared = jobs_client.get(f"/v1/jobs/{first}/compare/{second}")
    assert compared.status_code == 200
    body = compared.json()
    assert body["payment_year_a"] == 2025 and body["payment_year_b"] == 2026
    assert body["members_both"] + body["members_a_only"] == summary["members_scored"]
    assert body["members_both"] > 0 and body["delta"]["count"] == body["members_both"]
    assert jobs_client.get(f"/v1/jobs/{first}/compare/nope").status_code == 404
    assert jobs_client.get("/v1/jobs/nope/summary").status_code == 404
    assert jobs_client.get("/v1/jobs/nope/report").status_code == 404


def test_bad_rate_table_part_is_a_400(jobs_client: TestClient, tmp_path: Path) -> None:
    members, _diagnoses, rates = write_priced_roster(tmp_path)
    rates.write_text("payment_year,county,monthly_rate\n2025,1001,900\n")
    response = jobs_client.post(
        "/v1/jobs", data={"payment_year": "2025"},
        files={"memberships": ("m.csv", members.read_bytes(), "text/csv"),
               "rates": ("r.csv", rates.read_bytes(), "text/csv")},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "rates"
    assert "line 2: county 1001" in response.json()["message"]


def test_another_key_gets_404_on_the_finance_routes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAF_JOB_EXECUTOR", "thread")
    key_a, key_b = {"ApiKey": "key-a-0123456789"}, {"ApiKey": "key-b-9876543210"}
    app = create_app(Settings(data_dir=str(tmp_path / "data"),
                              api_keys=(key_a["ApiKey"], key_b["ApiKey"])))
    members, diagnoses, _rates = write_priced_roster(tmp_path)
    parts = {"memberships": ("m.csv", members.read_bytes(), "text/csv"),
             "diagnoses": ("d.csv", diagnoses.read_bytes(), "text/csv")}
    with TestClient(app, raise_server_exceptions=False) as client:
        job_id = client.post("/v1/jobs", data={"payment_year": "2025"}, files=parts,
                             headers=key_a).json()["job_id"]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/jobs/{job_id}", headers=key_a).json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for tail in ("/summary", "/report", f"/compare/{job_id}"):
            theirs = client.get(f"/v1/jobs/{job_id}{tail}", headers=key_b)
            assert theirs.status_code == 404, (tail, theirs.text)
            assert "A0" not in theirs.text
            assert client.get(f"/v1/jobs/{job_id}{tail}", headers=key_a).status_code == 200
