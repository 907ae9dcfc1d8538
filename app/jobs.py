"""Asynchronous scoring jobs: rosters too big for one request.

`POST /v1/jobs` stores the uploaded files and a `queued` record, answers 202 at
once, and a background runner scores the roster with the same chunked pipeline
as `raf score` (`app.batch.score_roster`), writing `result.parquet` and
`errors.parquet` beside the record.

Durability. Records live in SQLite (`$RAF_DATA_DIR/jobs.sqlite3`, WAL mode),
inputs and outputs in `$RAF_DATA_DIR/jobs/<job_id>/`. A job is never only in
memory: the runner picks work *from the database*, so a restart (or a crash)
finds every `queued` job again, and a job left `running` by a dead runner is
queued again -- or marked `failed` with reason "interrupted by server restart"
when it cannot be re-run (inputs gone, or it already crashed the runner
`max_attempts` times). Outputs are published by rename only when a run
finishes, so a re-run starts clean.

One runner per data directory. With `raf serve --workers N` every process can
accept submissions and answer status, but only the process holding an exclusive
lock on `runner.lock` runs jobs; if it dies, the lock is released and another
process takes over (and recovers what the dead one left `running`).

Concurrency. Jobs run in a bounded pool (`RAF_JOB_WORKERS`, default 1) of
spawned processes at lower CPU priority (`RAF_JOB_NICE`, default 10), so a large
job yields the CPU to `/v1/risk-scores` (measured on 2 cores while a 1M-member
job ran: API p95 ~0.25-0.4 s with processes vs ~2 s with threads). A process
worker loads its own ReferenceStore (bundled data or `RAF_REFERENCE_DIR`).
`RAF_JOB_EXECUTOR=thread` runs jobs in threads of the server process instead,
sharing the app's `score_batch` and store (what the unit tests use).

Environment: `RAF_DATA_DIR` (default `.raf-data`; the app's `settings.data_dir`
wins), `RAF_JOB_WORKERS`, `RAF_JOB_EXECUTOR` (`process`|`thread`),
`RAF_JOB_CHUNK_MEMBERS` (50000), `RAF_JOB_MAX_ATTEMPTS` (3),
`RAF_JOB_MAX_UPLOAD_BYTES` (4 GiB), `RAF_JOB_THREADS` (polars threads per worker
process, 0 = all cores), `RAF_JOB_NICE` (10).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import polars as pl
from litestar import Controller, Litestar, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import File

from app import batch

log = logging.getLogger("app.jobs")

JobStatus = Literal["queued", "running", "completed", "failed"]
RESTART_REASON = "interrupted by server restart"
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024**3
# Route-level body limit for uploads (the app-wide limit is sized for JSON requests);
# read once at import because Litestar fixes it when the route is declared.
MAX_UPLOAD_BYTES = int(os.environ.get("RAF_JOB_MAX_UPLOAD_BYTES", str(DEFAULT_MAX_UPLOAD_BYTES)))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class JobSettings:
    """Where jobs live and how many run at once; every field has an env override."""

    data_dir: Path = Path(".raf-data")
    workers: int = 1
    executor: Literal["thread", "process"] = "process"
    chunk_members: int = 50_000
    max_attempts: int = 3
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    poll_seconds: float = 1.0
    worker_threads: int = 0  # process executor: polars threads per worker (0 = polars' default)
    worker_niceness: int = 10  # process executor: lower priority than the API process

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> JobSettings:
        env = os.environ if environ is None else environ
        executor = env.get("RAF_JOB_EXECUTOR", "process")
        if executor not in ("thread", "process"):
            raise ValueError(f"RAF_JOB_EXECUTOR must be 'thread' or 'process', got {executor!r}")
        return cls(
            data_dir=Path(env.get("RAF_DATA_DIR", ".raf-data")),
            workers=max(1, int(env.get("RAF_JOB_WORKERS", "1"))),
            executor=executor,  # type: ignore[arg-type]
            chunk_members=int(env.get("RAF_JOB_CHUNK_MEMBERS", "50000")),
            max_attempts=int(env.get("RAF_JOB_MAX_ATTEMPTS", "3")),
            max_upload_bytes=int(
                env.get("RAF_JOB_MAX_UPLOAD_BYTES", str(DEFAULT_MAX_UPLOAD_BYTES))
            ),
            worker_threads=int(env.get("RAF_JOB_THREADS", "0")),
            worker_niceness=int(env.get("RAF_JOB_NICE", "10")),
        )


# --------------------------------------------------------------------------- records


class JobRecord(msgspec.Struct, frozen=True):
    """One row of the jobs table."""

    job_id: str
    status: JobStatus
    payment_year: int
    members_file: str
    diagnoses_file: str | None
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    members_done: int = 0
    members_total: int | None = None
    reason: str | None = None
    summary: str | None = None  # JSON of BatchSummary.as_dict() once completed
    errors_count: int | None = None
    kind: str = "v1"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id         TEXT PRIMARY KEY,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    payment_year   INTEGER NOT NULL,
    members_file   TEXT NOT NULL,
    diagnoses_file TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    members_done   INTEGER NOT NULL DEFAULT 0,
    members_total  INTEGER,
    reason         TEXT,
    summary        TEXT,
    errors_count   INTEGER,
    kind           TEXT NOT NULL DEFAULT 'v1'
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
"""
_COLUMNS = tuple(JobRecord.__struct_fields__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobStore:
    """The jobs table and the per-job directories: the only state a job has.

    A connection per call keeps it safe across threads and processes; SQLite's
    own locking (WAL, busy timeout) serializes writers. Status transitions are
    single conditional UPDATEs, so two runners can never both claim a job.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "jobs.sqlite3"
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.parquet"

    def errors_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "errors.parquet"

    def new_job_dir(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        directory = self.job_dir(job_id)
        directory.mkdir(parents=True)
        return job_id, directory

    def create(
        self,
        job_id: str,
        payment_year: int,
        members_file: str,
        diagnoses_file: str | None,
        kind: str = "v1",
    ) -> JobRecord:
        """Record a job whose inputs are already on disk: from here on it cannot be lost."""
        now = _now()
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO jobs (job_id, status, payment_year, members_file, diagnoses_file,"
                " created_at, updated_at, kind) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, payment_year, members_file, diagnoses_file, now, now, kind),
            )
        record = self.get(job_id)
        assert record is not None
        return record

    def get(self, job_id: str) -> JobRecord | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return None if row is None else JobRecord(**dict(zip(_COLUMNS, row)))

    def queued_ids(self) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY created_at, job_id"
            ).fetchall()
        return [job_id for (job_id,) in rows]

    def claim(self, job_id: str) -> bool:
        """queued → running; False if someone else got it (or it is no longer queued)."""
        now = _now()
        with self._connect() as conn:
            changed = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?,"
                " updated_at = ?, members_done = 0, reason = NULL"
                " WHERE job_id = ? AND status = 'queued'",
                (now, now, job_id),
            ).rowcount
        return changed == 1

    def claim_next(self) -> tuple[str, int] | None:
        """Claim the oldest queued job; returns (job_id, attempt)."""
        for job_id in self.queued_ids():
            if self.claim(job_id):
                record = self.get(job_id)
                assert record is not None
                return job_id, record.attempts
        return None

    # `attempt` is a fencing token: a worker only updates the attempt it was given, so
    # an orphaned worker of a dead server (still finishing attempt 1 while attempt 2
    # runs) cannot overwrite the status of the live attempt.

    def progress(
        self, job_id: str, members_done: int, members_total: int, attempt: int | None = None
    ) -> None:
        self._update_running(
            job_id,
            attempt,
            "members_done = ?, members_total = ?, updated_at = ?",
            (members_done, members_total, _now()),
        )

    def complete(
        self, job_id: str, summary: batch.BatchSummary, attempt: int | None = None
    ) -> None:
        now = _now()
        self._update_running(
            job_id,
            attempt,
            "status = 'completed', finished_at = ?, updated_at = ?, members_done = ?,"
            " members_total = ?, summary = ?, errors_count = ?",
            (
                now,
                now,
                summary.member_count,
                summary.member_count,
                json.dumps(summary.as_dict()),
                summary.members_rejected,
            ),
        )

    def fail(self, job_id: str, reason: str, attempt: int | None = None) -> None:
        now = _now()
        self._update_running(
            job_id,
            attempt,
            "status = 'failed', finished_at = ?, updated_at = ?, reason = ?",
            (now, now, reason),
            statuses=("queued", "running"),
        )

    def requeue(self, job_id: str, attempt: int | None = None) -> None:
        """running → queued after a graceful stop; the attempt does not count."""
        self._update_running(
            job_id,
            attempt,
            "status = 'queued', attempts = MAX(attempts - 1, 0), updated_at = ?, members_done = 0",
            (_now(),),
        )

    def _update_running(
        self,
        job_id: str,
        attempt: int | None,
        assignments: str,
        values: tuple[Any, ...],
        statuses: tuple[str, ...] = ("running",),
    ) -> bool:
        where = f"job_id = ? AND status IN ({', '.join('?' * len(statuses))})"
        params: tuple[Any, ...] = (*values, job_id, *statuses)
        if attempt is not None:
            where += " AND attempts = ?"
            params += (attempt,)
        with self._connect() as conn:
            return (
                conn.execute(f"UPDATE jobs SET {assignments} WHERE {where}", params).rowcount == 1
            )

    def recover(self, max_attempts: int) -> list[str]:
        """At runner start: jobs left `running` belong to a dead runner.

        Re-queue them, or fail them explicitly when a re-run is impossible
        (inputs missing) or has already been tried `max_attempts` times (a job
        that kills the server must not kill it forever). Returns the queue.
        """
        with self._connect() as conn:
            orphans = conn.execute(
                "SELECT job_id, attempts, members_file, diagnoses_file FROM jobs WHERE status = 'running'"
            ).fetchall()
        for job_id, attempts, members_file, diagnoses_file in orphans:
            inputs = [
                self.job_dir(job_id) / name for name in (members_file, diagnoses_file) if name
            ]
            if not all(path.is_file() for path in inputs):
                self._force_fail(
                    job_id, f"{RESTART_REASON}; its uploaded files are missing, resubmit it"
                )
            elif attempts >= max_attempts:
                self._force_fail(
                    job_id, f"{RESTART_REASON} {attempts} times while running; not retried again"
                )
            else:
                with self._connect() as conn:
                    conn.execute(
                        "UPDATE jobs SET status = 'queued', members_done = 0, updated_at = ?"
                        " WHERE job_id = ? AND status = 'running'",
                        (_now(), job_id),
                    )
                log.warning(
                    "job re-queued after restart", extra={"job_id": job_id, "attempts": attempts}
                )
        return self.queued_ids()

    def worker_died(self, job_id: str, attempt: int, max_attempts: int) -> None:
        """The worker process running this attempt died (killed, out of memory): queue the
        job again while it has attempts left, else fail it saying so."""
        if attempt >= max_attempts:
            self.fail(
                job_id,
                f"its worker process died {attempt} times (out of memory?); not retried again",
                attempt,
            )
            return
        self._update_running(
            job_id, attempt, "status = 'queued', members_done = 0, updated_at = ?", (_now(),)
        )

    def _force_fail(self, job_id: str, reason: str) -> None:
        self.fail(job_id, reason)
        log.warning("job failed at restart", extra={"job_id": job_id, "reason": reason})


# --------------------------------------------------------------------------- execution


class JobInterrupted(Exception):
    """Raised inside a running job when the server is stopping; the job goes back to the queue."""


_STOPPING = threading.Event()


def execute_job(
    data_dir: str,
    job_id: str,
    chunk_members: int,
    engine: tuple[batch.ScoreBatch, Any] | None = None,
) -> JobStatus:
    """Run one claimed job to `completed` or `failed` (or back to `queued` on shutdown).

    Top-level and argument-light so a process pool can pickle it; reads
    everything else from the store. `engine` is the app's `(score_batch, store)`
    in thread mode (the API and the jobs then share one loaded ReferenceStore);
    a process worker loads its own via `batch.default_engine()`. Output files are
    published by rename only at the end, so an interrupted run leaves nothing
    half-written behind.
    """
    store = JobStore(Path(data_dir))
    job = store.get(job_id)
    if job is None or job.status != "running":
        return job.status if job else "failed"
    directory = store.job_dir(job_id)
    attempt = job.attempts
    for leftover in [*directory.glob("*.partial"), *directory.glob(".raf-stage-*")]:
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(
            missing_ok=True
        )

    def report(done: int, total: int) -> None:
        if _STOPPING.is_set():
            raise JobInterrupted(job_id)
        store.progress(job_id, done, total, attempt)

    try:
        score, reference_store = engine or batch.default_engine()
        batch.check_payment_year(reference_store, job.payment_year)
        source = batch.open_roster(
            directory / job.members_file,
            directory / job.diagnoses_file if job.diagnoses_file else None,
        )
        if source.embedded_payment_year not in (None, job.payment_year):
            raise batch.BatchInputError(
                f"memberships: `payment_year` {source.embedded_payment_year} in the request "
                f"differs from payment_year {job.payment_year}"
            )
        summary = batch.score_roster(
            source,
            job.payment_year,
            score_batch=score,
            store=reference_store,
            results=batch.ParquetSink(store.result_path(job_id)),
            errors=batch.ParquetSink(store.errors_path(job_id)),
            chunk_members=chunk_members,
            progress=report,
            staging_dir=directory,
        )
    except JobInterrupted:
        store.requeue(job_id, attempt)
        return "queued"
    except batch.BatchInputError as exc:
        store.fail(job_id, str(exc).replace(str(directory) + os.sep, ""), attempt)
        return "failed"
    except Exception as exc:  # the job fails explicitly; the runner keeps going
        log.exception("job failed", extra={"job_id": job_id})
        store.fail(job_id, f"internal error ({type(exc).__name__}); see the server log", attempt)
        return "failed"
    store.complete(job_id, summary, attempt)
    return "completed"


class JobRunner:
    """Feeds queued jobs from the database to a bounded pool.

    The database is the queue: a dispatcher thread claims the oldest queued job
    whenever a slot is free, woken by `notify()` on submission and otherwise
    polling, so jobs submitted to another server process are picked up too.
    """

    def __init__(
        self,
        store: JobStore,
        settings: JobSettings,
        engine: tuple[batch.ScoreBatch, Any] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.engine = engine if settings.executor == "thread" else None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(settings.workers)
        self._executor: Executor | None = None
        self._in_flight: dict[Future[JobStatus], tuple[str, int]] = {}
        self._in_flight_lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None
        self._lock_file: Any = None
        self.is_runner = False

    def start(self) -> None:
        _STOPPING.clear()
        self._stop.clear()
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="raf-job-dispatcher", daemon=True
        )
        self._dispatcher.start()

    def notify(self) -> None:
        self._wake.set()

    def _try_become_runner(self) -> bool:
        if self.is_runner:
            return True
        handle = open(self.store.data_dir / "runner.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        self.is_runner = True
        self._executor = self._new_executor()
        recovered = self.store.recover(self.settings.max_attempts)
        log.info(
            "job runner started", extra={"queued": len(recovered), "workers": self.settings.workers}
        )
        return True

    def _new_executor(self) -> Executor:
        if self.settings.executor == "process":
            import multiprocessing

            from app.jobs_worker import init_worker

            return ProcessPoolExecutor(
                self.settings.workers,
                mp_context=multiprocessing.get_context("spawn"),  # never fork a threaded server
                initializer=init_worker,
                initargs=(self.settings.worker_threads, self.settings.worker_niceness),
            )
        return ThreadPoolExecutor(self.settings.workers, thread_name_prefix="raf-job")

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._try_become_runner():
                    self._dispatch_ready()
            except Exception:  # keep dispatching; a bad row must not stop the queue
                log.exception("job dispatcher error")
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()

    def _dispatch_ready(self) -> None:
        while not self._stop.is_set() and self._slots.acquire(blocking=False):
            claimed = self.store.claim_next()
            if claimed is None:
                self._slots.release()
                return
            job_id, attempt = claimed
            if self._executor is None:  # a broken process pool was dropped: start a fresh one
                self._executor = self._new_executor()
            with self._in_flight_lock:
                future = self._executor.submit(
                    execute_job,
                    str(self.store.data_dir),
                    job_id,
                    self.settings.chunk_members,
                    self.engine,
                )
                self._in_flight[future] = (job_id, attempt)
            future.add_done_callback(self._job_done)

    def _job_done(self, future: Future[JobStatus]) -> None:
        with self._in_flight_lock:
            job_id, attempt = self._in_flight.pop(future, ("?", 0))
        self._slots.release()
        error = None if future.cancelled() else future.exception()
        if error is not None and not self._stop.is_set():
            # execute_job catches everything it can; reaching here means the worker died
            log.error("job worker died", extra={"job_id": job_id}, exc_info=error)
            self.store.worker_died(job_id, attempt, self.settings.max_attempts)
            if isinstance(error, BrokenExecutor):
                self._executor = None
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking jobs; running jobs go back to the queue (not counted as an attempt).

        Thread workers stop at their next chunk boundary. Process workers are
        terminated at once (a child cannot see the stop flag), and their jobs are
        re-queued here, so a graceful restart never waits for a long job.
        """
        self._stop.set()
        _STOPPING.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        if isinstance(self._executor, ProcessPoolExecutor):
            with self._in_flight_lock:
                in_flight = list(self._in_flight.values())
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)
            for job_id, attempt in in_flight:
                self.store.requeue(job_id, attempt)
            self._executor = None
        elif self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
        self.is_runner = False


