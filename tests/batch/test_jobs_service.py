"""Jobs as a service: ownership per API key, listing, cancel, retention, start-up cleanup,
one attempt per folder, worker logs, submit-time file checks, result formats, detail."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import polars as pl
import pytest
from litestar.testing import TestClient

from app import batch
from app.jobs import LOCK_NAME, JobService, folder_lock
from app.logs import configure_logging
from tests.batch.conftest import write_roster
from tests.batch.roster import roster
from tests.batch.test_jobs import (
    _stage_job,
    gate_engine,
    make_app,
    settings,
    submit_files,
    upload,
    wait_for,
)

KEY_A, KEY_B = "key-a-0123456789", "key-b-9876543210"


def _as(key: str) -> dict[str, str]:
    return {"ApiKey": key}


def _completed(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> dict:
    return wait_for(
        lambda: (s := client.get(f"/v1/jobs/{job_id}", headers=headers).json())["status"]
        == "completed"
        and s
    )


# --------------------------------------------------------------------------- ownership


def job_routes(app) -> list[tuple[str, str]]:
    """(method, path with `{}` for every path parameter) of every route that takes a job
    id: all of them must answer another key's job with 404, including routes added later."""
    found = []
    for route in app.routes:
        if not route.path.startswith(("/v1/jobs/", "/api/orchestrators/")) or "{" not in route.path:
            continue
        path = re.sub(r"\{[^}]+\}", "{}", route.path)
        for method in sorted(route.methods):
            if method in ("GET", "DELETE"):
                found.append((method.lower(), path))
    return found


def test_another_key_gets_404_on_every_job_route_of_both_families(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 20, bad_every=7)
    m, d = roster(6)
    request = {"payment_year": 2025, "memberships": m.to_dicts(), "diagnoses": d.to_dicts()}
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service, api_keys=(KEY_A, KEY_B))) as client:
        files = {"memberships": upload(members), "diagnoses": upload(dx)}
        v1 = client.post(
            "/v1/jobs?detail=true", data={"payment_year": "2025"}, files=files, headers=_as(KEY_A)
        ).json()["job_id"]
        trixss = client.post("/api/risk-assessment", json=request, headers=_as(KEY_A)).json()[
            "instanceId"
        ]
        for job_id in (v1, trixss):
            _completed(client, job_id, _as(KEY_A))
        routes = [
            (method, url.replace("{}", job))
            for method, url in job_routes(client.app)
            for job in (v1, trixss)
        ]
        assert len(routes) >= 2 * 7  # status, result, errors, detail, delete, orchestrator, ...
        routes += [("get", f"/v1/jobs/{job}/result?format=json") for job in (v1, trixss)]
        for method, url in routes:
            theirs = getattr(client, method)(url, headers=_as(KEY_B))
            assert theirs.status_code == 404, (url, theirs.text)
            assert theirs.json()["status"] == "failure" and theirs.json()["errors"]
            assert "M0000" not in theirs.text
            missing = getattr(client, method)(url.replace(v1, "0" * 32).replace(trixss, "0" * 32),
                                              headers=_as(KEY_B))
            assert missing.json()["message"].replace("0" * 32, "?") == theirs.json()[
                "message"
            ].replace(v1, "?").replace(trixss, "?")  # indistinguishable from no job
        assert client.get("/v1/jobs", headers=_as(KEY_B)).json()["jobs"] == []
        # the owner still has everything (B's DELETE did nothing)
        assert client.get(f"/v1/jobs/{v1}/result", headers=_as(KEY_A)).status_code == 200
        assert client.get(f"/api/orchestrators/{trixss}", headers=_as(KEY_A)).status_code == 200
        mine = client.get("/v1/jobs", headers=_as(KEY_A)).json()["jobs"]
        assert {job["job_id"] for job in mine} == {v1, trixss}
    stored = (tmp_path / "data" / "jobs.sqlite3").read_bytes()
    assert KEY_A.encode() not in stored and KEY_B.encode() not in stored  # a keyed hash only
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as conn:
        owners = {owner for (owner,) in conn.execute("SELECT owner FROM jobs")}
    assert len(owners) == 1 and len(owners.pop()) == 64


