"""Job parts `mmr` and `cms`, and `GET /v1/jobs/{id}/reconciliation`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
from litestar.testing import TestClient

from app.jobs import JobService
from tests.batch.test_jobs import make_app, settings, upload, wait_for
from tests.mmr import generate as gen
from tests.mmr.test_cli import score
from tests.mmr.test_reader import MONTHS, member

DX = "MemberID,FromDOS,ThruDOS,DxCode\n1EG4TE5MK73,2024-03-01,2024-03-01,E1122\n"


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    rows = (
        gen.monthly_records(member("1EG4TE5MK73"), MONTHS)
        + gen.monthly_records(member("2EG4TE5MK74", RAType="CF"), MONTHS[:4])
        + gen.monthly_records(member("3EG4TE5MK75", RAType="ZZ"), MONTHS[:1])
    )
    dx = tmp_path / "dx.csv"
    dx.write_text(DX)
    return gen.write(tmp_path / "MONMEND.txt", rows), dx


def _completed(client: TestClient, files: dict) -> dict:
    accepted = client.post("/v1/jobs", data={"payment_year": "2025"}, files=files)
    assert accepted.status_code == 202, accepted.text
    url = accepted.json()["status_url"]
    return wait_for(
        lambda: (s := client.get(url).json())["status"] in ("completed", "failed") and s
    )


def test_mmr_job_scores_like_the_cli_and_reconciles_against_a_cms_csv(engine, tmp_path):
    mmr_path, dx = _inputs(tmp_path)
    cli_out = tmp_path / "cli" / "scores.parquet"
    assert score("--mmr", str(mmr_path), "--diagnoses", str(dx), "--out", str(cli_out)) == 2
    active = pl.read_parquet(cli_out).filter(pl.col("Active_Score") == 1).sort("Member_Id")
    totals = dict(zip(active["Member_Id"], active["RAF_Total"], strict=True))
    cms = tmp_path / "cms.csv"
    cms.write_text(
        "MemberID,RiskScore\n"
        f"1EG4TE5MK73,{Decimal(str(totals['1EG4TE5MK73']))}\n"
        f"2EG4TE5MK74,{Decimal(str(totals['2EG4TE5MK74'])) + Decimal('0.0004')}\n"
    )
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        status = _completed(
            client, {"mmr": upload(mmr_path), "diagnoses": upload(dx), "cms": upload(cms)}
        )
        assert status["status"] == "completed", status
        assert status["members_rejected"] == 1
        job = status["job_id"]
        result = client.get(f"/v1/jobs/{job}/result", params={"format": "parquet"})
        (tmp_path / "job.parquet").write_bytes(result.content)
        assert pl.read_parquet(tmp_path / "job.parquet").equals(pl.read_parquet(cli_out))
        body = client.get(f"/v1/jobs/{job}/reconciliation").json()
        summary = body["summary"]
        assert (summary["exact"], summary["within_rounding"], summary["off_by_more"]) == (1, 1, 0)
        assert summary["missing_ours"] == 0 and summary["members"] == 2
        matches = {row["MemberID"]: row["Match"] for row in body["members"]}
        assert matches == {"1EG4TE5MK73": "exact", "2EG4TE5MK74": "within_rounding"}
        csv = client.get(f"/v1/jobs/{job}/reconciliation", params={"format": "csv"})
        assert csv.status_code == 200 and csv.text.startswith("MemberID,Payment_Year,Our_Score")


def test_mmr_job_against_the_mmr_itself_and_no_cms_part_is_404(engine, tmp_path):
    mmr_path, _ = _inputs(tmp_path)
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        status = _completed(client, {"mmr": upload(mmr_path), "cms": upload(mmr_path)})
        body = client.get(f"/v1/jobs/{status['job_id']}/reconciliation").json()
        assert body["summary"]["cms"]["format"] == "mmr"
        # the ZZ member is rejected on our side and malformed on CMS's: named, not dropped
        assert body["summary"]["members"] == 3
        plain = _completed(client, {"mmr": upload(mmr_path)})
        missing = client.get(f"/v1/jobs/{plain['job_id']}/reconciliation")
        assert missing.status_code == 404
        assert "submit it with a `cms` part" in missing.json()["message"]


def test_bad_mmr_or_cms_parts_are_400_naming_the_field(engine, tmp_path):
    mmr_path, dx = _inputs(tmp_path)
    bad_cms = tmp_path / "cms.csv"
    bad_cms.write_text("Member,Score\nA,1\n")
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        both = client.post(
            "/v1/jobs",
            data={"payment_year": "2025"},
            files={"mmr": upload(mmr_path), "memberships": upload(dx)},
        )
        assert both.status_code == 400
        assert "exactly one of memberships and mmr" in both.text
        cms = client.post(
            "/v1/jobs",
            data={"payment_year": "2025"},
            files={"mmr": upload(mmr_path), "cms": upload(bad_cms)},
        )
        assert cms.status_code == 400, cms.text
        assert cms.json()["errors"][0]["field"] == "cms"
        assert "no column 'MemberID'" in cms.json()["message"]
        assert not any((tmp_path / "data" / "jobs").iterdir())  # rejected: nothing left
