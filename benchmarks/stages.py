"""Where score_batch spends time and memory: a per-stage table.

    .venv/bin/python benchmarks/stages.py --size 100000 [--seed 0]

Wraps the engine's stage functions (module attributes, so the engine code is
untouched) with a timer that records, per stage: calls, wall seconds, CPU
seconds (process-wide, so polars' worker threads count), the peak RSS reached
inside the stage and that peak minus the RSS at entry, and the rows it
returned. Stages nest (score_raw contains _map_diagnoses ...); times are inclusive.
Peak RSS uses /proc/self/status VmHWM, reset via /proc/self/clear_refs at each
stage entry (the enclosing stage keeps the max of what its children saw).

One warm-up batch of 200 members runs first and is not recorded.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.roster import make_roster
from benchmarks.throughput import PAYMENT_YEAR, load_store, proc_status_mb, reset_peak_rss

# (module, attribute) pairs; missing ones are skipped so the script survives refactors.
STAGES = [
    ("ratype", "normalize"),
    ("engine", "score_raw"),
    ("engine.raw", "score_raw"),
    ("engine.raw", "member_models"),
    # steps 1-4 (screen, map with edits, heart patch, hierarchies) for all the
    # year's models at once; the stage modules only build its lazy queries
    ("engine.raw", "_map_diagnoses"),
    ("engine.diagnoses", "screen"),
    ("engine.diagnoses", "prepare"),
    ("engine.variables", "diagnosed_hccs"),
    ("engine.variables", "build_variables"),
    ("engine.coefficients", "attach_coefficients"),
    ("engine.buckets", "sum_buckets"),
    ("engine.buckets", "ra_variables"),
    ("engine.run", "normalize"),
    ("engine.run", "score_raw"),
    ("engine.run", "blend"),
    ("engine.run", "build_rows"),
    ("engine.run", "_unscored_members"),
    ("engine.run", "_account_for_every_member"),
    ("engine.run", "with_string_columns"),
    ("engine.run", "dx_counts_of"),
]

_stack: list[dict] = []
stats: dict[str, dict] = {}
recording = False


def _rows(result) -> int | None:
    import polars as pl

    if isinstance(result, pl.DataFrame):
        return result.height
    if isinstance(result, tuple) and result and isinstance(result[0], pl.DataFrame):
        return result[0].height
    rows = getattr(result, "rows", None)
    return rows.height if isinstance(rows, pl.DataFrame) else None


def wrap(name: str, fn):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        if not recording:
            return fn(*args, **kwargs)
        if _stack:  # fold what the parent reached so far before resetting the counter
            _stack[-1]["peak"] = max(_stack[-1]["peak"], proc_status_mb("VmHWM"))
        frame = {"rss0": proc_status_mb("VmRSS"), "peak": 0.0}
        reset_peak_rss()
        _stack.append(frame)
        t, c = time.perf_counter(), time.process_time()
        try:
            return (result := fn(*args, **kwargs))
        finally:
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            frame["peak"] = max(frame["peak"], proc_status_mb("VmHWM"))
            _stack.pop()
            if _stack:
                _stack[-1]["peak"] = max(_stack[-1]["peak"], frame["peak"])
            s = stats.setdefault(
                name, {"calls": 0, "wall": 0.0, "cpu": 0.0, "peak": 0.0, "delta": 0.0, "rows": 0}
            )
            s["calls"] += 1
            s["wall"] += wall
            s["cpu"] += cpu
            s["peak"] = max(s["peak"], frame["peak"])
            s["delta"] = max(s["delta"], frame["peak"] - frame["rss0"])
            try:
                s["rows"] += _rows(result) or 0
            except NameError:
                pass

    return timed


def install() -> list[str]:
    done = []
    seen: dict[int, str] = {}
    for module_name, attr in STAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, attr, None)
        if fn is None or not callable(fn):
            continue
        original = getattr(fn, "__wrapped__", fn)
        name = seen.setdefault(id(original), f"{original.__module__}.{attr}")
        setattr(module, attr, wrap(name, original) if fn is original else fn)
        done.append(name)
    # modules that imported a function by name get the same wrapper
    return sorted(set(done))


def main() -> None:
    global recording
    ap = argparse.ArgumentParser(description="per-stage time and memory of score_batch")
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="score this many distinct rosters; times are per batch",
    )
    ap.add_argument(
        "--chunk-workers",
        type=int,
        default=1,
        help="engine.run.CHUNK_WORKERS while measuring (default 1: the stage timers and "
        "process-wide CPU clock only attribute time correctly when one chunk runs at a time)",
    )
    args = ap.parse_args()

    rosters = [
        make_roster(args.size, seed=args.seed + i, payment_year=PAYMENT_YEAR, id_prefix=f"R{i}-")
        for i in range(args.repeat)
    ]
    _m, d = rosters[0]
    from engine import run

    run.CHUNK_WORKERS = args.chunk_workers
    store, _ = load_store()
    install()
    run.score_batch(*make_roster(200, seed=args.seed + 1000), PAYMENT_YEAR, store)
    recording = True
    rss0 = proc_status_mb("VmRSS")
    reset_peak_rss()
    t, c = time.perf_counter(), time.process_time()
    for rm, rd in rosters:
        result = run.score_batch(rm, rd, PAYMENT_YEAR, store)
    n = len(rosters)
    wall, cpu = (time.perf_counter() - t) / n, (time.process_time() - c) / n
    peak = proc_status_mb("VmHWM")
    for s in stats.values():
        peak = max(peak, s["peak"])
    recording = False
    import os

    for st in stats.values():
        for key in ("calls", "wall", "cpu", "rows"):
            st[key] /= n
    print(
        f"score_batch (per batch, mean of {n}): {args.size:,} members, {d.height:,} dx -> {result.rows.height:,} rows, "
        f"{result.errors.height:,} errors; chunk workers {run.CHUNK_WORKERS}; "
        f"wall {wall:.2f} s, CPU {cpu:.2f} s, "
        f"peak RSS {peak:,.0f} MB (+{peak - rss0:,.0f} MB over {rss0:,.0f} MB before scoring); "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    print()
    print(
        "| stage (inclusive) | calls/batch | wall s | CPU s | % of batch CPU | peak RSS MB | peak - entry MB | rows out |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in sorted(stats.items(), key=lambda kv: -kv[1]["cpu"]):
        print(
            f"| {name} | {s['calls']:g} | {s['wall']:.4f} | {s['cpu']:.4f} | {100 * s['cpu'] / cpu:.0f}% "
            f"| {s['peak']:,.0f} | {s['delta']:,.0f} | {s['rows']:,} |"
        )


if __name__ == "__main__":
    main()