def test_with_auth_off_all_callers_are_one_tenant(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 5)
    with TestClient(make_app(JobService(settings(tmp_path)))) as client:
        job_id = submit_files(client, members, dx).json()["job_id"]
        _completed(client, job_id)
        assert client.get(f"/v1/jobs/{job_id}", headers=_as("anything")).status_code == 200
        assert [j["job_id"] for j in client.get("/v1/jobs").json()["jobs"]] == [job_id]


# --------------------------------------------------------------------------- listing


def test_listing_is_newest_first_with_a_cursor_and_a_status_filter(engine, tmp_path):
    service = JobService(settings(tmp_path))
    members, dx = write_roster(tmp_path / "in", 3)
    job_ids = []
    for _ in range(5):
        job_ids.append(_stage_job(service, members, dx, owner=service.owner_of_key(KEY_A)))
        time.sleep(0.002)  # distinct created_at (ties are ordered by job_id)
    service.store.fail(job_ids[1], "test")
    _stage_job(service, members, dx, owner=service.owner_of_key(KEY_B))
    with TestClient(make_app(service, api_keys=(KEY_A, KEY_B))) as client:
        wait_for(
            lambda: all(service.store.get(j).status in ("completed", "failed") for j in job_ids)
        )
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/jobs", params=params, headers=_as(KEY_A))
            assert page.status_code == 200, page.text
            body = page.json()
            seen += [job["job_id"] for job in body["jobs"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seen == list(reversed(job_ids))  # newest first, each once
        failed = client.get("/v1/jobs", params={"status": "failed"}, headers=_as(KEY_A)).json()
        assert [job["job_id"] for job in failed["jobs"]] == [job_ids[1]]
        assert failed["jobs"][0]["reason"] == "test" and failed["jobs"][0]["expires_at"]
        for params, field in (
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"limit": 0}, "limit"),
            ({"status": "done"}, "status"),
        ):
            bad = client.get("/v1/jobs", params=params, headers=_as(KEY_A))
            assert bad.status_code == 400, bad.text
            assert bad.json()["errors"][0]["field"] == field


# --------------------------------------------------------------------------- cancel


@pytest.mark.slow
def test_cancel_stops_a_running_200k_member_job_within_5_s_and_frees_its_folder(
    engine, is_real_engine, tmp_path
):
    if not is_real_engine:
        pytest.skip("process workers load the real engine")
    members, dx = write_roster(tmp_path / "in", 200_000)
    service = JobService(settings(tmp_path, executor="process", chunk_members=50_000))
    with TestClient(make_app(service)) as client:
        job_id = submit_files(client, members, dx).json()["job_id"]
        folder = service.store.job_dir(job_id)
        wait_for(
            lambda: (s := client.get(f"/v1/jobs/{job_id}").json())["status"] == "running"
            and s["progress"]["members_done"] >= 50_000,  # scoring, one chunk done
            timeout=120,
        )
        worker = service.store.get(job_id).worker_pid
        assert worker and worker != os.getpid()
        started = time.monotonic()
        cancelled = client.delete(f"/v1/jobs/{job_id}")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json() == {
            "job_id": job_id,
            "deleted": True,
            "previous_status": "running",
        }
        wait_for(lambda: not folder.exists() and _gone(worker), timeout=5)
        stopped_in = time.monotonic() - started
        assert stopped_in < 5
        print(f"cancel: worker gone and folder freed {stopped_in:.2f} s after DELETE")
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 404
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 404


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state in ("Z", "X")


