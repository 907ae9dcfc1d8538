"""Memory of `raf serve` processes, for sizing (`docs/operations.md` "Sizing").

    .venv/bin/python benchmarks/worker_memory.py [--sizes 1000,10000,50000] [--job-members 200000]

1. `raf serve --workers 2`, idle once `/ready` is 200: RSS of the supervisor and
   of each worker (each has loaded the reference data once).
2. Per request size, a fresh `raf serve` (one worker, default cache): RSS idle,
   then one cold `POST /v1/risk-scores` of that many members (~8 dx each,
   PY2025, `benchmarks.roster`), then the worker's peak RSS (VmHWM: the request
   at its largest) and RSS after it (what the member cache keeps, up to
   `RAF_CACHE_SIZE` members).
3. With `--job-members N`: a job of N members on the default process executor
   (`RAF_JOB_CHUNK_MEMBERS` 50000): peak RSS of the job worker process.

RSS is read from /proc (Linux). Prints one line per measure; passes or fails nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.roster import make_roster, request_body


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


class Serve:
    def __init__(self, workers: int, data_dir: Path, **env: str) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port),
             "--workers", str(workers)],
            cwd=REPO,
            env={**os.environ, "RAF_DATA_DIR": str(data_dir), "RAF_LOG_LEVEL": "WARNING", **env},
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit("server did not become ready")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def idle_workers(data_dir: Path) -> None:
    server = Serve(2, data_dir / "two")
    time.sleep(3)  # the second worker may still be parsing the years
    workers = [  # uvicorn's spawned workers, not multiprocessing's resource tracker
        pid for pid in _descendants(server.process.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    print(f"--workers 2 idle: supervisor {_mb(_status_kb(server.process.pid, 'VmRSS'))}; "
          + "; ".join(f"worker {pid} {_mb(_status_kb(pid, 'VmRSS'))}" for pid in workers))
    server.stop()


def request_sizes(sizes: list[int], data_dir: Path) -> None:
    for size in sizes:
        members, diagnoses = make_roster(size, seed=size)
        body = request_body(members, diagnoses)
        server = Serve(1, data_dir / f"size-{size}", RAF_JOB_EXECUTOR="thread")
        pid = server.process.pid  # one worker: uvicorn serves in this process
        idle = _status_kb(pid, "VmRSS")
        started = time.perf_counter()
        response = httpx.post(server.base + "/v1/risk-scores", content=body, timeout=600,
                              headers={"Content-Type": "application/json"})
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.text[:500]
        peak, after = _status_kb(pid, "VmHWM"), _status_kb(pid, "VmRSS")
        print(f"{size:>7,} members ({diagnoses.height:,} dx, body {len(body) / 2**20:.1f} MiB): "
              f"idle {_mb(idle)}, peak {_mb(peak)} (+{_mb(peak - idle)}), after {_mb(after)} "
              f"(cache {int(response.json()['cache']['misses']):,} misses), {seconds:.2f} s")
        server.stop()


def job_peak(members_total: int, data_dir: Path) -> None:
    members, diagnoses = make_roster(members_total, seed=7)
    inputs = data_dir / "job-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    members.write_csv(inputs / "members.csv")
    diagnoses.write_csv(inputs / "dx.csv")
    server = Serve(1, data_dir / "job", RAF_JOB_EXECUTOR="process")
    with (inputs / "members.csv").open("rb") as m, (inputs / "dx.csv").open("rb") as d:
        accepted = httpx.post(
            server.base + "/v1/jobs", data={"payment_year": "2025"}, timeout=600,
            files={"memberships": ("m.csv", m, "text/csv"), "diagnoses": ("d.csv", d, "text/csv")},
        ).json()
    peak = 0
    started = time.perf_counter()
    while (status := httpx.get(server.base + accepted["status_url"], timeout=30).json())[
        "status"
    ] in ("queued", "running"):
        for pid in _descendants(server.process.pid):
            try:
                peak = max(peak, _status_kb(pid, "VmHWM"))
            except (FileNotFoundError, KeyError):
                pass
        time.sleep(0.2)
    print(f"job of {members_total:,} members ({status['status']}, "
          f"{time.perf_counter() - started:.1f} s): job worker peak {_mb(peak)}, "
          f"API process {_mb(_status_kb(server.process.pid, 'VmRSS'))}")
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--job-members", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raf-memory-") as tmp:
        data_dir = Path(tmp)
        idle_workers(data_dir)
        request_sizes([int(s) for s in args.sizes.split(",") if s], data_dir)
        if args.job_members:
            job_peak(args.job_members, data_dir)


if __name__ == "__main__":
    main()
