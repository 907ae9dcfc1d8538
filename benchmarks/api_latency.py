"""POST /v1/risk-scores latency: in-process ASGI and loopback HTTP, cold and cached.

    .venv/bin/python benchmarks/api_latency.py [--sizes 1,100,1000,10000]
        [--modes inproc,http] [--scale 1.0] [--json out.json]

For each request size (members per request, ~8 dx each, PY2025):

* cold: every request carries members never sent before (new MemberIDs and a
  new random draw of demographics and codes), so the member cache cannot hit;
* cached: one body sent once to fill the cache, then repeated.

Modes:

* inproc: the Litestar app from `app.main.create_app()` called directly as an
  ASGI callable on an asyncio loop in this process (lifespan startup run first;
  no sockets, no HTTP parsing). Latency = the app's own time incl. JSON decode
  of the request and encode of the response.
* http: uvicorn started by this script on 127.0.0.1 on a free port
  (`python -m uvicorn app.main:create_app --factory`, one worker), driven
  sequentially by one keep-alive httpx client, stopped by this script.

Request counts are bounded (see REQUESTS; `--scale` multiplies them). Bodies are
built before the clock starts. p50/p95/p99 are nearest-rank over the timed
requests; a couple of warm-up requests are excluded. Numbers are printed; the
script does not pass or fail anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.roster import make_roster, request_body

PAYMENT_YEAR = 2025
PATH = "/v1/risk-scores"
# timed requests per (size, phase); cold and cached each
REQUESTS = {1: 300, 100: 100, 1_000: 30, 10_000: 10}
TARGETS = {1: ("inproc", "p50", 0.005), 10_000: ("inproc", "p50", 1.0)}


def requests_for(size: int, scale: float) -> int:
    base = REQUESTS.get(size) or max(5, int(30_000 / max(size, 1) ** 0.7))
    return max(3, int(base * scale))


def percentile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_xs:
        return float("nan")
    k = max(1, math.ceil(q / 100 * len(sorted_xs)))
    return sorted_xs[k - 1]


def summarize(lat: list[float]) -> dict:
    xs = sorted(lat)
    return {
        "n": len(xs),
        "p50": percentile(xs, 50),
        "p95": percentile(xs, 95),
        "p99": percentile(xs, 99),
        "mean": sum(xs) / len(xs) if xs else float("nan"),
        "max": xs[-1] if xs else float("nan"),
    }


def bodies(size: int, count: int, tag: str) -> list[bytes]:
    """`count` request bodies of `size` members, all members distinct."""
    out = []
    for i in range(count):
        m, d = make_roster(
            size,
            seed=zlib.crc32(f"{tag}/{size}/{i}".encode()),
            payment_year=PAYMENT_YEAR,
            id_prefix=f"{tag}{size}x{i}-",
        )
        out.append(request_body(m, d, PAYMENT_YEAR))
    return out


def response_facts(status: int, body: bytes) -> dict:
    facts: dict = {"http_status": status, "bytes": len(body)}
    try:
        doc = json.loads(body)
    except ValueError:
        facts["error"] = body[:200].decode("utf-8", "replace")
        return facts
    if not isinstance(doc, dict):
        return facts
    facts.update(
        {k: doc.get(k) for k in ("status", "cache_status", "count", "member_count", "cache")}
    )
    if not 200 <= status < 300:
        facts["message"] = str(doc.get("message"))[:200]
    return facts


# --------------------------------------------------------------------------- in-process ASGI


class AsgiClient:
    """Minimal ASGI driver: lifespan + one-shot HTTP requests, no sockets."""

    def __init__(self, app) -> None:
        self.app = app
        self.state: dict = {}
        self._lifespan_in: asyncio.Queue | None = None
        self._lifespan_task: asyncio.Task | None = None

    async def startup(self) -> None:
        self._lifespan_in = asyncio.Queue()
        started = asyncio.get_running_loop().create_future()

        async def receive():
            return await self._lifespan_in.get()

        async def send(msg):
            if msg["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
                started.set_result(msg)

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan_task = asyncio.create_task(self.app(scope, receive, send))
        await self._lifespan_in.put({"type": "lifespan.startup"})
        msg = await asyncio.wait_for(started, 120)
        if msg["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"lifespan startup failed: {msg.get('message')}")

    async def shutdown(self) -> None:
        if self._lifespan_in is not None:
            await self._lifespan_in.put({"type": "lifespan.shutdown"})
            try:
                await asyncio.wait_for(self._lifespan_task, 30)
            except Exception as exc:  # noqa: BLE001 - shutdown problems don't change the numbers
                print(f"lifespan shutdown: {exc!r}", file=sys.stderr)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "state": dict(self.state),
        }
        sent = False
        done = asyncio.Event()
        status = 0
        chunks: list[bytes] = []

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def quiet_logs() -> None:
    """Keep per-request INFO logs of the app out of the benchmark's stdout."""
    import logging

    logging.disable(logging.INFO)
    try:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    except Exception as exc:  # noqa: BLE001
        print(f"structlog not quieted: {exc!r}", file=sys.stderr)


