"""A job worker process (`RAF_JOB_EXECUTOR=process`): one spawned process per attempt.

Kept free of polars imports at module level on purpose: `init_worker` runs before
anything in the child imports polars, which is the only moment polars'
thread-pool size can be set. The worker also lowers its own scheduling priority,
so on a small machine the API process keeps answering `/v1/risk-scores` while a
large job runs.

A worker never outlives the server that started it. Linux delivers SIGKILL to it
when the parent dies (`prctl(PR_SET_PDEATHSIG)`; the "parent" is the runner's
dispatcher thread, which lives as long as the runner), and a watchdog thread
checks the parent pid every second as a fallback (other platforms, or a parent
that died before `prctl` ran). An orphan would otherwise keep scoring an attempt
the restarted server has already handed to a new worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_CHECK_SECONDS = 1.0
EXIT_FOLDER_LOCKED = 3  # another attempt still holds the job folder; this one did not run
EXIT_INTERNAL = 4  # the worker could not run the attempt (logged)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a spawned worker needs, picklable."""

    data_dir: str
    job_id: str
    attempt: int
    chunk_members: int
    parent_pid: int
    polars_threads: int = 0
    niceness: int = 10
    log_level: str = "INFO"
    lock_wait_seconds: float = 30.0


def die_with_parent(parent_pid: int) -> None:
    """Arrange to exit when `parent_pid` is gone: parent-death signal, plus a watchdog."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except OSError:  # no libc to call: the watchdog still covers it
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="raf-parent-watch", daemon=True).start()


def init_worker(polars_threads: int, niceness: int) -> None:
    if polars_threads > 0:
        os.environ["POLARS_MAX_THREADS"] = str(polars_threads)
    if niceness > 0:
        try:
            os.nice(niceness)
        except OSError:  # not permitted: run at normal priority
            pass


def run_attempt(config: WorkerConfig) -> None:
    """Process entry point: run one attempt of one job, then exit.

    Logs are JSON lines (`app.logs`) with the job id and attempt bound to every
    event; a crash is logged without exception text (it may quote member data).
    """
    die_with_parent(config.parent_pid)
    init_worker(config.polars_threads, config.niceness)
    import structlog

    from app.logs import configure_logging

    configure_logging(config.log_level)
    structlog.contextvars.bind_contextvars(job_id=config.job_id, attempt=config.attempt)
    try:
        from app.jobs import execute_job

        outcome = execute_job(
            config.data_dir,
            config.job_id,
            config.chunk_members,
            attempt=config.attempt,
            lock_wait_seconds=config.lock_wait_seconds,
        )
    except BaseException as exc:  # noqa: BLE001  (the log line is the worker's last word)
        from app.errors import traceback_without_values

        structlog.get_logger("app.jobs").error(
            "job_worker_crashed",
            reason="internal error",
            exception_type=type(exc).__qualname__,
            traceback=traceback_without_values(exc),
        )
        sys.stdout.flush()
        os._exit(EXIT_INTERNAL)
    sys.stdout.flush()
    os._exit(EXIT_FOLDER_LOCKED if outcome == "locked" else 0)
