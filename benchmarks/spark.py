"""Spark local mode vs `raf score` on the same files, and the cost of a Spark partition.

    .venv/bin/python benchmarks/spark.py [--members 1000000] [--sweep-members 200000]
        [--sweep-partitions 16,8,4,2,1,16] [--master local[2]] [--json out.json]

1. **Same files, two ways** (`--members`, default 1M, ~8 dx each, PY2025,
   `benchmarks/roster.py`): the roster is written once as Parquet, then scored
   by `raf score` and by `raf spark-score --master local[2]`, each a fresh
   process as a user would run it (so Spark's time includes starting its JVM and
   Python workers). Wall time, members/s and the ratio; the two outputs are
   then compared row for row (same rows, same errors).
2. **Per-partition cost** (`--sweep-members`, default 200k): one warm Spark
   session scores the same roster with `score_dataframes` in P partitions for
   each P of `--sweep-partitions`; wall time against P gives the fixed cost of
   a partition (least squares slope), and each run's Python worker peak RSS
   (workers are reused, so P goes from many small partitions to few large
   ones) and the engine's own time inside the partitions.

Python workers get `POLARS_MAX_THREADS=1` (`--polars-threads`): local[2] runs
two tasks at once on two cores. Scripts print numbers; nothing here passes or
fails. Wall-clock numbers need a quiet machine; the 1-minute load average is
printed with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl

from benchmarks.roster import make_roster

PAYMENT_YEAR = 2025
ROW_ORDER = ["Member_Id", "Active_Score", "Clinical_Version"]


def load() -> float:
    return os.getloadavg()[0]


def timed(cmd: list[str], env: dict[str, str]) -> dict:
    """Run a command; wall seconds, CPU seconds of its process tree (as reaped), exit code."""
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if done.returncode not in (0, 2):
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{cmd[1]} {cmd[2]} failed with exit code {done.returncode}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "exit": done.returncode,
            "load": round(load(), 2), "stdout": done.stdout.strip().splitlines()[-1:] }


def same_files(
    members: int, master: str, work: Path, polars_threads: int, driver_memory: str
) -> dict:
    m, d = make_roster(members, seed=0, payment_year=PAYMENT_YEAR)
    m.write_parquet(work / "members.parquet")
    d.write_parquet(work / "diagnoses.parquet")
    raf = str(Path(sys.executable).with_name("raf"))
    common = ["--payment-year", str(PAYMENT_YEAR), "--members", str(work / "members.parquet"),
              "--diagnoses", str(work / "diagnoses.parquet")]
    batch = timed([raf, "score", *common, "--out", str(work / "batch.parquet"), "--quiet"],
                  dict(os.environ))
    # the Python workers inherit the driver's environment in local mode
    spark_env = {**os.environ, "POLARS_MAX_THREADS": str(polars_threads),
                 "PYSPARK_PYTHON": sys.executable}
    spark = timed([raf, "spark-score", *common, "--out", str(work / "spark"), "--master", master,
                   "--conf", f"spark.driver.memory={driver_memory}", "--quiet"], spark_env)
    summary = json.loads(spark.pop("stdout")[0])
    batch.pop("stdout")

    batch_rows = pl.read_parquet(work / "batch.parquet").sort(ROW_ORDER)
    spark_rows = pl.read_parquet(f"{work / 'spark'}/*.parquet").sort(ROW_ORDER)
    batch_errors = pl.read_csv(work / "batch.errors.csv", infer_schema=False)
    spark_errors = pl.read_parquet(f"{work / 'spark_errors'}/*.parquet").cast(pl.String)
    by_line = pl.col("line").cast(pl.Int64)
    return {
        "members": members,
        "diagnoses": d.height,
        "raf_score": batch,
        "spark_score": spark,
        "spark_partitions": summary["partitions"],
        "ratio_wall_spark_over_batch": round(spark["wall_s"] / batch["wall_s"], 2),
        "members_per_s": {
            "raf_score": round(members / batch["wall_s"]),
            "spark_score": round(members / spark["wall_s"]),
        },
        "same_rows": spark_rows.equals(batch_rows),
        "same_errors": spark_errors.sort(by_line).equals(batch_errors.sort(by_line)),
        "rows": batch_rows.height,
        "errors": batch_errors.height,
    }


def sweep(
    members: int, partitions: list[int], master: str, polars_threads: int, driver_memory: str
) -> dict:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from app.spark import score_dataframes

    spark = (
        SparkSession.builder.master(master)
        .appName("raf benchmarks/spark.py")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.executorEnv.POLARS_MAX_THREADS", str(polars_threads))
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    jvm_pid = spark.sparkContext._jvm.ProcessHandle.current().pid()
    work = Path(tempfile.mkdtemp(prefix="raf-spark-sweep-"))
    try:
        m, d = make_roster(members, seed=1, payment_year=PAYMENT_YEAR)
        m.write_parquet(work / "members.parquet")
        d.write_parquet(work / "diagnoses.parquet")
        sm = spark.read.parquet(str(work / "members.parquet"))
        sd = spark.read.parquet(str(work / "diagnoses.parquet"))
        # warm-up: JVM code paths, Python workers, the reference store in each worker
        warm = score_dataframes(sm.limit(2_000), sd, PAYMENT_YEAR, partitions=2)
        warm.unpersist()
        baseline_rss_mb = round(warm.partition_stats["worker_peak_rss_mb"])
        runs = []
        for p in partitions:
            started = time.perf_counter()
            scores = score_dataframes(sm, sd, PAYMENT_YEAR, partitions=p)
            wall = time.perf_counter() - started
            stats = scores.partition_stats
            scores.unpersist()
            runs.append({
                "partitions": p,
                "members_per_partition": -(-members // p),
                "wall_s": round(wall, 2),
                "engine_s_total": round(stats["seconds_total"], 2),
                "engine_s_max_partition": round(stats["seconds_max"], 2),
                "worker_peak_rss_mb": round(stats["worker_peak_rss_mb"]),
                "load": round(load(), 2),
            })
            print(json.dumps(runs[-1]), flush=True)
        jvm_peak_mb = _peak_rss_mb(jvm_pid)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    xs = [r["partitions"] for r in runs]
    ys = [r["wall_s"] for r in runs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / max(
        sum((x - mean_x) ** 2 for x in xs), 1e-9
    )
    return {
        "members": members,
        "diagnoses": d.height,
        "runs": runs,
        "wall_s_per_extra_partition": round(slope, 3),
        "worker_rss_mb_after_2k_member_warm_up": baseline_rss_mb,
        "jvm_peak_rss_mb": jvm_peak_mb,
    }


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000, help="same-files comparison (0: skip)")
    ap.add_argument("--sweep-members", type=int, default=200_000, help="partition sweep (0: skip)")
    # many small partitions first: a worker's peak RSS only grows; the first size is
    # repeated at the end to show what JVM warm-up added to the first run
    ap.add_argument("--sweep-partitions", default="16,8,4,2,1,16")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--polars-threads", type=int, default=1)
    ap.add_argument("--driver-memory", default="4g", help="JVM heap of local mode (driver = executor)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    out = {"machine": {"nproc": os.cpu_count(), "load_at_start": round(load(), 2)}}
    if args.sweep_members:
        partitions = [int(p) for p in args.sweep_partitions.split(",")]
        out["sweep"] = sweep(
            args.sweep_members, partitions, args.master, args.polars_threads, args.driver_memory
        )
        print(json.dumps(out["sweep"], indent=1), flush=True)
    if args.members:
        work = Path(tempfile.mkdtemp(prefix="raf-spark-bench-", dir=REPO))
        try:
            out["same_files"] = same_files(
                args.members, args.master, work, args.polars_threads, args.driver_memory
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(out["same_files"], indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
