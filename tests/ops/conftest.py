"""Real `raf serve` processes on loopback for the operations tests (`docs/operations.md`).

Each server runs in its own session (process group) on an ephemeral port with
its own `RAF_DATA_DIR`, stdout in a file the failing test prints; teardown kills
what is left of the group. Waits poll with generous deadlines: the machine
these run on may be shared and slow.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import SEED_REQUEST  # noqa: F401  (re-exported for the tests)

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; its value. HTTP errors count as no."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.base + path, timeout=kwargs.pop("timeout", 60), **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """{(sample name, sorted labels): value} of one scrape."""
        response = self.get("/metrics")
        assert response.status_code == 200, response.text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()[-3000:]}")
            return self.get("/ready", timeout=5).status_code == 200

        wait_for(ready, timeout, "/ready 200", every=0.1)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


def metric(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`serve(workers=1, **env)` -> a started (not necessarily ready) `raf serve` process."""
    started: list[Server] = []

    def start(workers: int = 1, **env: str) -> Server:
        port = free_port()
        data_dir = tmp_path / f"data-{len(started)}"
        log_path = tmp_path / f"server-{len(started)}.log"
        environment = {
            **os.environ,
            "RAF_DATA_DIR": str(data_dir),
            "RAF_JOB_EXECUTOR": "thread",
            "RAF_LOG_LEVEL": "INFO",
            **env,
        }
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
                 "--workers", str(workers)],
                env=environment,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(process, port, data_dir, log_path)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            try:
                os.killpg(server.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.process.wait(30)
        else:  # the group may still hold workers the supervisor left behind
            try:
                os.killpg(server.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
