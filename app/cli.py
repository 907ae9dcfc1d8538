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
    score.add_argument("--members", required=True, help="CSV, Parquet or the seed's JSON request")
    score.add_argument("--diagnoses", help="CSV or Parquet (omit when --members is a JSON request)")
    score.add_argument("--out", required=True, help=".csv, .parquet or .json")
    score.add_argument("--errors", help="errors file (default: beside --out)")
    score.add_argument("--detail", action="store_true", help="also write the audit trail")
    score.add_argument("--chunk-members", type=int, default=250_000)
    score.add_argument("--quiet", action="store_true")
    score.set_defaults(func=_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `raf reference | head`: the reader left; that is not an error of ours.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
