"""Asynchronous jobs: HTTP round trip, restart recovery, bounded concurrency, Trixss shape."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import polars as pl
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app import batch
from app.auth import require_api_key
from app.errors import exception_handlers
from app.jobs import (
    RESTART_REASON,
    JobService,
    JobSettings,
    jobs_lifespan,
)
from app.main import job_route_handlers
from app.settings import Settings
from tests.batch.conftest import run_score, write_roster
from tests.batch.roster import roster


def make_app(service: JobService, api_keys: tuple[str, ...] = ()) -> Litestar:
    """The jobs routes with the app's error handlers (and its key guard when keys are given)."""
    app = Litestar(
        route_handlers=job_route_handlers(),
        lifespan=[jobs_lifespan],
        exception_handlers=exception_handlers(),
        guards=[require_api_key],
    )
    app.state.jobs = service
    app.state.settings = Settings(api_keys=api_keys)
    return app


def settings(tmp_path: Path, **overrides) -> JobSettings:
    """Thread workers: they see the test's monkeypatched engine (a spawned process would not)."""
    return JobSettings(
        data_dir=tmp_path / "data", poll_seconds=0.05, **{"executor": "thread", **overrides}
    )


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def cli_scores(tmp_path: Path, members: Path, dx: Path | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    out = tmp_path / "cli" / "scores.parquet"
    errors = tmp_path / "cli" / "errors.parquet"
    assert run_score(members, out, "--errors", str(errors), diagnoses=dx) in (0, 2)
    return pl.read_parquet(out), pl.read_parquet(errors)


CONTENT_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
}


def upload(path: Path) -> tuple[str, bytes, str]:
    return path.name, path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream")


def submit_files(client: TestClient, members: Path, dx: Path | None, year: str = "2025"):
    files = {"memberships": upload(members)}
    if dx is not None:
        files["diagnoses"] = upload(dx)
    return client.post("/v1/jobs", data={"payment_year": year}, files=files)


def test_submit_poll_and_download_match_the_cli(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 150, bad_every=40)
    service = JobService(settings(tmp_path, chunk_members=16))
    with TestClient(make_app(service)) as client:
        accepted = submit_files(client, members, dx)
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["status"] == "queued"
        assert body["status_url"] == f"/v1/jobs/{body['job_id']}"
        status = wait_for(
            lambda: (s := client.get(body["status_url"]).json())["status"] == "completed" and s
        )
        assert status["member_count"] == 150
        assert status["members_rejected"] == status["errors_count"] > 0
        assert status["progress"] == {"members_done": 150, "members_total": 150}
        parquet = client.get(body["result_url"], params={"format": "parquet"})
        assert parquet.status_code == 200
        (tmp_path / "r.parquet").write_bytes(parquet.content)
        csv = client.get(body["result_url"])
        assert csv.headers["content-type"].startswith("text/csv")
        errors_csv = client.get(f"/v1/jobs/{body['job_id']}/errors", params={"format": "csv"})
        assert errors_csv.text.splitlines()[0] == "MemberID,line,field,message"
    expected_rows, expected_errors = cli_scores(tmp_path, members, dx)
    assert pl.read_parquet(tmp_path / "r.parquet").equals(expected_rows)
    (tmp_path / "e.csv").write_text(errors_csv.text)
    assert pl.read_csv(tmp_path / "e.csv").equals(expected_errors.cast({"line": pl.Int64}))


@pytest.mark.parametrize(
    "year, member_name, field, fragment",
    [
        ("1999", "members.csv", "payment_year", "1999"),
        ("next year", "members.csv", "payment_year", "not a year"),
        ("2025", "members.xlsx", "memberships", "unsupported file type"),
    ],
)
def test_bad_submission_is_400_naming_the_field_and_leaves_nothing(
    engine, tmp_path, year, member_name, field, fragment
):
    members, dx = write_roster(tmp_path / "in", 5)
    renamed = members.rename(members.with_name(member_name))
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        response = submit_files(client, renamed, dx, year)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == field
    assert fragment in response.json()["message"]
    assert list(service.store.jobs_dir.iterdir()) == []


def test_missing_column_is_400_naming_it(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 5)
    pl.read_csv(dx).drop("DxCode").write_csv(dx)
    with TestClient(make_app(JobService(settings(tmp_path)))) as client:
        response = submit_files(client, members, dx)
    assert response.status_code == 400
    assert "DxCode" in response.json()["message"]
    assert response.json()["errors"][0]["field"] == "diagnoses"


