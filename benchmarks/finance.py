"""Plan finance's extra cost over scoring: pricing (MA_Payment) and the roster summary.

    .venv/bin/python benchmarks/finance.py [--members 1000000] [--repeat 1]

One process, one roster (benchmarks/roster.py, ~8 dx per member, PY2025) with
finance columns added (every member `Enrollment_Months` 1-12, two thirds a
`County` priced by a 50-county rate table, one in ten its own `Monthly_Rate`),
the ReferenceStore loaded and a warm-up batch run first. Then, timed in turn:

1. `score_batch` without finance (the throughput benchmark's number);
2. `score_batch` with finance (`rates=`), i.e. MA_Payment on every active row;
3. the roster summary of (2)'s rows: `app.summary.summary_of_rows` (member facts
   from the rows, then every statistic), as `?summary=true`, jobs and
   `raf score --summary` compute it.

Prints each time and the ratios (2)/(1) and (3)/(1); the target is summary <= 10%
of scoring. Times are wall and process CPU; on a shared machine compare the
ratios of one run, not absolute seconds. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PAYMENT_YEAR = 2025
TARGET_SUMMARY_RATIO = 0.10
COUNTIES = 50


def with_finance(memberships):
    import polars as pl

    i = pl.int_range(memberships.height, dtype=pl.Int64)
    return memberships.with_columns(
        Enrollment_Months=(1 + i % 12).cast(pl.String),
        County=pl.when(i % 3 != 0).then(pl.format("{}", (10_000 + i % COUNTIES).cast(pl.String))),
        Monthly_Rate=pl.when(i % 10 == 0).then(pl.format("{}.{}", 800 + i % 400,
                                                         (i % 100).cast(pl.String).str.zfill(2))),
    )


def rate_table():
    from engine.finance import RateTable

    return RateTable.from_records(
        {"payment_year": PAYMENT_YEAR, "county": str(10_000 + k),
         "monthly_rate": f"{900 + 7 * k}.{k:02d}", "source": "benchmark"}
        for k in range(COUNTIES)
    )


def timed(fn, repeat: int):
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        result = None
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return result, statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()

    import polars as pl

    from app.summary import summary_of_rows
    from benchmarks.roster import make_roster
    from engine.run import score_batch
    from reference.store import ReferenceStore

    members, diagnoses = make_roster(args.members, seed=0, payment_year=PAYMENT_YEAR)
    priced_members = with_finance(members)
    rates = rate_table()
    store = ReferenceStore()
    store.year(PAYMENT_YEAR)
    warm_m, warm_d = make_roster(200, seed=1000, payment_year=PAYMENT_YEAR)
    score_batch(with_finance(warm_m), warm_d, PAYMENT_YEAR, store, rates=rates)

    load_before = os.getloadavg()[0]
    plain, plain_s, plain_cpu = timed(
        lambda: score_batch(members, diagnoses, PAYMENT_YEAR, store), args.repeat)
    del plain
    priced, priced_s, priced_cpu = timed(
        lambda: score_batch(priced_members, diagnoses, PAYMENT_YEAR, store, rates=rates),
        args.repeat)
    summary, summary_s, summary_cpu = timed(
        lambda: summary_of_rows(priced.rows, payment_year=PAYMENT_YEAR,
                                members_received=priced.member_count, errors=priced.errors,
                                diagnoses_summary=priced.dx_summary),
        args.repeat)
    load_after = os.getloadavg()[0]

    out = {
        "members": args.members,
        "diagnoses": diagnoses.height,
        "rows": priced.rows.height,
        "members_priced": summary.payment.members_priced if summary.payment else 0,
        "scoring_s": round(plain_s, 3), "scoring_cpu_s": round(plain_cpu, 3),
        "priced_scoring_s": round(priced_s, 3), "priced_scoring_cpu_s": round(priced_cpu, 3),
        "summary_s": round(summary_s, 3), "summary_cpu_s": round(summary_cpu, 3),
        "pricing_over_scoring": round(priced_s / plain_s - 1, 4),
        "summary_over_scoring": round(summary_s / plain_s, 4),
        "summary_cpu_over_scoring_cpu": round(summary_cpu / plain_cpu, 4),
        "target_summary_over_scoring": TARGET_SUMMARY_RATIO,
        "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
        "polars": pl.__version__, "polars_threads": pl.thread_pool_size(),
    }
    print(f"{args.members:,} members, {diagnoses.height:,} diagnoses, {out['rows']:,} rows, "
          f"{out['members_priced']:,} priced (load {load_before:.1f}-{load_after:.1f})")
    print(f"scoring                {plain_s:7.3f} s wall {plain_cpu:7.3f} CPU-s")
    print(f"scoring with finance   {priced_s:7.3f} s wall {priced_cpu:7.3f} CPU-s  "
          f"(+{out['pricing_over_scoring']:.1%})")
    print(f"roster summary         {summary_s:7.3f} s wall {summary_cpu:7.3f} CPU-s  "
          f"({out['summary_over_scoring']:.1%} of scoring; target <= {TARGET_SUMMARY_RATIO:.0%})")
    print("RESULT " + json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
