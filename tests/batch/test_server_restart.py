"""A real `raf serve` process killed (SIGKILL) in the middle of a job, then started again:
the job is re-run from its stored inputs and completes with the CLI's exact rows.

Slow (it starts uvicorn twice and scores 60,000 members); needs the real engine.
"""

from __future__ import annotations

import os
import signal
import socket
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


def _serve(data_dir: Path, port: int, executor: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "RAF_DATA_DIR": str(data_dir),
        "RAF_JOB_CHUNK_MEMBERS": "5000",
        "RAF_JOB_EXECUTOR": executor,
        "RAF_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
            raise AssertionError(process.stderr.read().decode()[-2000:])
    process.kill()
    raise AssertionError("server did not start")


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group: no shutdown hook runs, like a crash or OOM kill."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_server_killed_mid_job_resumes_it_after_restart(engine, is_real_engine, tmp_path, executor):
    if not is_real_engine:
        pytest.skip("needs the real engine: the server process cannot see the test's fake")

    members, dx = write_roster(tmp_path / "in", 60_000, bad_every=499)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(tmp_path / "data", port, executor)
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
        status_url = base + accepted.json()["status_url"]
        deadline = time.monotonic() + 120
        while True:  # wait until it is part-way through
            status = httpx.get(status_url, timeout=5).json()
            if status["status"] == "running" and (status["progress"]["members_done"] or 0) > 0:
                break
            assert status["status"] in ("queued", "running"), status
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        _kill(server)

    server = _serve(tmp_path / "data", port, executor)
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
    finally:
        _kill(server)
    (tmp_path / "job.parquet").write_bytes(result.content)
    out = tmp_path / "cli.parquet"
    assert run_score(members, out, diagnoses=dx) == 2
    assert pl.read_parquet(tmp_path / "job.parquet").equals(pl.read_parquet(out))
