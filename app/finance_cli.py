"""Bodies of `raf summary`, `raf compare` and `raf report` (exit 0 ok, 1 fatal)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import polars as pl

EXIT_OK = 0
EXIT_FATAL = 1


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"raf {command}: error: {message}\n")
    return EXIT_FATAL


def _write_json(data: bytes, out: str | None) -> None:
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data + b"\n")
    else:
        sys.stdout.write(data.decode() + "\n")


def run_summary(args: argparse.Namespace) -> int:
    from app.summary import encode, summary_of_file

    try:
        summary = summary_of_file(
            Path(args.scores), Path(args.errors) if args.errors else None
        )
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        return _fail("summary", str(exc))
    _write_json(encode(summary), args.out)
    return EXIT_OK


def run_compare(args: argparse.Namespace) -> int:
    from app.compare import compare_rows, compare_summary, payment_year_of
    from app.summary import read_scores

    try:
        a, _ = read_scores(Path(args.a))
        b, _ = read_scores(Path(args.b))
        per_member = compare_rows(a, b)
        summary = compare_summary(
            per_member, payment_year_a=payment_year_of(a), payment_year_b=payment_year_of(b)
        )
        if args.out:
            write_comparison(per_member, Path(args.out))
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        return _fail("compare", str(exc))
    encoded = msgspec.json.format(msgspec.json.encode(summary), indent=2)
    if args.summary:
        _write_json(encoded, args.summary)
    else:
        _write_json(encoded, None)
    return EXIT_OK


def write_comparison(per_member: pl.DataFrame, out: Path) -> None:
    frame = per_member.drop("Delta_micro")
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        frame.write_parquet(out)
    elif suffix == ".csv":
        frame.with_columns(pl.col("HCCs_Gained", "HCCs_Lost").list.join(" ")).write_csv(out)
    elif suffix == ".json":
        frame.write_json(out)
    else:
        raise ValueError(f"{out}: unsupported output type {suffix or '(none)'!r}; "
                         "use .csv, .parquet or .json")


def run_report(args: argparse.Namespace) -> int:
    from app.report import render_report
    from app.summary import decode

    try:
        summary = decode(Path(args.summary).read_bytes())
    except OSError as exc:
        return _fail("report", f"{args.summary}: {exc}")
    except msgspec.MsgspecError as exc:
        return _fail("report", f"{args.summary}: not a roster summary: {exc}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(summary, args.title), encoding="utf-8")
    sys.stderr.write(f"raf report: {out}\n")
    return EXIT_OK