def test_cancel_in_thread_mode_stops_at_the_next_chunk_and_a_queued_job_goes_at_once(
    engine, tmp_path, monkeypatch
):
    inside, release = gate_engine(monkeypatch, engine)
    members, dx = write_roster(tmp_path / "in", 40)
    service = JobService(settings(tmp_path, chunk_members=10))
    with TestClient(make_app(service)) as client:
        running = submit_files(client, members, dx).json()["job_id"]
        queued = submit_files(client, members, dx).json()["job_id"]  # one worker: it waits
        assert inside.acquire(timeout=10)
        assert client.delete(f"/v1/jobs/{queued}").json()["previous_status"] == "queued"
        assert not service.store.job_dir(queued).exists()
        assert client.delete(f"/v1/jobs/{running}").json()["previous_status"] == "running"
        release.set()
        wait_for(lambda: not service.store.job_dir(running).exists(), timeout=10)
        assert client.get(f"/v1/jobs/{running}").status_code == 404
        assert not service.runner._running()


# --------------------------------------------------------------------------- retention


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_retention_removes_expired_jobs_and_the_record_says_when(engine, tmp_path):
    clock = FakeClock()
    service = JobService(settings(tmp_path), clock=clock)
    members, dx = write_roster(tmp_path / "in", 8)
    with TestClient(make_app(service)) as client:
        old = submit_files(client, members, dx).json()["job_id"]
        status = _completed(client, old)
        assert status["finished_at"] == "2026-01-05T12:00:00.000Z"
        assert status["expires_at"] == "2026-01-12T12:00:00.000Z"  # 168 h later
        clock.now += dt.timedelta(hours=100)
        young = submit_files(client, members, dx).json()["job_id"]
        _completed(client, young)
        service.runner.stop()  # hold the next one queued: a queued job never expires
        unfinished = _stage_job(service, members, dx)
        clock.now += dt.timedelta(hours=67, minutes=59)
        assert service.runner.sweep() == []
        clock.now += dt.timedelta(minutes=2)
        assert service.runner.sweep() == [old]
        assert client.get(f"/v1/jobs/{old}").status_code == 404
        assert not service.store.job_dir(old).exists()
        assert client.get(f"/v1/jobs/{young}").status_code == 200
        clock.now += dt.timedelta(days=365)
        assert service.runner.sweep() == [young]
        assert service.store.get(unfinished).status == "queued"


def test_retention_hours_come_from_the_environment():
    from app.jobs import JobSettings

    assert JobSettings.from_env({}).retention_hours == 168
    assert JobSettings.from_env({"RAF_JOB_RETENTION_HOURS": "24"}).retention_hours == 24
    with pytest.raises(ValueError, match="RAF_JOB_RETENTION_HOURS"):
        JobSettings.from_env({"RAF_JOB_RETENTION_HOURS": "-1"})


# --------------------------------------------------------------------------- start-up cleanup


def test_start_up_removes_orphan_upload_folders_and_stale_temporary_files(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 6)
    service = JobService(settings(tmp_path))
    kept = _stage_job(service, members, dx)
    service.store.fail(kept, "finished before the crash")  # no attempt will touch it again
    orphan = service.store.jobs_dir / ("f" * 32)  # an upload cut off by a SIGKILL: no record
    orphan.mkdir()
    (orphan / "memberships.csv").write_bytes(os.urandom(4096))
    stale = service.store.job_dir(kept) / "result.parquet.0123456789ab.partial"
    stale.mkdir()
    stage = service.store.job_dir(kept) / ".raf-stage-abc"
    stage.mkdir()
    busy = service.store.jobs_dir / ("e" * 32)  # a submission still writing: locked
    busy.mkdir()
    young = service.store.jobs_dir / ("d" * 32)  # just made by a submission, not locked yet
    young.mkdir()
    an_hour_ago = time.time() - 3600
    for path in (orphan, stale, stage, busy):
        os.utime(path, (an_hour_ago, an_hour_ago))
    with folder_lock(busy) as held:
        assert held
        restarted = JobService(settings(tmp_path))
        restarted.start()
        try:
            wait_for(lambda: restarted.runner.is_runner)
            # one cleanup pass visits the folders in directory order: wait for all three
            wait_for(lambda: not (orphan.exists() or stale.exists() or stage.exists()))
            assert busy.exists() and young.exists()
            assert (restarted.store.job_dir(kept) / "memberships.csv").is_file()
            assert restarted.store.get(kept).status == "failed"
        finally:
            restarted.stop()


