"""`raf serve`: run the API under uvicorn (host, port, workers from `app.cli`).

Every worker builds the app with `app.main.create_served_app` (uvicorn's
factory mode: an import string, so it also works with several workers): each
loads the reference data once and keeps its own member cache. With
`--workers N` uvicorn's supervisor binds the socket and spawns N worker
processes that accept from it; every worker can take submissions, but jobs run
in one runner only (the worker holding `RAF_DATA_DIR/runner.lock`, `app.jobs`).

Several workers share their metrics through prometheus-client's multiprocess
mode: this process points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory
before the workers start (they inherit the environment) and removes it at exit.
An operator's own `PROMETHEUS_MULTIPROC_DIR` is used instead and emptied first.

Shutdown (`docs/operations.md`): on SIGTERM each worker drains
(`RAF_SHUTDOWN_DRAIN_SECONDS`), stops accepting, lets in-flight requests finish
for up to `RAF_SHUTDOWN_GRACE_SECONDS`, stops the job runner (running jobs go
back to the queue) and exits; `raf serve` then exits 0.

At start-up it prints where it listens and where its docs are (uvicorn's own
start-up lines are below our `warning` level).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

import uvicorn

from app.settings import Settings, SettingsError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # = app.metrics.MULTIPROC_ENV (not imported:
# prometheus-client must not be imported in this process before the variable is set)


def _metrics_dir() -> tuple[Path, bool]:
    """(directory, whether we made it) for multiprocess metrics, emptied."""
    configured = os.environ.get(MULTIPROC_ENV, "").strip()
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # values of a previous run would add up
            stale.unlink()
        return directory, False
    directory = Path(tempfile.mkdtemp(prefix="raf-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory, True


def _signal_already_handled(signum: int, frame: FrameType | None) -> None:
    """uvicorn re-raises the signal that stopped it once it has shut down gracefully;
    with this handler in place that ends in a normal exit (status 0), not death by
    SIGTERM (143) or a KeyboardInterrupt traceback after Ctrl+C."""


def served_urls(host: str, port: int) -> dict[str, str]:
    """The service's base URL and its docs pages (`app.openapi`)."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    return {
        "url": base,
        "docs": f"{base}/schema",
        "redoc": f"{base}/schema/redoc",
        "openapi": f"{base}/schema/openapi.json",
    }


def announce(host: str, port: int) -> str:
    urls = served_urls(host, port)
    line = (
        f"raf serve: listening on {urls['url']} (docs: {urls['docs']}, ReDoc: {urls['redoc']}, "
        f"OpenAPI: {urls['openapi']})"
    )
    print(line, file=sys.stderr, flush=True)
    return line


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()  # fail here, once, rather than in every worker
    except SettingsError as exc:
        print(f"raf serve: {exc}", file=sys.stderr)
        return 1
    if args.workers < 1:
        print("raf serve: --workers must be at least 1", file=sys.stderr)
        return 1
    environ_before = os.environ.get(MULTIPROC_ENV)
    metrics_dir, made_it = _metrics_dir() if args.workers > 1 else (None, False)
    previous_handlers = {
        signum: signal.signal(signum, _signal_already_handled)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    announce(args.host, args.port)
    try:
        uvicorn.run(
            "app.main:create_served_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            access_log=False,  # app.logs writes one structured access line per request
            log_level="warning",
        )
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        if made_it and metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            if environ_before is None:
                os.environ.pop(MULTIPROC_ENV, None)
    return 0