def load_factory(spec: str, app_dir: str | None):
    """`module:attr` -> the app factory (like uvicorn --factory --app-dir)."""
    import importlib

    if app_dir and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "create_app")


def run_inproc(
    plan: list[tuple[int, int]], warm: list[bytes], spec: str, app_dir: str | None
) -> dict:
    quiet_logs()
    app = load_factory(spec, app_dir)()
    quiet_logs()  # again, in case create_app configured logging
    client = AsgiClient(app)
    results: dict = {}

    async def main() -> None:
        await client.startup()
        for b in warm:
            await client.post(PATH, b)
        for size, n in plan:
            results[size] = await measure(client.post, size, n, True)
        await client.shutdown()

    asyncio.run(main())
    return results


async def measure(post, size: int, n: int, cpu_is_server: bool) -> dict:
    """Cold then cached latencies. With `cpu_is_server` (in-process) each request's
    process CPU time is recorded too: it is the app's own work, whatever the load."""
    cold_bodies = bodies(size, n, "C")
    cached_body = bodies(size, 1, "H")[0]
    out: dict = {"body_mb": round(len(cached_body) / 1e6, 2)}

    async def timed(body: bytes, lat: list, cpu: list):
        t, c = time.perf_counter(), time.process_time()
        result = await post(PATH, body)
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        return result

    lat: list[float] = []
    cpu: list[float] = []
    facts = None
    for b in cold_bodies:
        facts = await timed(b, lat, cpu)
    out["cold"] = summarize(lat) | {"last": response_facts(*facts)}
    if cpu_is_server:
        out["cold"]["cpu_p50"] = percentile(sorted(cpu), 50)
    out["cache_fill"] = response_facts(*(await post(PATH, cached_body)))
    lat, cpu = [], []
    for _ in range(n):
        facts = await timed(cached_body, lat, cpu)
    out["cached"] = summarize(lat) | {"last": response_facts(*facts)}
    if cpu_is_server:
        out["cached"]["cpu_p50"] = percentile(sorted(cpu), 50)
    return out


# --------------------------------------------------------------------------- loopback HTTP


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_http(
    plan: list[tuple[int, int]], warm: list[bytes], spec: str, app_dir: str | None
) -> dict:
    import httpx

    port = free_port()
    log_fd, log_name = tempfile.mkstemp(prefix="raf-bench-uvicorn-", suffix=".log")
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        spec,
        "--factory",
        *(["--app-dir", app_dir] if app_dir else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(
        cmd, cwd=REPO, stdout=log_fd, stderr=subprocess.STDOUT, start_new_session=True
    )
    os.close(log_fd)  # the child holds its own copy
    base = f"http://127.0.0.1:{port}"
    results: dict = {}
    try:
        with httpx.Client(base_url=base, timeout=300.0) as http:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"uvicorn exited {server.returncode}; see {log_name}")
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn not healthy after 120 s; see {log_name}")
                time.sleep(0.2)
            headers = {"content-type": "application/json"}

            async def post(path: str, body: bytes) -> tuple[int, bytes]:
                r = http.post(path, content=body, headers=headers)
                return r.status_code, r.content

            async def main() -> None:
                for b in warm:
                    await post(PATH, b)
                for size, n in plan:
                    results[size] = await measure(post, size, n, False)

            asyncio.run(main())
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    results["server_log"] = log_name
    return results