def test_unknown_job_is_404_and_unfinished_result_is_409(engine, tmp_path, monkeypatch):
    gate = threading.Event()
    score, store = engine

    def slow_score(*args, **kwargs):
        gate.wait(10)
        return score(*args, **kwargs)

    monkeypatch.setattr(batch, "default_engine", lambda: (slow_score, store))
    members, dx = write_roster(tmp_path / "in", 10)
    with TestClient(make_app(JobService(settings(tmp_path)))) as client:
        assert client.get("/v1/jobs/nope").status_code == 404
        job = submit_files(client, members, dx).json()
        running = wait_for(
            lambda: (
                (s := client.get(job["status_url"]).json())["status"] == "running"
                and s["progress"]["members_total"] is not None
                and s
            )
        )
        assert running["progress"] == {"members_done": 0, "members_total": 10}
        early = client.get(job["result_url"])
        assert early.status_code == 409
        assert early.json()["errors"] == [{"field": "status", "message": "running"}]
        gate.set()
        wait_for(lambda: client.get(job["status_url"]).json()["status"] == "completed")
        assert client.get(job["result_url"], params={"format": "xml"}).status_code == 400


def gate_engine(monkeypatch, engine) -> tuple[threading.Semaphore, threading.Event]:
    """Make every chunk wait for `release`; `inside` counts chunks that reached the engine."""
    score, store = engine
    inside, release = threading.Semaphore(0), threading.Event()

    def gated(*args, **kwargs):
        inside.release()
        release.wait(10)
        return score(*args, **kwargs)

    monkeypatch.setattr(batch, "default_engine", lambda: (gated, store))
    return inside, release


def _stage_job(service: JobService, members: Path, dx: Path, owner: str = "") -> str:
    """Put a job in the store the way POST /v1/jobs does, without HTTP."""
    job_id, directory = service.store.new_job_dir()
    (directory / "memberships.csv").write_bytes(members.read_bytes())
    (directory / "diagnoses.csv").write_bytes(dx.read_bytes())
    service.store.create(job_id, 2025, "memberships.csv", "diagnoses.csv", owner=owner)
    return job_id


def test_job_left_running_by_a_crash_is_rerun_on_restart(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 80, bad_every=30)
    crashed = JobService(settings(tmp_path))
    job_id = _stage_job(crashed, members, dx)
    assert crashed.store.claim(job_id)  # the runner took it ... and the process died here
    crashed.store.progress(job_id, 40, 80)
    partial = crashed.store.result_path(job_id).with_name("result.parquet.0123456789ab.partial")
    partial.mkdir()  # a half-written output from the dead run

    restarted = JobService(settings(tmp_path))
    restarted.start()
    try:
        job = wait_for(lambda: (j := restarted.store.get(job_id)).status == "completed" and j)
    finally:
        restarted.stop()
    assert job.attempts == 2
    expected_rows, _ = cli_scores(tmp_path, members, dx)
    assert pl.read_parquet(restarted.store.result_path(job_id)).equals(expected_rows)
    assert not partial.exists()


def test_graceful_stop_mid_run_requeues_and_the_next_start_completes(engine, tmp_path, monkeypatch):
    score, store = engine
    chunks_seen, release = gate_engine(monkeypatch, engine)
    members, dx = write_roster(tmp_path / "in", 60)
    first = JobService(settings(tmp_path, chunk_members=10))
    job_id = _stage_job(first, members, dx)
    first.start()
    assert chunks_seen.acquire(timeout=10)  # inside chunk 1
    stopper = threading.Thread(target=first.stop)
    stopper.start()
    release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    interrupted = first.store.get(job_id)
    assert interrupted.status == "queued" and interrupted.attempts == 1  # every start counts
    assert interrupted.crashes == 0
    assert not first.store.result_path(job_id).exists()

    monkeypatch.setattr(batch, "default_engine", lambda: (score, store))
    second = JobService(settings(tmp_path, chunk_members=10))
    second.start()
    try:
        wait_for(lambda: second.store.get(job_id).status == "completed")
    finally:
        second.stop()
    expected_rows, _ = cli_scores(tmp_path, members, dx)
    assert pl.read_parquet(second.store.result_path(job_id)).equals(expected_rows)


def test_an_orphaned_worker_cannot_touch_the_live_attempt(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 10)
    service = JobService(settings(tmp_path))
    job_id = _stage_job(service, members, dx)
    assert service.store.claim(job_id)  # attempt 1, then the server died
    service.store.recover(max_attempts=3)
    assert service.store.claim(job_id)  # attempt 2 is the live one
    service.store.fail(job_id, "late news from attempt 1", attempt=1)
    service.store.progress(job_id, 7, 10, attempt=1)
    live = service.store.get(job_id)
    assert (live.status, live.attempts, live.members_done) == ("running", 2, 0)
    service.store.progress(job_id, 5, 10, attempt=2)
    assert service.store.get(job_id).members_done == 5


