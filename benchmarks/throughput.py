"""Throughput and peak memory: our engine vs hccinfhir 0.4.0, in one run.

    .venv/bin/python benchmarks/throughput.py [--sizes 10000,100000,1000000]
        [--peer-sample 10000] [--repeat N] [--profile SIZE] [--json out.json]

For each size, a fresh child process generates a deterministic roster
(benchmarks/roster.py, ~8 dx per member, PY2025), loads the ReferenceStore
once, runs one small warm-up batch, then times `engine.run.score_batch` on the
whole roster (full answer: raw V28, raw V24 and the active row per member,
detail=False). Timing covers score_batch only: no roster generation, no store
loading. Small sizes are repeated and the median is reported.

Memory is measured in the child, from /proc/self/status: `VmHWM` (peak RSS of
the process, roster and store included) and the peak while scoring only (the
kernel's peak counter is reset through /proc/self/clear_refs after the roster
is built, when the kernel allows it). Each size runs in its own process so
sizes don't pollute each other.

The peer (hccinfhir, V24 + V28 raw via `calculate_raf`, see benchmarks/peer.py)
runs on the same roster as our `--peer-sample` size, also in its own child,
and the ratio is ours / peer members per second on that same batch.

Scripts print numbers; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PAYMENT_YEAR = 2025
TARGET_RATIO = 200
TARGET_1M_SECONDS = 10.0
TARGET_1M_RSS_MB = 3 * 1024


# --------------------------------------------------------------------------- memory


def proc_status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- machine


def code_version() -> str:
    """HEAD and whether the scored packages differ from it (runs use the working tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "engine", "ratype", "reference", "app"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' + uncommitted changes in engine/ratype/reference/app' if dirty else ''}"