# --------------------------------------------------------------------------- report


def ms(x: float) -> str:
    if x < 0.01:
        return f"{x * 1000:.2f}"
    return f"{x * 1000:,.1f}" if x < 10 else f"{x * 1000:,.0f}"


def report(all_results: dict, sizes: list[int]) -> str:
    lines = [
        (
            "| mode | members/request | phase | requests | p50 ms | p95 ms | p99 ms | max ms "
            "| CPU p50 ms | cache hits/misses (last) |"
        ),
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode, res in all_results.items():
        if "error" in res:
            lines.append(f"| {mode} | | error: {res['error']} | | | | | | | |")
            continue
        for size in sizes:
            r = res.get(size)
            if not r:
                continue
            for phase in ("cold", "cached"):
                s = r[phase]
                last = s["last"]
                cache = last.get("cache")
                note = f"{cache}" if cache is not None else f"{last.get('cache_status')}"
                if not 200 <= last.get("http_status", 0) < 300:
                    note = f"HTTP {last.get('http_status')}: {last.get('message') or last.get('error')}"
                lines.append(
                    f"| {mode} | {size:,} | {phase} | {s['n']} | {ms(s['p50'])} | {ms(s['p95'])} "
                    f"| {ms(s['p99'])} | {ms(s['max'])} "
                    f"| {ms(s['cpu_p50']) if 'cpu_p50' in s else '-'} | {note} |"
                )
    lines.append("")
    for size, (mode, stat, limit) in TARGETS.items():
        r = all_results.get(mode, {}).get(size)
        if r:
            for phase in ("cold", "cached"):
                v = r[phase][stat]
                lines.append(
                    f"target {size:,}-member {mode} {stat} <= {limit * 1000:g} ms: "
                    f"{phase} {ms(v)} ms"
                )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="API latency, in-process and loopback HTTP")
    ap.add_argument("--sizes", default="1,100,1000,10000")
    ap.add_argument("--modes", default="inproc,http")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--json", help="also write all numbers as JSON here")
    ap.add_argument("--app", default="app.main:create_app", help="ASGI app factory, module:attr")
    ap.add_argument("--app-dir", help="directory to import --app from (default: the repo)")
    ap.add_argument(
        "--log-level",
        default="WARNING",
        help="RAF_LOG_LEVEL for the app (per-request INFO logs off)",
    )
    args = ap.parse_args()
    os.environ.setdefault(
        "RAF_LOG_LEVEL", args.log_level
    )  # read by app.settings; inherited by uvicorn

    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    plan = [(s, requests_for(s, args.scale)) for s in sizes]
    warm = bodies(1, 3, "W") + bodies(100, 2, "W")
    from benchmarks.throughput import code_version

    print(
        f"# api latency, PY{PAYMENT_YEAR}, ~8 dx/member, plan {plan}, code {code_version()}, "
        f"load avg {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    all_results: dict = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        t = time.perf_counter()
        try:
            all_results[mode] = (
                run_inproc(plan, warm, args.app, args.app_dir)
                if mode == "inproc"
                else run_http(plan, warm, args.app, args.app_dir)
            )
        except Exception as exc:  # noqa: BLE001 - report, don't crash the other mode
            all_results[mode] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"{mode}: done in {time.perf_counter() - t:.1f} s", flush=True)
    print(f"load avg at end {os.getloadavg()[0]:.1f}")
    print()
    print(report(all_results, sizes))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "results": all_results,
                    "plan": plan,
                    "code": code_version(),
                    "loadavg_1m": os.getloadavg()[0],
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
