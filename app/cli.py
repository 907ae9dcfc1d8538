"""`raf` console script: one entry point, one subcommand per concern.

Subcommands import their module lazily so `raf reference` does not pay for
Litestar and `raf serve` does not pay for the batch readers.
"""

from __future__ import annotations

import argparse
import os
import sys


def _reference(args: argparse.Namespace) -> int:
    from reference.cli import run

    return run(args)


def _serve(args: argparse.Namespace) -> int:
    from app.server import run

    return run(args)


def _score(args: argparse.Namespace) -> int:
    from app.batch import run

    return run(args)


def _summary(args: argparse.Namespace) -> int:
    from app.finance_cli import run_summary

    return run_summary(args)


def _compare(args: argparse.Namespace) -> int:
    from app.finance_cli import run_compare

    return run_compare(args)


def _report(args: argparse.Namespace) -> int:
    from app.finance_cli import run_report

    return run_report(args)


def _reconcile(args: argparse.Namespace) -> int:
    from app.reconcile import run

    return run(args)


def _spark_score(args: argparse.Namespace) -> int:
    from app.spark import run

    return run(args)


def _add_reconcile(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rec = sub.add_parser(
        "reconcile", help="compare our scores with the risk scores CMS paid on (MMR or CSV)"
    )
    rec.add_argument("scores", help="our scores: the .parquet or .csv `raf score` wrote")
    rec.add_argument(
        "--cms",
        required=True,
        help="CMS's MMR detail file, or a CSV MemberID,RiskScore[,PaymentMonth][,RAType]",
    )
    rec.add_argument(
        "--cms-format", choices=("mmr", "csv"), help="default: by extension (.csv/.parquet = csv)"
    )
    rec.add_argument("--out", required=True, help="reconciliation .csv or .parquet")
    rec.add_argument("--summary", help="summary JSON (default: beside --out)")
    rec.add_argument("--errors", help="our errors file (default: the one beside the scores)")
    rec.add_argument("--payment-year", type=int, help="default: the scores' payment year")
    rec.add_argument("--mmr-layout", help="a corrected MMR layout CSV")
    rec.add_argument(
        "--monthly-rate", type=float, help="dollars per member-month, for the dollar effect"
    )
    rec.add_argument(
        "--fail-over",
        type=float,
        metavar="THRESHOLD",
        help="exit 4 if any member's |Difference| exceeds THRESHOLD (for a plan's CI)",
    )
    rec.add_argument(
        "--fail-on-missing",
        action="store_true",
        help="with --fail-over: members on one side only count as over",
    )
    rec.add_argument("--quiet", action="store_true")
    rec.set_defaults(func=_reconcile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raf", description="CMS-HCC risk scores")
    sub = parser.add_subparsers(dest="command", required=True)

    ref = sub.add_parser("reference", help="list bundled reference data: years, models, hashes")
    ref.add_argument("--verify", action="store_true", help="recompute hashes and compare")
    ref.set_defaults(func=_reference)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=_serve)

    score = sub.add_parser("score", help="score a roster file")
    score.add_argument("--payment-year", type=int, required=True)
    score.add_argument("--members", help="CSV, Parquet or the seed's JSON request")
    score.add_argument(
        "--mmr", help="CMS's MMR detail file instead of --members (layout: docs/mmr.md)"
    )
    score.add_argument("--mmr-layout", help="a corrected MMR layout CSV (default: the bundled one)")
    score.add_argument(
        "--mmr-status",
        choices=("error", "latest"),
        default="error",
        help="status that changes between payment months: member error (default) or the latest month's",
    )
    score.add_argument("--diagnoses", help="CSV or Parquet (omit when --members is a JSON request)")
    score.add_argument("--out", required=True, help=".csv, .parquet or .json")
    score.add_argument("--errors", help="errors file (default: beside --out)")
    score.add_argument(
        "--run-summary",
        help="what the run did, as JSON: row counts, diagnoses summary, warnings "
        "(default: <out>.run.json)",
    )
    score.add_argument(
        "--strict",
        action="store_true",
        help="exit 3 when a data-quality warning fires (see README, exit codes)",
    )
    score.add_argument("--detail", action="store_true", help="also write the audit trail")
    score.add_argument("--chunk-members", type=int, default=250_000)
    score.add_argument("--quiet", action="store_true")
    score.add_argument("--rates", help="county rate table CSV (payment_year, county, "
                       "monthly_rate, source); over RAF_RATES")
    score.add_argument("--summary", help="also write the roster summary (JSON)")
    score.set_defaults(func=_score)

    summary = sub.add_parser("summary", help="roster summary of a scores file")
    summary.add_argument("scores", help="scores written by `raf score` (.parquet, .csv, .json)")
    summary.add_argument("--errors", help="its errors file (default: beside it, if present)")
    summary.add_argument("-o", "--out", help="write the JSON here (default: stdout)")
    summary.set_defaults(func=_summary)

    compare = sub.add_parser("compare", help="two scored runs member by member (A -> B)")
    compare.add_argument("a", help="scores file A (e.g. PY2026 final)")
    compare.add_argument("b", help="scores file B (e.g. PY2027 to date)")
    compare.add_argument("-o", "--out", help="per-member comparison (.csv, .parquet, .json)")
    compare.add_argument("--summary", help="write the summary of the deltas here (JSON; "
                         "default: stdout)")
    compare.set_defaults(func=_compare)

    report = sub.add_parser("report", help="self-contained HTML report of a roster summary")
    report.add_argument("summary", help="summary JSON (`raf score --summary`, `raf summary`)")
    report.add_argument("-o", "--out", required=True, help="HTML file to write")
    report.add_argument("--title", help="report title")
    report.set_defaults(func=_report)
    _add_reconcile(sub)

    spark = sub.add_parser(
        "spark-score",
        help="score a roster on Apache Spark (needs raf-service[spark]; for spark-submit)",
    )
    spark.add_argument("--payment-year", type=int, required=True)
    spark.add_argument("--members", required=True, help="CSV/Parquet path or URI, or table:NAME")
    spark.add_argument("--diagnoses", help="CSV/Parquet path or URI, or table:NAME")
    spark.add_argument("--out", required=True, help="output path or URI (a dataset), or table:NAME")
    spark.add_argument("--errors", help="errors output (default: <out>_errors)")
    spark.add_argument("--format", default="parquet", help="output format: parquet, csv, delta, orc")
    spark.add_argument("--input-format", default="auto", help="auto (.csv/.txt CSV, else Parquet), csv, parquet")
    spark.add_argument("--mode", default="errorifexists", choices=["errorifexists", "overwrite"])
    spark.add_argument("--detail", action="store_true", help="also write <out>_detail")
    spark.add_argument("--partitions", type=int, help="Spark partitions (default: by --members-per-partition)")
    spark.add_argument("--members-per-partition", type=int, help="default app.spark.MEMBERS_PER_PARTITION")
    spark.add_argument("--master", help="Spark master when not run by spark-submit, e.g. local[2]")
    spark.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE",
        help="Spark setting for a session this command starts (e.g. spark.driver.memory=4g)",
    )
    spark.add_argument("--quiet", action="store_true")
    spark.set_defaults(func=_spark_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    from reference.store import ParameterOverrideError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `raf reference | head`: the reader left; that is not an error of ours.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ParameterOverrideError as exc:  # RAF_PARAMETER_OVERRIDES refused: say why, exit 1
        print(f"raf: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