def machine_info() -> dict:
    import platform

    import polars as pl

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = float("nan")
    try:
        with open("/proc/meminfo") as fh:
            mem_gb = int(fh.readline().split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "code": code_version(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "polars_threads": pl.thread_pool_size(),
    }


# --------------------------------------------------------------------------- children


def load_store():
    """One ReferenceStore per process; returns (store, seconds to load the year)."""
    from reference.store import ReferenceStore

    t = time.perf_counter()
    store = ReferenceStore()
    store.year(PAYMENT_YEAR)
    return store, time.perf_counter() - t


def child_ours(size: int, repeat: int, seed: int, dx: float, profile: str | None) -> dict:
    from benchmarks.roster import make_roster

    m, d = make_roster(size, seed=seed, dx_per_member=dx, payment_year=PAYMENT_YEAR)
    from engine.run import score_batch

    store, store_s = load_store()
    wm, wd = make_roster(200, seed=seed + 1000, dx_per_member=dx, payment_year=PAYMENT_YEAR)
    score_batch(wm, wd, PAYMENT_YEAR, store)  # warm-up: first-call costs out of the timing

    rss_before = proc_status_mb("VmRSS")
    hwm_setup = proc_status_mb("VmHWM")
    reset_ok = reset_peak_rss()
    times = []
    cpu = []
    result = None
    load_before = os.getloadavg()[0]
    for _ in range(repeat):
        result = None
        t, c = time.perf_counter(), time.process_time()
        result = score_batch(m, d, PAYMENT_YEAR, store)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    hwm_scoring = proc_status_mb("VmHWM")
    out = {
        "who": "ours",
        "members": size,
        "dx": d.height,
        "seconds": statistics.median(times),
        "seconds_all": [round(x, 4) for x in times],
        "members_per_s": size / statistics.median(times),
        "cpu_seconds": statistics.median(cpu),
        "members_per_cpu_s": size / statistics.median(cpu),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "rows": result.rows.height,
        "errors": result.errors.height,
        "store_load_s": store_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": max(hwm_setup, hwm_scoring),
        "peak_rss_scoring_mb": hwm_scoring if reset_ok else None,
        "scoring_delta_mb": (hwm_scoring - rss_before) if reset_ok else None,
    }
    if profile:
        out["profile"] = run_profile(score_batch, m, d, store, profile)
    return out


def run_profile(score_batch, m, d, store, path: str) -> str:
    """One extra pyinstrument-profiled run; writes text + html next to `path`."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument not installed (.venv/bin/pip install pyinstrument)"
    prof = Profiler(interval=0.001)
    prof.start()
    score_batch(m, d, PAYMENT_YEAR, store)
    prof.stop()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path + ".txt").write_text(prof.output_text(unicode=False, color=False, show_all=False))
    Path(path + ".html").write_text(prof.output_html())
    return path + ".txt"


def child_peer(size: int, seed: int, dx: float) -> dict:
    from benchmarks import peer
    from benchmarks.roster import make_roster

    m, d = make_roster(size, seed=seed, dx_per_member=dx, payment_year=PAYMENT_YEAR)
    reset_ok = reset_peak_rss()
    load_before = os.getloadavg()[0]
    r = peer.run(m, d, PAYMENT_YEAR)
    r.update(
        loadavg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
        who="hccinfhir 0.4.0",
        dx=d.height,
        peak_rss_mb=proc_status_mb("VmHWM"),
        peak_rss_scoring_mb=proc_status_mb("VmHWM") if reset_ok else None,
    )
    return r


def spawn(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    t = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["child_wall_s"] = time.perf_counter() - t
            return r
    tail = (proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"]
    return {"error": f"child exited {proc.returncode}: {tail[-1]}"}


# --------------------------------------------------------------------------- report


def fmt_int(x) -> str:
    return f"{x:,.0f}" if isinstance(x, (int, float)) else "-"


def fmt_mb(x) -> str:
    return f"{x:,.0f} MB" if isinstance(x, (int, float)) else "-"


def _row(who: str, r: dict) -> str:
    load = r.get("loadavg_1m") or ["-", "-"]
    return (
        f"| {who} | {r['members']:,} | {r['dx']:,} | {r['seconds']:.3f} | {fmt_int(r['members_per_s'])} "
        f"| {r['cpu_seconds']:.3f} | {fmt_int(r['members_per_cpu_s'])} "
        f"| {fmt_mb(r['peak_rss_mb'])} | {fmt_mb(r.get('peak_rss_scoring_mb'))} | {load[0]}-{load[1]} |"
    )


def report(machine: dict, ours: dict[int, dict], peer: dict | None, peer_size: int) -> str:
    lines = [
        "machine: {nproc} cores ({cpu}), {ram_gb} GB RAM, Python {python}, "
        "polars {polars} ({polars_threads} threads); code {code}".format(**machine),
        "",
        (
            "| who | members | dx lines | wall s | members/s | CPU s | members/CPU-s "
            "| peak RSS (process) | peak RSS while scoring | load avg |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size, r in sorted(ours.items()):
        if "error" in r:
            lines.append(f"| ours | {size:,} | | error: {r['error']} | | | | | | |")
        else:
            lines.append(_row("ours", r))
    if peer is not None:
        who = "hccinfhir 0.4.0 (V24+V28 raw)"
        if "error" in peer:
            lines.append(f"| {who} | {peer_size:,} | | error: {peer['error']} | | | | | | |")
        else:
            lines.append(_row(who, peer))
    lines.append("")
    same = ours.get(peer_size, {})
    if peer and "error" not in peer and "members_per_s" in same:
        lines.append(
            f"ratio on the same {peer_size:,}-member batch: "
            f"{same['members_per_s'] / peer['members_per_s']:,.1f}x hccinfhir by wall clock, "
            f"{same['members_per_cpu_s'] / peer['members_per_cpu_s']:,.1f}x by CPU time "
            f"(target >= {TARGET_RATIO}x)"
        )
        big = max((s for s, r in ours.items() if "members_per_s" in r), default=None)
        if big and big != peer_size:
            lines.append(
                f"ratio of our {big:,}-member throughput to hccinfhir's: "
                f"{ours[big]['members_per_s'] / peer['members_per_s']:,.1f}x wall, "
                f"{ours[big]['members_per_cpu_s'] / peer['members_per_cpu_s']:,.1f}x CPU"
            )
    r1m = ours.get(1_000_000)
    if r1m and "seconds" in r1m:
        lines.append(
            f"1M members: {r1m['seconds']:.2f} s wall (target <= {TARGET_1M_SECONDS:.0f} s), peak RSS "
            f"{r1m['peak_rss_mb']:,.0f} MB (target <= {TARGET_1M_RSS_MB:,} MB)"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="members/s and peak RSS, ours vs hccinfhir")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated roster sizes")
    ap.add_argument(
        "--peer-sample", type=int, default=10_000, help="peer batch size (0 = skip peer)"
    )
    ap.add_argument(
        "--repeat", type=int, default=0, help="timed runs per size (0 = auto: 5 below 1M, else 1)"
    )
    ap.add_argument("--dx", type=float, default=8.0, help="mean diagnoses per member")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--profile", type=int, default=0, help="also write a pyinstrument profile for this size"
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="per child, seconds")
    ap.add_argument("--json", help="also write all numbers as JSON here")
    ap.add_argument("--child", choices=["ours", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--profile-path", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child == "ours":
        r = child_ours(args.size, args.repeat, args.seed, args.dx, args.profile_path)
        print("RESULT " + json.dumps(r), flush=True)
        return
    if args.child == "peer":
        print("RESULT " + json.dumps(child_peer(args.size, args.seed, args.dx)), flush=True)
        return

    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if args.peer_sample and args.peer_sample not in sizes:
        sizes = sorted({*sizes, args.peer_sample})
    machine = machine_info()
    print(f"# throughput, PY{PAYMENT_YEAR}, ~{args.dx:g} dx/member, seed {args.seed}", flush=True)
    ours: dict[int, dict] = {}
    for size in sizes:
        repeat = args.repeat or (5 if size < 1_000_000 else 1)
        child = [
            "--child",
            "ours",
            "--size",
            str(size),
            "--repeat",
            str(repeat),
            "--seed",
            str(args.seed),
            "--dx",
            str(args.dx),
        ]
        if args.profile == size:
            child += ["--profile-path", str(HERE / "results" / f"profile_{size}")]
        r = spawn(child, args.timeout)
        ours[size] = r
        if "error" in r:
            print(f"ours {size:>9,}: {r['error']}", flush=True)
        else:
            print(
                f"ours {size:>9,}: {r['seconds']:.3f} s ({r['seconds_all']}), "
                f"{r['members_per_s']:,.0f} members/s, rows {r['rows']:,}, errors {r['errors']:,}, "
                f"peak RSS {r['peak_rss_mb']:,.0f} MB (scoring {fmt_mb(r.get('peak_rss_scoring_mb'))},"
                f" +{fmt_mb(r.get('scoring_delta_mb'))} over {r['rss_before_mb']:,.0f} MB), "
                f"store load {r['store_load_s']:.2f} s"
                + (f", profile {r['profile']}" if "profile" in r else ""),
                flush=True,
            )
    peer = None
    if args.peer_sample:
        peer = spawn(
            [
                "--child",
                "peer",
                "--size",
                str(args.peer_sample),
                "--seed",
                str(args.seed),
                "--dx",
                str(args.dx),
            ],
            args.timeout,
        )
        if "error" in peer:
            print(f"peer {args.peer_sample:>9,}: {peer['error']}", flush=True)
        else:
            print(
                f"peer {peer['members']:>9,}: {peer['seconds']:.3f} s, {peer['members_per_s']:,.0f} "
                f"members/s, peak RSS {peer['peak_rss_mb']:,.0f} MB, errors {peer['errors']}",
                flush=True,
            )
    print()
    print(report(machine, ours, peer, args.peer_sample))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine,
                    "ours": ours,
                    "peer": peer,
                    "peer_sample": args.peer_sample,
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
