"""What bounds a 1-member request: polars operations per call x cost per operation.

    .venv/bin/python benchmarks/op_cost.py [--repeat 300]

Prints two things, measured in the same run:

1. the cost of one polars operation on a tiny frame (4 rows against a 10,000-row
   reference table, the shape of a 1-member request): eager join, filter,
   with_columns, group_by, and one lazy plan of N chained joins collected once
   (to see whether fusing operations into one plan is cheaper than running them
   one by one);
2. for `engine.run.score_batch` on 1-member batches (`benchmarks.roster`,
   PY2025): the p50 wall time per call and how many polars queries it runs,
   counted by wrapping `LazyFrame.collect`, `collect_all` and the private
   `LazyFrame._collect_eager` that polars 1.x runs every eager DataFrame method
   through (skipped, with a note, if a polars version lacks it).

The product of (2)'s count and (1)'s per-operation cost is the floor of this
architecture for one member; the p50 minus that product is Python glue.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl


def p50_ms(call, repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def operation_costs(repeat: int) -> None:
    reference = pl.DataFrame(
        {"key": range(10_000), "value": [i / 7 for i in range(10_000)]},
        schema={"key": pl.Int64, "value": pl.Float64},
    )
    request = pl.DataFrame({"key": [1, 5, 7, 9], "member": [0, 0, 0, 0]})
    print("one polars operation on a 4-row frame (p50 ms):")
    for label, call in (
        ("eager join (10k-row table)", lambda: request.join(reference, on="key")),
        ("eager filter", lambda: request.filter(pl.col("key") > 3)),
        ("eager with_columns", lambda: request.with_columns(doubled=pl.col("key") * 2)),
        ("eager group_by + sum", lambda: request.group_by("member").agg(pl.col("key").sum())),
    ):
        print(f"  {label:<32} {p50_ms(call, repeat):.3f}")
    lazy_reference = reference.lazy()
    for joins in (1, 5, 10, 20):
        plan = request.lazy()
        for i in range(joins):
            plan = plan.join(
                lazy_reference.select("key", pl.col("value").alias(f"value_{i}")), on="key"
            )
        plan = plan.group_by("member").agg(pl.all().sum())
        cost = p50_ms(plan.collect, repeat)
        print(f"  lazy plan, {joins:>2} joins, one collect  {cost:.3f}  ({cost / joins:.3f} per join)")


def engine_call(repeat: int) -> None:
    from benchmarks.roster import make_roster
    from engine.run import score_batch
    from reference.store import ReferenceStore

    store = ReferenceStore()
    batches = [make_roster(1, seed=seed) for seed in range(repeat + 1)]
    score_batch(*batches[0], 2025, store)  # builds the derived reference frames once

    counts = {"collect": 0, "collect_all": 0, "eager": 0}
    originals = {
        name: getattr(owner, name)
        for owner, name in ((pl.LazyFrame, "collect"), (pl.LazyFrame, "_collect_eager"), (pl, "collect_all"))
        if hasattr(owner, name)
    }

    def counting(name: str, label: str):
        original = originals[name]

        def counted(*args, **kwargs):
            counts[label] += 1
            return original(*args, **kwargs)

        return counted

    pl.LazyFrame.collect = counting("collect", "collect")
    pl.collect_all = counting("collect_all", "collect_all")
    if "_collect_eager" in originals:
        pl.LazyFrame._collect_eager = counting("_collect_eager", "eager")
    try:
        score_batch(*batches[1], 2025, store)
    finally:
        pl.LazyFrame.collect = originals["collect"]
        pl.collect_all = originals["collect_all"]
        if "_collect_eager" in originals:
            pl.LazyFrame._collect_eager = originals["_collect_eager"]
    queries = sum(counts.values())
    if "_collect_eager" not in originals:
        print("  (this polars has no LazyFrame._collect_eager: eager operations are not counted)")

    times = []
    for memberships, diagnoses in batches[1:]:
        start = time.perf_counter()
        score_batch(memberships, diagnoses, 2025, store)
        times.append(time.perf_counter() - start)
    print(
        f"score_batch, 1 member (PY2025): p50 {statistics.median(times) * 1e3:.1f} ms over "
        f"{repeat} distinct members; {queries} polars queries per call "
        f"({counts['eager']} eager DataFrame operations, {counts['collect']} collect, "
        f"{counts['collect_all']} collect_all)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads")
    operation_costs(args.repeat)
    engine_call(min(args.repeat, 200))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
