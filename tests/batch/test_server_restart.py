"""A real `raf serve` process killed (SIGKILL) in the middle of a job, then started again:
the job is re-run from its stored inputs and completes once, with the CLI's exact rows.

With process workers only the server is killed (as the OOM killer or `kill -9 <pid>`
would): its worker must not survive it (parent-death signal), so no second attempt
ever runs beside the restarted server's.

Slow (it starts uvicorn twice and scores 60,000 members); needs the real engine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.batch.conftest import run_score, write_roster

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(data_dir: Path, port: int, executor: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "RAF_DATA_DIR": str(data_dir),
        "RAF_JOB_CHUNK_MEMBERS": "5000",
        "RAF_JOB_EXECUTOR": executor,
        "RAF_LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(log.read_text()[-2000:])
    process.kill()
    raise AssertionError("server did not start")


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group: no shutdown hook runs."""
    with_group = True
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        with_group = False
    if with_group or process.poll() is None:
        process.wait(10)


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody has reaped yet (it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _worker_pid(data_dir: Path, job_id: str) -> int | None:
    with sqlite3.connect(data_dir / "jobs.sqlite3") as conn:
        (pid,) = conn.execute("SELECT worker_pid FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return pid


def _events(log: Path, name: str, job_id: str) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == name and line.get("job_id") == job_id]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_server_killed_mid_job_resumes_it_after_restart(engine, is_real_engine, tmp_path, executor):
    if not is_real_engine:
        pytest.skip("needs the real engine: the server process cannot see the test's fake")

    members, dx = write_roster(tmp_path / "in", 60_000, bad_every=499)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server = _serve(data_dir, port, executor, log)
    try:
        with members.open("rb") as m, dx.open("rb") as d:
            accepted = httpx.post(
                f"{base}/v1/jobs",
                data={"payment_year": "2025"},
                files={
                    "memberships": ("members.csv", m, "text/csv"),
                    "diagnoses": ("dx.csv", d, "text/csv"),
                },
                timeout=60,
            )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        status_url = base + accepted.json()["status_url"]
        deadline = time.monotonic() + 120
        while True:  # wait until it is part-way through
            status = httpx.get(status_url, timeout=5).json()
            if status["status"] == "running" and (status["progress"]["members_done"] or 0) > 0:
                break
            assert status["status"] in ("queued", "running"), status
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker = _worker_pid(data_dir, job_id)
    finally:
        if executor == "process":
            os.kill(server.pid, signal.SIGKILL)  # the server only: its worker must follow it
            server.wait(10)
        else:
            _kill_group(server)
    if executor == "process":
        assert worker is not None and worker != server.pid
        deadline = time.monotonic() + 5
        while not _gone(worker):
            assert time.monotonic() < deadline, f"worker {worker} outlived its server"
            time.sleep(0.05)

    server = _serve(data_dir, port, executor, log)
    try:
        deadline = time.monotonic() + 300
        while (status := httpx.get(status_url, timeout=5).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert status["status"] == "completed", status
        assert status["attempts"] == 2
        result = httpx.get(
            base + accepted.json()["result_url"], params={"format": "parquet"}, timeout=60
        )
        second_worker = _worker_pid(data_dir, job_id)
    finally:
        _kill_group(server)
    if executor == "process":
        assert _gone(second_worker)
    # completed exactly once: one completion across both server runs, by attempt 2
    completions = _events(log, "job_completed", job_id)
    assert [event["attempt"] for event in completions] == [2], completions
    requeued = _events(log, "job_requeued", job_id)
    assert requeued and requeued[0]["reason"].startswith("interrupted by server restart")
    (tmp_path / "job.parquet").write_bytes(result.content)
    out = tmp_path / "cli.parquet"
    assert run_score(members, out, diagnoses=dx) == 2
    assert pl.read_parquet(tmp_path / "job.parquet").equals(pl.read_parquet(out))
