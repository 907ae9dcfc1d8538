"""Same answer before and after a performance change: save, then check.

    .venv/bin/python benchmarks/same_answer.py save /tmp/answer   # on the old commit
    .venv/bin/python benchmarks/same_answer.py check /tmp/answer  # on the new one

Scores deterministic rosters (`benchmarks.roster.make_roster`) for every
bundled payment year, with and without the detail trail, plus a batch above
`engine.run.CHUNK_MEMBERS` so the chunked path is covered, and writes every
frame of each `BatchResult` (rows, errors, dx_counts, trail frames) and the
dx_summary to parquet/JSON. `check` recomputes and compares frames exactly
(same columns, dtypes, row order and values: floats bit for bit). It prints
the first difference and exits 1, so a speed-up that changes one payment is
caught before it lands. Not a test (the pytest suite pins behaviour); this is
the wide net for refactors of the scoring path.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl

from benchmarks.roster import make_roster

# (label, payment year, members, seed, detail)
CASES = (
    ("py2024", 2024, 20_000, 11, False),
    ("py2025", 2025, 20_000, 12, False),
    ("py2026", 2026, 20_000, 13, False),
    ("py2024_detail", 2024, 5_000, 21, True),
    ("py2025_detail", 2025, 5_000, 22, True),
    ("py2026_detail", 2026, 5_000, 23, True),
    ("py2025_one", 2025, 1, 31, False),
    ("py2025_one_detail", 2025, 1, 32, True),
)


def _frames(result) -> dict[str, pl.DataFrame]:
    # dx_counts is a group-by whose row order is not part of the contract
    dx_counts = result.dx_counts.sort(result.dx_counts.columns)
    frames = {"rows": result.rows, "errors": result.errors, "dx_counts": dx_counts}
    frames.update({f"trail_{name}": frame for name, frame in result.trail.items()})
    return frames


def _results(chunked: bool):
    from engine import run
    from reference.store import ReferenceStore

    store = ReferenceStore()
    for label, year, members, seed, detail in CASES:
        memberships, diagnoses = make_roster(members, seed=seed, payment_year=year)
        yield label, run.score_batch(memberships, diagnoses, year, store, detail=detail)
    if chunked:
        # a batch above the chunk size, with a small chunk so the test stays quick
        saved = run.CHUNK_MEMBERS
        run.CHUNK_MEMBERS = 4_000
        try:
            memberships, diagnoses = make_roster(10_000, seed=41, payment_year=2025)
            yield "py2025_chunked", run.score_batch(memberships, diagnoses, 2025, store)
        finally:
            run.CHUNK_MEMBERS = saved


def save(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for label, result in _results(chunked=True):
        for name, frame in _frames(result).items():
            frame.write_parquet(directory / f"{label}.{name}.parquet")
        (directory / f"{label}.dx_summary.json").write_text(json.dumps(result.dx_summary))
        print(f"saved {label}: {result.rows.height} rows, {result.errors.height} errors")


def check(directory: Path) -> int:
    failures = 0
    for label, result in _results(chunked=True):
        frames = _frames(result)
        expected_names = {
            p.name.split(".")[1] for p in directory.glob(f"{label}.*.parquet")
        }
        if set(frames) != expected_names:
            print(f"{label}: frames {sorted(frames)} != saved {sorted(expected_names)}")
            failures += 1
        for name, frame in frames.items():
            path = directory / f"{label}.{name}.parquet"
            if not path.exists():
                continue
            expected = pl.read_parquet(path)
            if frame.schema != expected.schema:
                print(f"{label}.{name}: schema {frame.schema} != {expected.schema}")
                failures += 1
                continue
            if not frame.equals(expected, null_equal=True):
                for column in frame.columns:
                    left, right = frame.get_column(column), expected.get_column(column)
                    if left.len() != right.len() or not left.equals(right, check_names=True):
                        where = []
                        if left.len() == right.len():  # frames of other heights: no row to show
                            mismatch = (left != right) | (left.is_null() != right.is_null())
                            where = mismatch.arg_true().head(1).to_list()
                        print(
                            f"{label}.{name}: column {column} differs "
                            f"(heights {left.len()} vs {right.len()}; first row {where})"
                        )
                        if where:
                            print("  now  :", frame.row(where[0], named=True))
                            print("  saved:", expected.row(where[0], named=True))
                        break
                failures += 1
        summary = json.loads((directory / f"{label}.dx_summary.json").read_text())
        if summary != result.dx_summary:
            print(f"{label}: dx_summary {result.dx_summary} != {summary}")
            failures += 1
        print(f"checked {label}")
    print("same answer" if not failures else f"{failures} differences")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "check"))
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.action == "save":
        save(args.directory)
        return 0
    return check(args.directory)


if __name__ == "__main__":
    raise SystemExit(main())