# --------------------------------------------------------------------------- one attempt per folder


def test_a_folder_held_by_another_attempt_is_never_run_twice(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 6)
    service = JobService(settings(tmp_path, lock_wait_seconds=0.2, max_attempts=2))
    job_id = _stage_job(service, members, dx)
    with open(service.store.job_dir(job_id) / LOCK_NAME, "a+") as orphan:
        fcntl.flock(orphan, fcntl.LOCK_EX)  # an older attempt still running in this folder
        service.start()
        try:
            job = wait_for(lambda: (j := service.store.get(job_id)).status == "failed" and j)
        finally:
            service.stop()
    assert (job.attempts, job.crashes) == (2, 2)  # each start counted, neither ran
    assert "another attempt held its job folder" in job.reason
    assert not service.store.result_path(job_id).exists()


# --------------------------------------------------------------------------- worker logs


@pytest.mark.slow
def test_worker_processes_log_json_with_job_id_and_attempt(engine, is_real_engine, tmp_path, capfd):
    if not is_real_engine:
        pytest.skip("process workers load the real engine")
    configure_logging("INFO")
    members, dx = write_roster(tmp_path / "in", 2_000, bad_every=50)
    service = JobService(settings(tmp_path, executor="process"))
    job_id = _stage_job(service, members, dx)
    capfd.readouterr()
    service.start()
    try:
        wait_for(lambda: service.store.get(job_id).status == "completed", timeout=120)
        pid = service.store.get(job_id).worker_pid
        wait_for(lambda: _gone(pid), timeout=10)
    finally:
        service.stop()
    out = capfd.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert not [line for line in out.splitlines() if line.strip() and not line.startswith("{")]
    events = {line["event"]: line for line in lines if line.get("job_id") == job_id}
    assert {"job_started", "job_completed"} <= set(events)
    assert events["job_completed"]["attempt"] == 1 and events["job_completed"]["member_count"]
    for member_data in ("M0000", "E119", "1950-"):
        assert member_data not in out


def test_runner_log_lines_carry_job_id_attempt_and_reason(engine, tmp_path, capsys):
    configure_logging("INFO")  # what the app does: JSON lines
    members, dx = write_roster(tmp_path / "in", 6)
    service = JobService(settings(tmp_path))
    job_id = _stage_job(service, members, dx)
    assert service.store.claim(job_id)  # then the server died
    capsys.readouterr()
    service.store.recover(max_attempts=3)
    requeued = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert requeued[-1]["event"] == "job_requeued"
    assert requeued[-1]["job_id"] == job_id and requeued[-1]["attempt"] == 1
    assert requeued[-1]["reason"] == "interrupted by server restart"


# --------------------------------------------------------------------------- submit-time checks

BAD_FILES = [
    (b'MemberID,DOB,Gender,RAType\nM1,"1950-01-01,M,CN\n', "line 2", "quoted field"),
    (b"MemberID,DOB,Gender,RAType\nM1,1950-01-01,M,CN,X,Y,Z,W,V\n", "line 2", "9 fields"),
    (b"MemberID;DOB;Gender;RAType\nM1;1950-01-01;M;CN\n", "line 1", "semicolon"),
    (b"MemberID,DOB,Gender,RAType\nM\xe9,1950-01-01,M,CN\n", "line 2", "UTF-8"),
    (bytes(range(256)) * 64, "line 1", "control characters"),
    (b"\x89PNG\r\n\x1a\n" + os.urandom(2048).replace(b"\n", b"x"), "line 1", ""),
    (b"", "empty", "header"),
]


