"""MMR reading speed: `app.mmr.read_mmr` against a plain Python loop over the lines.

    .venv/bin/python benchmarks/mmr.py --members 20000

Writes a year of prospective MMR records (one per member per month, from the
bundled layout) to a temporary file, then times, in the same run:

* ours: `read_mmr` (polars: split lines, `str.slice` every field, months netted
  and grouped into memberships), the whole path `raf score --mmr` takes before
  scoring;
* the loop: what a plan's script typically does, `line[a:b]` per field per line
  into dicts, then a dict of members with a set of months (no validation, no
  conflicts, no retro netting: a floor for a loop, not a peer).

Prints records, seconds and records/s for each and the ratio. Times on a shared
machine vary; compare the ratio within one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl

from app.mmr import load_layout, read_mmr
from tests.mmr.generate import records_of

CODES = ["CN", "CP", "CF", "I", "E", "D1"]


def make_file(path: Path, members: int) -> int:
    ids = pl.int_range(0, members, eager=True)
    base = pl.DataFrame({"i": ids}).with_columns(
        pl.format("{}EG4TE5MK", pl.col("i")).str.slice(0, 12).alias("MemberID"),
        pl.when(pl.col("i") % 2 == 0).then(pl.lit("F")).otherwise(pl.lit("M")).alias("Gender"),
        pl.format("19{}0312", (pl.col("i") % 50 + 30).cast(pl.String)).alias("DOB"),
        pl.lit("05200").alias("County"),
        pl.lit("01.0000").alias("RiskScore"),
        pl.lit("0").alias("OREC"),
        pl.col("i")
        .map_elements(lambda i: CODES[i % len(CODES)], return_dtype=pl.String)
        .alias("RAType"),
    )
    months = pl.DataFrame({"m": [f"2025{m:02d}" for m in range(1, 13)]})
    rows = base.join(months, how="cross").with_columns(
        pl.col("m").alias("PaymentDate"),
        (pl.col("m") + "01").alias("StartDate"),
        (pl.col("m") + "28").alias("EndDate"),
        pl.lit("1").alias("Months"),
    )
    records = records_of(rows, load_layout())
    path.write_text("\n".join(records.to_list()) + "\n", encoding="latin-1")
    return records.len()


def loop(path: Path) -> int:
    layout = load_layout()
    spans = {
        c: (s - 1, s - 1 + n)
        for c, s, n in layout.fields.select("column", "start", "length").iter_rows()
    }
    members: dict[str, dict[str, object]] = {}
    with open(path, encoding="latin-1") as handle:
        for line in handle:
            record = {c: line[a:b].strip() for c, (a, b) in spans.items()}
            member = members.setdefault(record["MemberID"], {"months": set(), **record})
            member["months"].add(record["PaymentDate"])  # type: ignore[union-attr]
    return len(members)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "MONMEND.txt"
        n = make_file(path, args.members)
        size = path.stat().st_size
        started = time.perf_counter()
        result = read_mmr(path, 2025)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        loop_members = loop(path)
        theirs = time.perf_counter() - started
    assert result.memberships.height == loop_members == args.members
    print(f"records {n:,} ({args.members:,} members x 12 months, {size:,} bytes)")
    print(f"ours  read_mmr      {ours:7.2f} s  {n / ours:12,.0f} records/s")
    print(f"loop  python slices {theirs:7.2f} s  {n / theirs:12,.0f} records/s")
    print(f"ratio loop/ours     {theirs / ours:7.1f}x")


if __name__ == "__main__":
    main()