def test_unrecoverable_interrupted_jobs_fail_explicitly(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 10)
    service = JobService(settings(tmp_path, max_attempts=2))
    gone = _stage_job(service, members, dx)
    assert service.store.claim(gone)
    (service.store.job_dir(gone) / "diagnoses.csv").unlink()
    poison = _stage_job(service, members, dx)
    for _ in range(2):  # crashed the server twice already
        assert service.store.claim(poison)
        service.store.recover(max_attempts=5)
    assert service.store.claim(poison)
    queued = _stage_job(service, members, dx)

    restarted = JobService(settings(tmp_path, max_attempts=2))
    restarted.start()
    try:
        wait_for(lambda: restarted.store.get(queued).status == "completed")
    finally:
        restarted.stop()
    for job_id in (gone, poison):
        job = restarted.store.get(job_id)
        assert job.status == "failed"
        assert job.reason.startswith(RESTART_REASON)
    # nothing vanished
    assert {restarted.store.get(j).status for j in (gone, poison, queued)} == {
        "failed",
        "completed",
    }


def test_concurrency_is_bounded_by_workers(engine, tmp_path, monkeypatch):
    score, store = engine
    active = 0
    peak = 0
    lock = threading.Lock()

    def counting_score(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        try:
            return score(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(batch, "default_engine", lambda: (counting_score, store))
    members, dx = write_roster(tmp_path / "in", 20)
    service = JobService(settings(tmp_path, workers=1))
    job_ids = [_stage_job(service, members, dx) for _ in range(3)]
    service.start()
    try:
        wait_for(lambda: all(service.store.get(j).status == "completed" for j in job_ids))
    finally:
        service.stop()
    assert peak == 1


def test_health_trixss_async_shape(engine, tmp_path):
    m, d = roster(12, bad_every=10)
    request = {"payment_year": 2025, "memberships": m.to_dicts(), "diagnoses": d.to_dicts()}
    with TestClient(make_app(JobService(settings(tmp_path)))) as client:
        accepted = client.post("/api/risk-assessment", json=request)
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["statusQueryGetUri"].endswith(f"/api/orchestrators/{body['instanceId']}")
        done = wait_for(
            lambda: (
                (r := client.get(f"/api/orchestrators/{body['instanceId']}")).json()[
                    "runtimeStatus"
                ]
                == "Completed"
                and r
            )
        )
        assert done.status_code == 200
        doc = done.json()
        output = doc["output"]
        assert output["count"] == len(output["results"])
        assert output["status"] == "partial" and output["errors"]
        assert list(output["results"][0])[:2] == ["Payment_Year", "Member_Id"]
        assert client.post("/api/risk-assessment", json={"memberships": []}).status_code == 400


def _process_service_with_running_job(tmp_path: Path, is_real_engine: bool, n: int = 40_000):
    if not is_real_engine:
        pytest.skip("process workers load the real engine; it is not available yet")
    members, dx = write_roster(tmp_path / "in", n, bad_every=211)
    service = JobService(settings(tmp_path, executor="process", chunk_members=4_000))
    job_id = _stage_job(service, members, dx)
    service.start()
    wait_for(lambda: (service.store.get(job_id).members_done or 0) > 0, timeout=120)
    return service, job_id, members, dx


@pytest.mark.slow
def test_process_worker_stop_is_prompt_and_requeues(engine, is_real_engine, tmp_path):
    service, job_id, members, dx = _process_service_with_running_job(tmp_path, is_real_engine)
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 10  # did not wait for the job to finish
    job = service.store.get(job_id)
    assert (job.status, job.attempts, job.crashes) == ("queued", 1, 0)

    again = JobService(settings(tmp_path, executor="process", chunk_members=4_000))
    again.start()
    try:
        wait_for(lambda: again.store.get(job_id).status == "completed", timeout=300)
    finally:
        again.stop()
    expected_rows, _ = cli_scores(tmp_path, members, dx)
    assert pl.read_parquet(again.store.result_path(job_id)).equals(expected_rows)


@pytest.mark.slow
def test_a_killed_worker_process_requeues_its_job(engine, is_real_engine, tmp_path):
    import os
    import signal

    service, job_id, members, dx = _process_service_with_running_job(tmp_path, is_real_engine)
    try:
        os.kill(service.store.get(job_id).worker_pid, signal.SIGKILL)  # e.g. the OOM killer
        job = wait_for(
            lambda: (j := service.store.get(job_id)).status == "completed" and j, timeout=300
        )
    finally:
        service.stop()
    assert (job.attempts, job.crashes) == (2, 1)
    expected_rows, _ = cli_scores(tmp_path, members, dx)
    assert pl.read_parquet(service.store.result_path(job_id)).equals(expected_rows)