class JobService:
    """What the routes need: the store, the runner, the settings, and the engine.

    `engine` is `(score_batch, ReferenceStore)`; None means `batch.default_engine()`.
    """

    def __init__(
        self, settings: JobSettings, engine: tuple[batch.ScoreBatch, Any] | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = JobStore(settings.data_dir)
        self.runner = JobRunner(self.store, settings, engine)

    def reference_store(self) -> Any:
        return (self.engine or batch.default_engine())[1]

    @classmethod
    def from_env(cls) -> JobService:
        return cls(JobSettings.from_env())

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()


@contextlib.asynccontextmanager
async def jobs_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Start the job runner with the app (recovering interrupted jobs), stop it gracefully after.

    Uses `app.state.jobs` when a test put one there; otherwise builds one from the
    environment, with the app's `settings.data_dir` and its `score_batch`/`store`
    (so jobs score with exactly what `/v1/risk-scores` uses). Register it after the
    lifespan that loads `app.state.store`.
    """
    from dataclasses import replace

    from litestar.concurrency import sync_to_thread

    service: JobService | None = app.state.get("jobs")
    if service is None:
        settings = JobSettings.from_env()
        app_settings = app.state.get("settings")
        if getattr(app_settings, "data_dir", None):
            settings = replace(settings, data_dir=Path(app_settings.data_dir))
        score, store = app.state.get("score_batch"), app.state.get("store")
        service = JobService(
            settings, engine=(score, store) if score and store is not None else None
        )
    app.state.jobs = service
    service.start()
    try:
        yield
    finally:
        await sync_to_thread(service.stop)


def provide_jobs(state: State) -> JobService:
    return state.jobs


# --------------------------------------------------------------------------- HTTP shapes


class JobAccepted(msgspec.Struct):
    job_id: str
    status: JobStatus
    status_url: str
    result_url: str
    errors_url: str


class JobProgress(msgspec.Struct):
    members_done: int
    members_total: int | None


class JobView(msgspec.Struct, omit_defaults=True):
    """`GET /v1/jobs/{job_id}`: status plus what is known at that status."""

    job_id: str
    status: JobStatus
    payment_year: int
    created_at: str
    status_url: str
    result_url: str
    errors_url: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    progress: JobProgress | None = None
    member_count: int | None = None
    members_scored: int | None = None
    members_rejected: int | None = None
    count: int | None = None
    errors_count: int | None = None
    diagnoses_summary: dict[str, int] | None = None
    reference: dict[str, Any] | None = None
    reason: str | None = None


def job_urls(job_id: str) -> dict[str, str]:
    return {
        "status_url": f"/v1/jobs/{job_id}",
        "result_url": f"/v1/jobs/{job_id}/result",
        "errors_url": f"/v1/jobs/{job_id}/errors",
    }


def job_view(job: JobRecord) -> JobView:
    view = JobView(
        job_id=job.job_id,
        status=job.status,
        payment_year=job.payment_year,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        attempts=job.attempts,
        **job_urls(job.job_id),
    )
    if job.status == "running":
        view.progress = JobProgress(job.members_done, job.members_total)
    elif job.status == "completed" and job.summary:
        summary = json.loads(job.summary)
        view.progress = JobProgress(summary["member_count"], summary["member_count"])
        view.member_count = summary["member_count"]
        view.members_scored = summary["members_scored"]
        view.members_rejected = summary["members_rejected"]
        view.count = summary["count"]
        view.errors_count = job.errors_count
        view.diagnoses_summary = summary["diagnoses_summary"]
        view.reference = summary["reference"]
    elif job.status == "failed":
        view.reason = job.reason
    return view


def failure(status_code: int, message: str, **extra: Any) -> Response[dict[str, Any]]:
    """The API's error body (`spec/api.md` "Errors")."""
    return Response({"status": "failure", "message": message, **extra}, status_code=status_code)


class JobForm(msgspec.Struct):
    """`POST /v1/jobs` multipart form."""

    payment_year: str
    memberships: UploadFile
    diagnoses: UploadFile | None = None


# --------------------------------------------------------------------------- submission


class SubmissionError(Exception):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _parse_year(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise SubmissionError(f"payment_year: {value!r} is not a year", "payment_year") from exc


def _upload_name(upload: UploadFile, role: str) -> str:
    """Stored as `<role>.<ext>`: the extension picks the reader, the client's name is not trusted."""
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in batch.INPUT_FORMATS and upload.content_type:
        suffix = {
            "text/csv": ".csv",
            "application/json": ".json",
            "application/vnd.apache.parquet": ".parquet",
            "application/x-parquet": ".parquet",
        }.get(upload.content_type.split(";")[0], suffix)
    if suffix not in batch.INPUT_FORMATS:
        raise SubmissionError(
            f"{role}: unsupported file type {upload.filename!r}; send .csv, .parquet or .json", role
        )
    return f"{role}{suffix}"


def _save_upload(upload: UploadFile, target: Path) -> None:
    upload.file.seek(0)
    with open(target, "wb") as handle:
        shutil.copyfileobj(upload.file, handle, 1024 * 1024)


def accept_job(
    service: JobService,
    payment_year: Any,
    write_inputs: Callable[[Path], tuple[str, str | None]],
    kind: str = "v1",
) -> JobRecord:
    """Validate cheaply (year, readable files, required columns), then record the job.

    Runs in a worker thread. Anything wrong is a `SubmissionError` naming the
    field, and the job directory is removed: a rejected submission leaves nothing.
    """
    year = _parse_year(payment_year)
    job_id, directory = service.store.new_job_dir()
    try:
        members_file, diagnoses_file = write_inputs(directory)
        try:
            batch.check_payment_year(service.reference_store(), year)
        except batch.BatchInputError as exc:
            raise SubmissionError(
                str(exc).replace("--payment-year", "payment_year"), "payment_year"
            ) from exc
        try:
            source = batch.open_roster(
                directory / members_file, directory / diagnoses_file if diagnoses_file else None
            )
        except batch.BatchInputError as exc:
            message = str(exc).replace(str(directory) + os.sep, "")
            field = "diagnoses" if message.startswith("diagnoses") else "memberships"
            raise SubmissionError(message, field) from exc
        if source.embedded_payment_year not in (None, year):
            raise SubmissionError(
                f"payment_year {year} differs from `payment_year` {source.embedded_payment_year} "
                "inside the request",
                "payment_year",
            )
        record = service.store.create(job_id, year, members_file, diagnoses_file, kind=kind)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    service.runner.notify()
    return record


def _inputs_from_form(data: JobForm) -> Callable[[Path], tuple[str, str | None]]:
    def write(directory: Path) -> tuple[str, str | None]:
        members_name = _upload_name(data.memberships, "memberships")
        diagnoses_name = _upload_name(data.diagnoses, "diagnoses") if data.diagnoses else None
        if members_name.endswith(".json") and diagnoses_name:
            raise SubmissionError(
                "diagnoses: omit it when memberships is a JSON request (it carries its own diagnoses)",
                "diagnoses",
            )
        _save_upload(data.memberships, directory / members_name)
        if data.diagnoses and diagnoses_name:
            _save_upload(data.diagnoses, directory / diagnoses_name)
        return members_name, diagnoses_name

    return write


def _lists_as_text(frame: pl.LazyFrame) -> pl.LazyFrame:
    schema = frame.collect_schema()
    return frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join("; ")
        for name, dtype in schema.items()
        if isinstance(dtype, pl.List)
    )


def _as_csv(parquet: Path) -> Path:
    """CSV twin of a stored Parquet output, made once (streaming) and kept beside it."""
    target = parquet.with_suffix(".csv")
    if not target.is_file():
        staging = target.with_name(target.name + f".{uuid.uuid4().hex}.partial")
        _lists_as_text(pl.scan_parquet(parquet)).sink_csv(staging)
        os.replace(staging, target)
    return target


def _download(
    service: JobService, job_id: str, which: Literal["result", "errors"], fmt: str
) -> Response[Any] | File:
    job = service.store.get(job_id)
    if job is None:
        return failure(404, f"job {job_id} not found")
    if job.status != "completed":
        return failure(
            409,
            f"job {job_id} is {job.status}; its {which} is available once completed",
            job_status=job.status,
            status_url=f"/v1/jobs/{job_id}",
        )
    parquet = (
        service.store.result_path(job_id)
        if which == "result"
        else service.store.errors_path(job_id)
    )
    if fmt == "parquet":
        return File(
            parquet,
            filename=f"{job_id}.{which}.parquet",
            media_type="application/vnd.apache.parquet",
        )
    if fmt == "csv":
        return File(_as_csv(parquet), filename=f"{job_id}.{which}.csv", media_type="text/csv")
    return failure(400, f"format: {fmt!r} is not one of csv, parquet")


# --------------------------------------------------------------------------- routes


class JobsController(Controller):
    """`/v1/jobs`: submit a roster, poll it, download results and errors."""

    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012
    dependencies = {"jobs": Provide(provide_jobs, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/",
        status_code=202,
        request_max_body_size=MAX_UPLOAD_BYTES,
        summary="Submit a roster for asynchronous scoring",
        description="Multipart form: `payment_year`, `memberships` (CSV, Parquet, or the JSON "
        "request of POST /v1/risk-scores), `diagnoses` (CSV or Parquet; omit with JSON).",
    )
    async def submit(
        self,
        jobs: NamedDependency[JobService],
        data: Annotated[JobForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[Any]:
        from litestar.concurrency import sync_to_thread

        try:
            record = await sync_to_thread(
                accept_job, jobs, data.payment_year, _inputs_from_form(data)
            )
        except SubmissionError as exc:
            return failure(400, str(exc), errors=[{"field": exc.field, "message": str(exc)}])
        finally:
            for upload in (data.memberships, data.diagnoses):
                if upload is not None:
                    await upload.close()
        accepted = JobAccepted(
            job_id=record.job_id, status=record.status, **job_urls(record.job_id)
        )
        return Response(accepted, status_code=202, headers={"Location": accepted.status_url})

    @get(
        "/{job_id:str}",
        summary="Job status: queued, running (with progress), completed, failed",
        sync_to_thread=True,
    )
    def status(self, jobs: NamedDependency[JobService], job_id: FromPath[str]) -> Response[Any]:
        job = jobs.store.get(job_id)
        if job is None:
            return failure(404, f"job {job_id} not found")
        return Response(job_view(job))

    @get("/{job_id:str}/result", summary="Scored rows of a completed job", sync_to_thread=True)
    def result(
        self,
        jobs: NamedDependency[JobService],
        job_id: FromPath[str],
        format: FromQuery[str] = "csv",
    ) -> Response[Any] | File:
        return _download(jobs, job_id, "result", format)

    @get(
        "/{job_id:str}/errors",
        summary="Rejected members of a completed job (with input line numbers)",
        sync_to_thread=True,
    )
    def errors(
        self,
        jobs: NamedDependency[JobService],
        job_id: FromPath[str],
        format: FromQuery[str] = "csv",
    ) -> Response[Any] | File:
        return _download(jobs, job_id, "errors", format)


# --------------------------------------------------------------------------- Health Trixss shape

_TRIXSS_STATUS = {
    "queued": "Pending",
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
}


class TrixssJobsController(Controller):
    """Health Trixss's asynchronous shape (Azure Durable Functions style) over the same jobs:
    `POST /api/risk-assessment` with the JSON request body, then poll
    `GET /api/orchestrators/{instanceId}` until `runtimeStatus` is Completed."""

    path = "/api"
    tags = ["jobs"]  # noqa: RUF012
    dependencies = {"jobs": Provide(provide_jobs, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/risk-assessment",
        status_code=202,
        request_max_body_size=MAX_UPLOAD_BYTES,
        summary="Submit a JSON risk-score request asynchronously (Health Trixss shape)",
    )
    async def submit(
        self, jobs: NamedDependency[JobService], request: Request[Any, Any, Any]
    ) -> Response[Any]:
        from litestar.concurrency import sync_to_thread

        body = await request.body()
        try:
            year = msgspec.json.decode(body, type=dict[str, Any]).get("payment_year")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return failure(400, f"body is not a JSON object: {exc}")

        def write(directory: Path) -> tuple[str, None]:
            (directory / "memberships.json").write_bytes(body)
            return "memberships.json", None

        try:
            if year is None:
                raise SubmissionError("payment_year: required", "payment_year")
            record = await sync_to_thread(accept_job, jobs, year, write, "trixss")
        except SubmissionError as exc:
            return failure(400, str(exc), errors=[{"field": exc.field, "message": str(exc)}])
        status_uri = str(request.base_url).rstrip("/") + f"/api/orchestrators/{record.job_id}"
        return Response(
            {"id": record.job_id, "instanceId": record.job_id, "statusQueryGetUri": status_uri},
            status_code=202,
            headers={"Location": status_uri},
        )

    @get(
        "/orchestrators/{instance_id:str}",
        sync_to_thread=True,
        summary="Orchestration status; `output` carries the risk-score response once Completed",
    )
    def orchestration(
        self, jobs: NamedDependency[JobService], instance_id: FromPath[str]
    ) -> Response[Any]:
        job = jobs.store.get(instance_id)
        if job is None:
            return failure(404, f"instance {instance_id} not found")
        head = {
            "name": "risk-assessment",
            "instanceId": job.job_id,
            "runtimeStatus": _TRIXSS_STATUS[job.status],
            "createdTime": job.created_at,
            "lastUpdatedTime": job.finished_at or job.updated_at,
            "customStatus": {"members_done": job.members_done, "members_total": job.members_total},
        }
        if job.status == "failed":
            return Response({**head, "output": job.reason}, status_code=200)
        if job.status != "completed":
            return Response({**head, "output": None}, status_code=202)
        return Response(
            _completed_body(jobs.store, job, head), status_code=200, media_type="application/json"
        )


def _completed_body(store: JobStore, job: JobRecord, head: dict[str, Any]) -> bytes:
    """The orchestration document with the API response as `output`, rows serialized by polars."""
    summary = json.loads(job.summary or "{}")
    rows = pl.read_parquet(store.result_path(job.job_id))
    errors = pl.read_parquet(store.errors_path(job.job_id)).select("MemberID", "field", "message")
    output_head = {
        "status": "partial" if summary.get("members_rejected") else "success",
        "message": "Data processed successfully"
        if not summary.get("members_rejected")
        else f"{summary['members_rejected']} member(s) could not be scored; see errors",
        "cache_status": "Cache miss",
        "count": rows.height,
    }
    output_tail = {
        "timestamp": job.finished_at,
        "member_count": summary.get("member_count"),
        "diagnoses_summary": summary.get("diagnoses_summary"),
        "reference": summary.get("reference"),
    }
    encode = msgspec.json.encode
    return (
        encode(head)[:-1]
        + b',"output":'
        + encode(output_head)[:-1]
        + b',"results":'
        + rows.write_json().encode()
        + b',"errors":'
        + errors.write_json().encode()
        + b","
        + encode(output_tail)[1:]
        + b"}"
    )