@pytest.mark.parametrize("content, line, fragment", BAD_FILES)
def test_a_bad_file_is_400_at_submit_naming_the_line_and_leaves_nothing(
    engine, tmp_path, content, line, fragment
):
    (tmp_path / "members.csv").write_bytes(content)
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        response = submit_files(client, tmp_path / "members.csv", None)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["field"] == "memberships"
    assert body["message"].startswith("memberships.csv: ") and line in body["message"]
    assert fragment in body["message"]
    assert len(body["message"]) < 250
    for polars_text in ("polars", "infer_schema", "ComputeError", "offset in the file"):
        assert polars_text not in body["message"]
    assert "\\u00" not in response.text and "\\x" not in response.text  # no junk echoed
    assert list(service.store.jobs_dir.iterdir()) == []


def test_a_bad_row_past_the_checked_head_fails_the_job_naming_its_line(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", batch.HEAD_LINES + 500)
    text = members.read_text().splitlines()
    text[batch.HEAD_LINES + 200] = text[batch.HEAD_LINES + 200].replace(",", ',"', 1)
    members.write_text("\n".join(text) + "\n")
    with TestClient(make_app(JobService(settings(tmp_path)))) as client:
        accepted = submit_files(client, members, dx)
        assert accepted.status_code == 202, accepted.text
        status = wait_for(
            lambda: (s := client.get(accepted.json()["status_url"]).json())["status"] == "failed"
            and s
        )
    assert status["reason"].startswith(f"memberships.csv: line {batch.HEAD_LINES + 201}: ")
    assert "polars" not in status["reason"] and "infer_schema" not in status["reason"]


# --------------------------------------------------------------------------- formats and detail


def test_results_come_as_csv_json_or_parquet_and_detail_on_request(engine, tmp_path):
    members, dx = write_roster(tmp_path / "in", 30, bad_every=9)
    with TestClient(make_app(JobService(settings(tmp_path)))) as client:
        files = {"memberships": upload(members), "diagnoses": upload(dx)}
        accepted = client.post("/v1/jobs?detail=true", data={"payment_year": "2025"}, files=files)
        assert accepted.json()["detail_url"].endswith("/detail")
        job_id = accepted.json()["job_id"]
        _completed(client, job_id)
        plain = submit_files(client, members, dx).json()["job_id"]
        _completed(client, plain)
        got = {
            fmt: client.get(f"/v1/jobs/{job_id}/result", params={"format": fmt})
            for fmt in ("csv", "json", "parquet")
        }
        assert got["json"].headers["content-type"].startswith("application/json")
        (tmp_path / "r.parquet").write_bytes(got["parquet"].content)
        rows = pl.read_parquet(tmp_path / "r.parquet")
        as_json = got["json"].json()
        assert len(as_json) == rows.height and list(as_json[0]) == rows.columns
        assert pl.DataFrame(as_json, schema=rows.schema).equals(rows)
        assert len(got["csv"].text.splitlines()) == rows.height + 1
        errors = client.get(f"/v1/jobs/{job_id}/errors", params={"format": "json"}).json()
        assert errors and set(errors[0]) == {"MemberID", "line", "field", "message"}
        detail = client.get(f"/v1/jobs/{job_id}/detail", params={"format": "json"})
        assert detail.status_code == 200 and {"MemberID", "Section"} <= set(detail.json()[0])
        assert client.get(f"/v1/jobs/{plain}/result").content == got["csv"].content
        no_detail = client.get(f"/v1/jobs/{plain}/detail")
        assert no_detail.status_code == 404 and "detail=true" in no_detail.json()["message"]
        assert client.get(f"/v1/jobs/{job_id}/result", params={"format": "xml"}).status_code == 400
