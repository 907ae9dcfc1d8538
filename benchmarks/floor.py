"""A floor for score_batch: the polars operations any engine fed string frames must do.

    .venv/bin/python benchmarks/floor.py --size 1000000

Not a scorer. It times, on the same roster as throughput.py, the minimum work of
a raw score from string inputs: parse both service dates and keep the
collection year, attach each diagnosis to its member (string join on
MemberID), map codes to CCs for V24 and V28 (join on the code), de-duplicate
(member, model, cc), and sum one Int64 per (member, model). No hierarchies,
interactions, demographics, blend or response rows. The total says how far
below the measured score_batch time an engine could get at best on this machine,
and so whether a throughput target is reachable at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl

from benchmarks.roster import REPO as _REPO
from benchmarks.roster import make_roster
from benchmarks.throughput import proc_status_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    args = ap.parse_args()
    m, d = make_roster(args.size)
    maps = {}
    for model in ("cms_hcc_v24", "cms_hcc_v28"):
        path = _REPO / "reference" / "data" / "mappings" / "PY2025" / f"{model}.csv"
        maps[model] = pl.read_csv(
            path, columns=["icd10", "cc"], schema_overrides={"icd10": pl.String}
        )
    steps: list[tuple[str, float, float]] = []
    rss0 = proc_status_mb("VmRSS")

    def step(name, fn):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        steps.append((name, time.perf_counter() - t, time.process_time() - c))
        return out

    members = step(
        "members: index + parse DOB",
        lambda: m.with_row_index("input_index").with_columns(
            pl.col("DOB").str.to_date("%Y-%m-%d", strict=False).alias("dob")
        ),
    )
    dx = step(
        "dx: parse FromDOS/ThruDOS, keep collection year",
        lambda: d.with_columns(
            pl.col("FromDOS").str.to_date("%Y-%m-%d", strict=False).alias("f"),
            pl.col("ThruDOS").str.to_date("%Y-%m-%d", strict=False).alias("t"),
        ).filter((pl.col("t").dt.year() == 2024) & (pl.col("f") <= pl.col("t"))),
    )
    dx = step(
        "dx: join MemberID -> input_index",
        lambda: dx.join(members.select("MemberID", "input_index"), on="MemberID", how="inner"),
    )
    ccs = step(
        "dx: join code -> cc (V24 and V28)",
        lambda: pl.concat(
            [
                dx.select("input_index", "DxCode")
                .join(mp, left_on="DxCode", right_on="icd10", how="inner")
                .select("input_index", pl.lit(i, pl.Int8).alias("model"), "cc")
                for i, mp in enumerate(maps.values())
            ]
        ),
    )
    ccs = step("ccs: unique (member, model, cc)", lambda: ccs.unique())
    step(
        "sum per (member, model)",
        lambda: ccs.group_by("input_index", "model").agg(pl.col("cc").cast(pl.Int64).sum()),
    )
    peak = proc_status_mb("VmHWM")
    total_wall = sum(s[1] for s in steps)
    total_cpu = sum(s[2] for s in steps)
    print(f"floor, {args.size:,} members, {d.height:,} dx")
    print("| step | wall s | CPU s |")
    print("|---|---:|---:|")
    for name, wall, cpu in steps:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    print(f"| total | {total_wall:.2f} | {total_cpu:.2f} |")
    print(
        f"floor throughput: {args.size / total_wall:,.0f} members/s wall, "
        f"{args.size / total_cpu:,.0f} members/CPU-s; peak RSS {peak:,.0f} MB "
        f"(roster alone {rss0:,.0f} MB)"
    )


if __name__ == "__main__":
    main()
