"""Asynchronous scoring jobs: rosters too big for one request.

`POST /v1/jobs` checks the uploaded files (encoding, header, delimiter, first
rows: `app.batch.check_roster_files`), stores them and a `queued` record, answers
202 at once, and a background runner scores the roster with the same chunked
pipeline as `raf score` (`app.batch.score_roster`), writing `result.parquet` and
`errors.parquet` (and `detail.parquet` with `?detail=true`) beside the record.

Ownership. A job belongs to the API key that submitted it: the record keeps a
keyed hash of the key (`app.auth.tenant_of`, HMAC-SHA256 under the secret in
`$RAF_DATA_DIR/owner.key`), never the key. Every job route of both families
(`/v1/jobs...`, `/api/risk-assessment` + `/api/orchestrators/{id}`) answers 404
for a job of another key, exactly as for a job that does not exist. With auth
off every caller is one tenant.

Durability. Records live in SQLite (`$RAF_DATA_DIR/jobs.sqlite3`, WAL mode),
inputs and outputs in `$RAF_DATA_DIR/jobs/<job_id>/`. A job is never only in
memory: the runner picks work *from the database*, so a restart (or a crash)
finds every `queued` job again, and a job left `running` by a dead runner is
queued again -- or marked `failed` with reason "interrupted by server restart"
when it cannot be re-run (inputs gone, or it already crashed `max_attempts`
times). Outputs are published by rename only when a run finishes, so a re-run
starts clean. `attempts` counts every start; `crashes` the starts that ended
without an outcome (server killed, worker killed), which is what
`RAF_JOB_MAX_ATTEMPTS` bounds.

One worker per attempt. Each attempt runs in its own spawned process (or thread,
`RAF_JOB_EXECUTOR=thread`), which dies with the server (`app.jobs_worker`), and
holds an exclusive lock on the job folder's `.job.lock` for its whole run, so two
attempts of one job never run at once (a late orphan waits, then gives up).
`DELETE /v1/jobs/{id}` removes the record at once; the runner then kills the
attempt (a process at once, a thread at its next chunk) and removes the folder.

Retention. Files and record of a finished job are deleted `RAF_JOB_RETENTION_HOURS`
(default 168; 0 keeps them) after it finished; the record says when (`expires_at`).
When the runner starts it removes job folders with no record (an upload cut off
by a crash) and temporary files of jobs no attempt is running.

One runner per data directory. With `raf serve --workers N` every process can
accept submissions and answer status, but only the process holding an exclusive
lock on `runner.lock` runs jobs; if it dies, the lock is released and another
process takes over (and recovers what the dead one left `running`). Its explicit
API is `JobRunner.start()` / `JobRunner.stop(requeue=True)`.

Concurrency. At most `RAF_JOB_WORKERS` (default 1) attempts run at once, as
processes at lower CPU priority (`RAF_JOB_NICE`, default 10), so a large job
yields the CPU to `/v1/risk-scores` (measured on 2 cores while a 1M-member job
ran: API p95 ~0.25-0.4 s with processes vs ~2 s with threads). A process worker
loads its own ReferenceStore (bundled data or `RAF_REFERENCE_DIR`).
`RAF_JOB_EXECUTOR=thread` runs jobs in threads of the server process instead,
sharing the app's `score_batch` and store (what most unit tests use).

Adding an output: name its file in `OUTPUT_PARTS`, write it in `execute_job`, and
serve it with a route that calls `download_part` (formats, ownership and 409
handling come with it); a route computed from a job's outputs starts with
`completed_job` (or `owned_job` for any status). Routes take the `owner`
dependency: a job route without it would show one key's jobs to another.

Environment: `RAF_DATA_DIR` (default `.raf-data`; the app's `settings.data_dir`
wins), `RAF_JOB_WORKERS`, `RAF_JOB_EXECUTOR` (`process`|`thread`),
`RAF_JOB_CHUNK_MEMBERS` (50000), `RAF_JOB_MAX_ATTEMPTS` (3),
`RAF_JOB_MAX_UPLOAD_BYTES` (4 GiB), `RAF_JOB_THREADS` (polars threads per worker
process, 0 = all cores), `RAF_JOB_NICE` (10), `RAF_JOB_RETENTION_HOURS` (168).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from dataclasses import dataclass as openapi_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import polars as pl
import structlog
from litestar import Controller, Litestar, Request, Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import File

from app import batch
from app.auth import key_fingerprint, tenant_of
from app.errors import BadRequest, Conflict, NotFound, traceback_without_values
from app.json_depth import check_json_depth
from app.openapi import example, failure_responses
from app.wire import DX_SUMMARY_DOC, DataWarning, ErrorItem, RiskScoreResponse, doc

log = structlog.get_logger("app.jobs")

JobStatus = Literal["queued", "running", "completed", "failed"]
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "completed", "failed")
RESTART_REASON = "interrupted by server restart"
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024**3
DEFAULT_RETENTION_HOURS = 168
# Route-level body limit for uploads (the app-wide limit is sized for JSON requests);
# read once at import because Litestar fixes it when the route is declared.
MAX_UPLOAD_BYTES = int(os.environ.get("RAF_JOB_MAX_UPLOAD_BYTES", str(DEFAULT_MAX_UPLOAD_BYTES)))
LOCK_NAME = ".job.lock"
# What a job folder may hold besides inputs and published outputs: staging files of
# the sinks (`*.partial`), the chunk staging directory, CSV/JSON twins being written.
TEMPORARY_PATTERNS = ("*.partial", ".raf-stage-*")
ORPHAN_GRACE_SECONDS = 60.0  # folders and temp files younger than this are never cleaned
# Published outputs of a job, by part name: what `download_part` serves.
OUTPUT_PARTS: dict[str, str] = {
    "result": "result.parquet",
    "errors": "errors.parquet",
    "detail": "detail.parquet",
    "reconciliation": "reconciliation.parquet",  # with a `cms` part (`app.reconcile`)
}
RECONCILIATION_SUMMARY = "reconciliation.json"
CMS_INPUTS = ("cms.csv", "cms.mmr")  # a submitted `cms` part, by the reader it needs
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z`: sorts as text in time order."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


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
    retention_hours: float = DEFAULT_RETENTION_HOURS  # 0 keeps finished jobs forever
    sweep_seconds: float = 60.0  # how often the runner deletes expired jobs
    lock_wait_seconds: float = 30.0  # an attempt waits this long for an older one to let go
    log_level: str = "INFO"  # worker processes' log level (RAF_LOG_LEVEL)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> JobSettings:
        env = os.environ if environ is None else environ
        executor = env.get("RAF_JOB_EXECUTOR", "process")
        if executor not in ("thread", "process"):
            raise ValueError(f"RAF_JOB_EXECUTOR must be 'thread' or 'process', got {executor!r}")
        retention = float(env.get("RAF_JOB_RETENTION_HOURS", str(DEFAULT_RETENTION_HOURS)))
        if retention < 0:
            raise ValueError(f"RAF_JOB_RETENTION_HOURS must be >= 0, got {retention}")
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
            retention_hours=retention,
            log_level=env.get("RAF_LOG_LEVEL", "INFO").strip().upper() or "INFO",
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
    owner: str = ""  # keyed hash of the submitting API key ("" = auth off)
    detail: int = 0  # 1: the audit trail is written too
    crashes: int = 0  # starts that ended with no outcome (bounded by max_attempts)
    worker_pid: int | None = None  # process running the current attempt


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
# Columns added after the first release: added in place to an existing database
# (jobs recorded before ownership existed belong to the auth-off tenant "").
_ADDED_COLUMNS = {
    "owner": "TEXT NOT NULL DEFAULT ''",
    "detail": "INTEGER NOT NULL DEFAULT 0",
    "crashes": "INTEGER NOT NULL DEFAULT 0",
    "worker_pid": "INTEGER",
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at DESC, job_id DESC);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (status, finished_at);
"""
_COLUMNS = tuple(JobRecord.__struct_fields__)


@contextlib.contextmanager
def folder_lock(
    directory: Path, wait_seconds: float = 0.0, give_up: Callable[[], bool] | None = None
) -> Iterator[bool]:
    """Hold the job folder's exclusive lock (`flock` on `.job.lock`); yields whether it is held.

    Held by the submission while it writes the uploads and by each attempt for its
    whole run; the start-up cleanup only touches folders whose lock it can take. The
    kernel drops the lock when its holder dies, however it dies.
    """
    try:
        handle = open(directory / LOCK_NAME, "a+")  # noqa: SIM115
    except OSError:  # the folder is gone
        yield False
        return
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline or (give_up is not None and give_up()):
                    held = False
                    break
                time.sleep(0.1)
        yield held
    finally:
        handle.close()


def _modified_after(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime > cutoff
    except FileNotFoundError:
        return True  # gone already: nothing to do


def _remove_temporary_files(directory: Path, cutoff: float | None = None) -> int:
    """Remove staging files (older than `cutoff`, a time.time() value, when given)."""
    removed = 0
    for pattern in TEMPORARY_PATTERNS:
        for leftover in directory.glob(pattern):
            if cutoff is not None and _modified_after(leftover, cutoff):
                continue  # perhaps a download writing its CSV twin right now
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
    return removed


class JobStore:
    """The jobs table and the per-job directories: the only state a job has.

    A connection per call keeps it safe across threads and processes; SQLite's
    own locking (WAL, busy timeout) serializes writers. Status transitions are
    single conditional UPDATEs, so two runners can never both claim a job.
    `clock` is injected (tests move time for retention).
    """

    def __init__(self, data_dir: Path, clock: Clock = utc_now) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "jobs.sqlite3"
        self.clock = clock
        self._secret: bytes | None = None
        # One store at a time sets the schema up: `raf serve --workers N` opens N at once,
        # and raced, the switch to WAL fails ("database is locked") and two stores that
        # both saw a column missing both add it ("duplicate column name").
        with open(self.data_dir / "schema.lock", "a+") as schema_lock:
            fcntl.flock(schema_lock, fcntl.LOCK_EX)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                present = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
                for name, declaration in _ADDED_COLUMNS.items():
                    if name not in present:
                        conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
                conn.executescript(_INDEXES)

    def now(self) -> str:
        return _stamp(self.clock())

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    # ---- ownership

    def owner_secret(self) -> bytes:
        """The HMAC key for owner ids: 32 random bytes in `owner.key` (mode 0600), made once
        and shared by every process on this data directory."""
        if self._secret is None:
            path = self.data_dir / "owner.key"
            if not path.is_file():
                staging = path.with_name(f"owner.key.{uuid.uuid4().hex}.partial")
                fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
                try:
                    os.link(staging, path)  # first writer wins; others read its key
                except FileExistsError:
                    pass
                finally:
                    staging.unlink(missing_ok=True)
            self._secret = bytes.fromhex(path.read_text().strip())
        return self._secret

    # ---- folders

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def part_path(self, job_id: str, part: str) -> Path:
        return self.job_dir(job_id) / OUTPUT_PARTS[part]

    def result_path(self, job_id: str) -> Path:
        return self.part_path(job_id, "result")

    def errors_path(self, job_id: str) -> Path:
        return self.part_path(job_id, "errors")

    def new_job_dir(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        directory = self.job_dir(job_id)
        directory.mkdir(parents=True)
        return job_id, directory

    def remove_files(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # ---- records

    def create(
        self,
        job_id: str,
        payment_year: int,
        members_file: str,
        diagnoses_file: str | None,
        kind: str = "v1",
        owner: str = "",
        detail: bool = False,
    ) -> JobRecord:
        """Record a job whose inputs are already on disk: from here on it cannot be lost."""
        now = self.now()
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO jobs (job_id, status, payment_year, members_file, diagnoses_file,"
                " created_at, updated_at, kind, owner, detail)"
                " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    payment_year,
                    members_file,
                    diagnoses_file,
                    now,
                    now,
                    kind,
                    owner,
                    int(detail),
                ),
            )
        record = self.get(job_id)
        assert record is not None
        return record

    def get(self, job_id: str, owner: str | None = None) -> JobRecord | None:
        """The record, or None when there is none -- or it belongs to another owner."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        record = None if row is None else JobRecord(**dict(zip(_COLUMNS, row)))
        if record is not None and owner is not None and record.owner != owner:
            return None
        return record

    def list_jobs(
        self,
        owner: str,
        status: str | None = None,
        limit: int = 50,
        after: tuple[str, str] | None = None,
    ) -> list[JobRecord]:
        """An owner's jobs, newest first; `after` = (created_at, job_id) of the last one seen."""
        where, params = ["owner = ?"], [owner]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND job_id < ?))")
            params += [after[0], after[0], after[1]]
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE {' AND '.join(where)}"
                " ORDER BY created_at DESC, job_id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [JobRecord(**dict(zip(_COLUMNS, row))) for row in rows]

    def delete(self, job_id: str, owner: str | None = None) -> str | None:
        """Remove the record; returns the status it had (None: no such job for this owner).

        Compare-and-delete on the status read, so a claim racing with it either
        happened first (returned status `running`: the runner frees the folder) or
        finds no row to claim.
        """
        while True:
            record = self.get(job_id, owner)
            if record is None:
                return None
            with self._connect() as conn:
                gone = conn.execute(
                    "DELETE FROM jobs WHERE job_id = ? AND status = ? AND attempts = ?",
                    (job_id, record.status, record.attempts),
                ).rowcount
            if gone:
                return record.status

    def expires_at(self, job: JobRecord, retention_hours: float) -> str | None:
        if not job.finished_at or retention_hours <= 0:
            return None
        return _stamp(_parse_stamp(job.finished_at) + dt.timedelta(hours=retention_hours))

    def expire(self, retention_hours: float) -> list[str]:
        """Delete finished jobs (record and files) older than the retention period."""
        if retention_hours <= 0:
            return []
        cutoff = _stamp(self.clock() - dt.timedelta(hours=retention_hours))
        with self._connect() as conn:
            expired = [
                job_id
                for (job_id,) in conn.execute(
                    "SELECT job_id FROM jobs WHERE status IN ('completed', 'failed')"
                    " AND finished_at < ?",
                    (cutoff,),
                ).fetchall()
            ]
            for job_id in expired:
                conn.execute(
                    "DELETE FROM jobs WHERE job_id = ? AND status IN ('completed', 'failed')",
                    (job_id,),
                )
        for job_id in expired:
            self.remove_files(job_id)
        return expired

    def clean_folders(
        self, temporary_files: bool = True, grace_seconds: float = ORPHAN_GRACE_SECONDS
    ) -> tuple[int, int]:
        """Remove job folders with no record (uploads cut off by a crash) and, with
        `temporary_files`, temporary files in folders no attempt is running in.

        Only what is unlocked and untouched for `grace_seconds` goes: a submission
        creates its folder an instant before it locks it, and that instant must not
        look like an orphan. Returns (folders removed, temporary files removed).
        """
        with self._connect() as conn:
            known = {job_id for (job_id,) in conn.execute("SELECT job_id FROM jobs")}
        folders = files = 0
        cutoff = time.time() - grace_seconds
        for directory in self.jobs_dir.iterdir():
            if not directory.is_dir():
                continue
            if directory.name not in known and _modified_after(directory, cutoff):
                continue  # (read before locking: opening the lock file touches the folder)
            with folder_lock(directory) as held:
                if not held:
                    continue  # a submission or an attempt is using it
                if directory.name in known or self.get(directory.name) is not None:
                    if temporary_files:
                        files += _remove_temporary_files(directory, cutoff)
                    continue
                shutil.rmtree(directory, ignore_errors=True)
                folders += 1
        return folders, files

    def queued_ids(self) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY created_at, job_id"
            ).fetchall()
        return [job_id for (job_id,) in rows]

    def claim(self, job_id: str) -> bool:
        """queued → running, counting the start; False if someone else got it."""
        now = self.now()
        with self._connect() as conn:
            changed = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?,"
                " updated_at = ?, members_done = 0, reason = NULL, worker_pid = NULL"
                " WHERE job_id = ? AND status = 'queued'",
                (now, now, job_id),
            ).rowcount
        return changed == 1

    def claim_next(self) -> tuple[str, int] | None:
        """Claim the oldest queued job; returns (job_id, attempt)."""
        for job_id in self.queued_ids():
            if self.claim(job_id):
                record = self.get(job_id)
                if record is not None:  # deleted the instant after the claim: skip it
                    return job_id, record.attempts
        return None

    # `attempt` is a fencing token: a worker only updates the attempt it was given, so
    # an orphaned worker of a dead server (still finishing attempt 1 while attempt 2
    # runs) cannot overwrite the status of the live attempt. Attempts only ever grow,
    # so a token is never reused. Each update says whether it applied: False means the
    # job was deleted or another attempt owns it, and the worker stops.

    def set_worker_pid(self, job_id: str, attempt: int, pid: int) -> bool:
        return self._update_running(job_id, attempt, "worker_pid = ?", (pid,))

    def progress(
        self, job_id: str, members_done: int, members_total: int, attempt: int | None = None
    ) -> bool:
        return self._update_running(
            job_id,
            attempt,
            "members_done = ?, members_total = ?, updated_at = ?",
            (members_done, members_total, self.now()),
        )

    def complete(
        self, job_id: str, summary: batch.BatchSummary, attempt: int | None = None
    ) -> bool:
        now = self.now()
        return self._update_running(
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
                summary.error_rows,
            ),
        )

    def fail(self, job_id: str, reason: str, attempt: int | None = None) -> bool:
        now = self.now()
        return self._update_running(
            job_id,
            attempt,
            "status = 'failed', finished_at = ?, updated_at = ?, reason = ?",
            (now, now, reason),
            statuses=("queued", "running"),
        )

    def requeue(self, job_id: str, attempt: int | None = None) -> bool:
        """running → queued after a graceful stop (the start still counts in `attempts`,
        but not as a crash)."""
        return self._update_running(
            job_id,
            attempt,
            "status = 'queued', updated_at = ?, members_done = 0, worker_pid = NULL",
            (self.now(),),
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
        (inputs missing) or they have already crashed `max_attempts` times (a job
        that kills the server must not kill it forever). Returns the queue.
        """
        with self._connect() as conn:
            orphans = conn.execute(
                "SELECT job_id, attempts, crashes, members_file, diagnoses_file FROM jobs"
                " WHERE status = 'running'"
            ).fetchall()
        for job_id, attempts, crashes, members_file, diagnoses_file in orphans:
            inputs = [
                self.job_dir(job_id) / name for name in (members_file, diagnoses_file) if name
            ]
            crashes += 1
            with self._connect() as conn:
                conn.execute(
                    "UPDATE jobs SET crashes = ? WHERE job_id = ? AND attempts = ?",
                    (crashes, job_id, attempts),
                )
            if not all(path.is_file() for path in inputs):
                self._force_fail(
                    job_id,
                    attempts,
                    f"{RESTART_REASON}; its uploaded files are missing, resubmit it",
                )
            elif crashes >= max_attempts:
                self._force_fail(
                    job_id,
                    attempts,
                    f"{RESTART_REASON} {crashes} times while running; not retried again",
                )
            elif self._update_running(
                job_id,
                attempts,
                "status = 'queued', members_done = 0, updated_at = ?, worker_pid = NULL",
                (self.now(),),
            ):
                log.warning(
                    "job_requeued",
                    job_id=job_id,
                    attempt=attempts,
                    crashes=crashes,
                    reason=RESTART_REASON,
                )
        return self.queued_ids()

    def worker_died(
        self, job_id: str, attempt: int, max_attempts: int, reason: str | None = None
    ) -> None:
        """The worker running this attempt ended without an outcome (killed, out of memory,
        or it could not take the folder): queue the job again while it has crashes left,
        else fail it saying so."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE jobs SET crashes = crashes + 1 WHERE job_id = ? AND attempts = ?"
                " AND status = 'running'",
                (job_id, attempt),
            )
        record = self.get(job_id)
        if record is None or record.status != "running" or record.attempts != attempt:
            return
        why = reason or "its worker process died (out of memory?)"
        if record.crashes >= max_attempts:
            self.fail(job_id, f"{why}; {record.crashes} times, not retried again", attempt)
            log.error("job_failed", job_id=job_id, attempt=attempt, reason=why)
            return
        if self.requeue(job_id, attempt):
            log.warning("job_requeued", job_id=job_id, attempt=attempt, reason=why)

    def _force_fail(self, job_id: str, attempt: int, reason: str) -> None:
        if self.fail(job_id, reason, attempt):
            log.warning("job_failed", job_id=job_id, attempt=attempt, reason=reason)


# --------------------------------------------------------------------------- execution


class JobInterrupted(Exception):
    """Raised inside a running job when the runner is stopping; the job goes back to the queue."""


class JobCancelled(Exception):
    """Raised inside a running job whose record was deleted (or taken by another attempt)."""


@dataclass
class AttemptSignals:
    """How a runner talks to an attempt running in one of its threads."""

    stop: threading.Event = field(default_factory=threading.Event)  # graceful: re-queue
    cancel: threading.Event = field(default_factory=threading.Event)  # deleted: just end


AttemptOutcome = Literal["queued", "running", "completed", "failed", "cancelled", "locked"]


def execute_job(
    data_dir: str,
    job_id: str,
    chunk_members: int,
    engine: tuple[batch.ScoreBatch, Any] | None = None,
    *,
    attempt: int | None = None,
    signals: AttemptSignals | None = None,
    lock_wait_seconds: float = 30.0,
    clock: Clock = utc_now,
) -> AttemptOutcome:
    """Run one claimed attempt of a job to `completed` or `failed` (or back to `queued`
    on a graceful stop; `cancelled` if the job was deleted meanwhile).

    Top-level and argument-light so a spawned worker can call it; reads
    everything else from the store. `engine` is the app's `(score_batch, store)`
    in thread mode (the API and the jobs then share one loaded ReferenceStore);
    a process worker loads its own via `batch.default_engine()`. The attempt holds
    the folder lock throughout (`locked`: an older attempt would not let go, nothing
    ran). Output files are published by rename only at the end, so an interrupted
    run leaves nothing half-written behind.
    """
    store = JobStore(Path(data_dir), clock=clock)
    job = store.get(job_id)
    if job is None:
        return "cancelled"
    attempt = job.attempts if attempt is None else attempt
    if job.status != "running" or job.attempts != attempt:
        return "cancelled"  # superseded before it started
    directory = store.job_dir(job_id)
    cancel = signals.cancel if signals else threading.Event()
    stop = signals.stop if signals else threading.Event()
    bound = structlog.contextvars.bound_contextvars(job_id=job_id, attempt=attempt)
    with bound, folder_lock(directory, lock_wait_seconds, cancel.is_set) as held:
        if not held:
            if cancel.is_set():
                return "cancelled"
            log.warning("job_attempt_blocked", reason="another attempt holds the job folder")
            return "locked"
        log.info("job_started", payment_year=job.payment_year, detail=bool(job.detail))
        return _run_locked(store, job, attempt, chunk_members, engine, stop, cancel)


def _cms_input(directory: Path) -> Path | None:
    return next((directory / n for n in CMS_INPUTS if (directory / n).is_file()), None)


def _reconcile_job(store: JobStore, job: JobRecord) -> None:
    """With a `cms` part: our result against CMS's scores (`app.reconcile`), published
    as the `reconciliation` part and its summary beside it."""
    from app import reconcile

    directory = store.job_dir(job.job_id)
    cms = _cms_input(directory)
    if cms is None:
        return
    table, summary = reconcile.reconcile_files(
        store.part_path(job.job_id, "result"),
        cms,
        payment_year=job.payment_year,
        errors=store.part_path(job.job_id, "errors"),
    )
    summary["cms"]["file"] = "cms"
    summary["scores"] = "result"
    target = store.part_path(job.job_id, "reconciliation")
    staging = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}.partial")
    table.write_parquet(staging)
    (directory / RECONCILIATION_SUMMARY).write_text(json.dumps(summary))
    os.replace(staging, target)


def _run_locked(
    store: JobStore,
    job: JobRecord,
    attempt: int,
    chunk_members: int,
    engine: tuple[batch.ScoreBatch, Any] | None,
    stop: threading.Event,
    cancel: threading.Event,
) -> AttemptOutcome:
    job_id, directory = job.job_id, store.job_dir(job.job_id)
    _remove_temporary_files(directory)  # what an earlier attempt left half-written

    def report(done: int, total: int) -> None:
        if cancel.is_set():
            raise JobCancelled(job_id)
        if stop.is_set():
            raise JobInterrupted(job_id)
        if not store.progress(job_id, done, total, attempt):
            raise JobCancelled(job_id)  # deleted, or no longer this attempt's job

    started = time.monotonic()
    try:
        score, reference_store = engine or batch.default_engine()
        batch.check_payment_year(reference_store, job.payment_year)
        source = batch.open_roster(
            directory / job.members_file,
            directory / job.diagnoses_file if job.diagnoses_file else None,
            job.payment_year,
        )
        if source.embedded_payment_year not in (None, job.payment_year):
            raise batch.BatchInputError(
                f"memberships: `payment_year` {source.embedded_payment_year} in the request "
                f"differs from payment_year {job.payment_year}"
            )
        job_rates = directory / JOB_RATES_FILE  # the job's own rates over RAF_RATES
        rates = batch.cli_rates(str(job_rates) if job_rates.is_file() else None)
        summary = batch.score_roster(
            source,
            job.payment_year,
            score_batch=score,
            store=reference_store,
            results=batch.ParquetSink(store.part_path(job_id, "result")),
            errors=batch.ParquetSink(store.part_path(job_id, "errors")),
            detail=batch.ParquetSink(
                store.part_path(job_id, "detail"), leading_columns=batch.TRAIL_LEADING_COLUMNS
            )
            if job.detail
            else None,
            chunk_members=chunk_members,
            progress=report,
            staging_dir=directory,
            rates=rates,
        )
        _reconcile_job(store, job)
    except JobInterrupted:
        if store.requeue(job_id, attempt):
            log.info("job_requeued", reason="runner stopping")
        return "queued"
    except JobCancelled:
        log.info("job_cancelled", reason="job deleted")
        return "cancelled"
    except batch.BatchInputError as exc:
        message = exc.short_message() if isinstance(exc, batch.InputReadError) else str(exc)
        reason = message.replace(str(directory) + os.sep, "")
        if store.fail(job_id, reason, attempt):
            log.info("job_failed", reason="input error")
        return "failed"
    except Exception as exc:  # noqa: BLE001  (the job fails explicitly; the runner keeps going)
        log.error(
            "job_failed",
            reason="internal error",
            exception_type=type(exc).__qualname__,
            traceback=traceback_without_values(exc),
        )
        store.fail(job_id, f"internal error ({type(exc).__name__}); see the server log", attempt)
        return "failed"
    if not store.complete(job_id, summary, attempt):
        log.info("job_cancelled", reason="job deleted before it completed")
        return "cancelled"
    log.info(
        "job_completed",
        member_count=summary.member_count,
        members_rejected=summary.members_rejected,
        row_count=summary.row_count,
        chunks=summary.chunks,
        seconds=round(time.monotonic() - started, 3),
    )
    return "completed"


@dataclass
class _Attempt:
    """One running attempt: a spawned process, or a thread of this process."""

    job_id: str
    attempt: int
    signals: AttemptSignals = field(default_factory=AttemptSignals)
    process: Any = None
    thread: threading.Thread | None = None
    outcome: AttemptOutcome | None = None  # thread mode: what execute_job returned

    def alive(self) -> bool:
        if self.process is not None:
            return bool(self.process.is_alive())
        return self.thread is not None and self.thread.is_alive()

    def kill(self) -> None:
        """Cancel: a process is killed at once, a thread stops at its next chunk."""
        self.signals.cancel.set()
        if self.process is not None and self.process.is_alive():
            self.process.kill()

    def join(self, timeout: float | None = None) -> None:
        (self.process or self.thread).join(timeout)  # type: ignore[union-attr]

    def ended_without_outcome(self) -> tuple[bool, str | None]:
        """(True, reason) when the attempt ended without recording its outcome."""
        if self.process is not None:
            from app.jobs_worker import EXIT_FOLDER_LOCKED

            code = self.process.exitcode
            if code == EXIT_FOLDER_LOCKED:
                return True, "another attempt held its job folder"
            return code != 0, f"its worker process ended with exit code {code}"
        if self.outcome == "locked":
            return True, "another attempt held its job folder"
        return self.outcome is None, "its worker thread crashed"


class JobRunner:
    """Starts one worker per claimed attempt, at most `workers` at once.

    The database is the queue: a dispatcher thread claims the oldest queued job
    whenever a slot is free, woken by `notify()` on submission and otherwise
    polling, so jobs submitted to another server process are picked up too. Each
    pass it also reaps ended attempts, stops attempts whose job was deleted (from
    any process), and deletes expired jobs.

    API for whoever owns the process: `start()`, `notify()`, `cancel(job_id)`,
    `sweep()`, `stop(requeue=True)`.
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
        self._attempts: dict[str, _Attempt] = {}
        self._lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None
        self._lock_file: Any = None
        self._last_sweep = float("-inf")
        self._hand_back = False
        self.is_runner = False

    # ---- lifecycle

    def start(self) -> None:
        """Start dispatching (this process runs jobs once it holds `runner.lock`)."""
        self._stop.clear()
        self._hand_back = False
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="raf-job-dispatcher", daemon=True
        )
        self._dispatcher.start()

    def stop(self, requeue: bool = True, timeout: float | None = None) -> None:
        """Stop taking jobs and release the runner lock.

        `requeue=True` (a restart, SIGTERM): running attempts are handed back to
        the queue at once (processes are killed, threads stop at their next chunk)
        and run again on the next start; their start stays counted in `attempts`
        but not as a crash. `requeue=False`: wait for running attempts to finish.
        """
        if not requeue:
            self._stop.set()  # no new claims; the dispatcher keeps the workers' parent alive
            for attempt in self._running():
                attempt.join(timeout)
        self._hand_back = True
        self._stop.set()
        self._wake.set()
        self._hand_back_running()
        for attempt in self._running():
            attempt.join(timeout)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        self._reap()
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
        self.is_runner = False

    def _hand_back_running(self) -> None:
        """Stopping: put every running attempt back in the queue (idempotent)."""
        for attempt in self._running():
            attempt.signals.stop.set()  # a thread re-queues itself at its next chunk
            if attempt.process is not None and attempt.process.is_alive():
                attempt.process.kill()
                attempt.process.join(10)
                if self.store.requeue(attempt.job_id, attempt.attempt):
                    log.info(
                        "job_requeued",
                        job_id=attempt.job_id,
                        attempt=attempt.attempt,
                        reason="runner stopping",
                    )

    def notify(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str) -> bool:
        """Stop this process's attempt of a deleted job now; the folder is freed when it
        has ended. False if the attempt is not running here (its runner finds it)."""
        with self._lock:
            attempt = self._attempts.get(job_id)
        if attempt is None:
            return False
        attempt.kill()
        if attempt.process is not None:
            attempt.process.join(5)
        self._wake.set()
        return True

    def sweep(self) -> list[str]:
        """Delete jobs whose retention has passed (record and files), and folders that
        have no record (an upload cut off by a crash since the start)."""
        expired = self.store.expire(self.settings.retention_hours)
        if expired:
            log.info("jobs_expired", count=len(expired), reason="retention")
        orphans, _ = self.store.clean_folders(temporary_files=False)
        if orphans:
            log.info("job_folders_removed", count=orphans, reason="no job record")
        self._last_sweep = time.monotonic()
        return expired

    def _running(self) -> list[_Attempt]:
        with self._lock:
            return list(self._attempts.values())

    # ---- dispatcher

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
        recovered = self.store.recover(self.settings.max_attempts)
        folders, files = self.store.clean_folders()
        log.info(
            "job_runner_started",
            queued=len(recovered),
            workers=self.settings.workers,
            executor=self.settings.executor,
            orphan_folders_removed=folders,
            temporary_files_removed=files,
        )
        return True

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set() or self._running():
            try:
                if self._try_become_runner():
                    if self._stop.is_set() and self._hand_back:
                        self._hand_back_running()  # one launched while stop() ran
                    self._reap()
                    self._stop_deleted()
                    if not self._stop.is_set():
                        if time.monotonic() - self._last_sweep >= self.settings.sweep_seconds:
                            self.sweep()
                        self._dispatch_ready()
            except Exception as exc:  # noqa: BLE001  (a bad row must not stop the queue)
                log.error(
                    "job_dispatcher_error",
                    exception_type=type(exc).__qualname__,
                    traceback=traceback_without_values(exc),
                )
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()

    def _dispatch_ready(self) -> None:
        while not self._stop.is_set() and len(self._running()) < self.settings.workers:
            claimed = self.store.claim_next()
            if claimed is None:
                return
            try:
                self._launch(*claimed)
            except Exception as exc:  # noqa: BLE001  (the claimed job must not stay "running")
                job_id, attempt = claimed
                reason = "its worker could not be started"
                log.error(
                    "job_worker_died",
                    job_id=job_id,
                    attempt=attempt,
                    reason=reason,
                    exception_type=type(exc).__qualname__,
                    traceback=traceback_without_values(exc),
                )
                self.store.worker_died(job_id, attempt, self.settings.max_attempts, reason)
                return  # try again on the next pass, not in a tight loop

    def _launch(self, job_id: str, attempt_number: int) -> None:
        """Start the worker of one claimed attempt. Called on the dispatcher thread, which is
        the spawned process's parent thread for PR_SET_PDEATHSIG, so it lives as long as
        any worker it started."""
        attempt = _Attempt(job_id, attempt_number)
        if self.settings.executor == "process":
            import multiprocessing
            import multiprocessing.connection

            from app.jobs_worker import WorkerConfig, run_attempt

            config = WorkerConfig(
                data_dir=str(self.store.data_dir),
                job_id=job_id,
                attempt=attempt_number,
                chunk_members=self.settings.chunk_members,
                parent_pid=os.getpid(),
                polars_threads=self.settings.worker_threads,
                niceness=self.settings.worker_niceness,
                log_level=self.settings.log_level,
                lock_wait_seconds=self.settings.lock_wait_seconds,
            )
            context = multiprocessing.get_context("spawn")  # never fork a threaded server
            attempt.process = context.Process(
                target=run_attempt, args=(config,), name=f"raf-job-{job_id[:8]}", daemon=True
            )
            attempt.process.start()
            pid = attempt.process.pid
            sentinel = attempt.process.sentinel
            threading.Thread(  # wakes the dispatcher the moment the worker exits
                target=lambda: (multiprocessing.connection.wait([sentinel]), self._wake.set()),
                name=f"raf-job-watch-{job_id[:8]}",
                daemon=True,
            ).start()
        else:

            def run() -> None:
                try:
                    attempt.outcome = execute_job(
                        str(self.store.data_dir),
                        job_id,
                        self.settings.chunk_members,
                        self.engine,
                        attempt=attempt_number,
                        signals=attempt.signals,
                        lock_wait_seconds=self.settings.lock_wait_seconds,
                        clock=self.store.clock,
                    )
                finally:
                    self._wake.set()

            attempt.thread = threading.Thread(
                target=run, name=f"raf-job-{job_id[:8]}", daemon=True
            )
            pid = os.getpid()
            attempt.thread.start()
        with self._lock:
            self._attempts[job_id] = attempt
        self.store.set_worker_pid(job_id, attempt_number, pid)

    def _reap(self) -> None:
        """Settle attempts that have ended: free a deleted job's folder, and re-queue (or
        fail) a job whose worker ended without recording an outcome."""
        for attempt in self._running():
            if attempt.alive():
                continue
            with self._lock:
                self._attempts.pop(attempt.job_id, None)
            record = self.store.get(attempt.job_id)
            if record is None:
                self.store.remove_files(attempt.job_id)
                log.info(
                    "job_files_removed",
                    job_id=attempt.job_id,
                    attempt=attempt.attempt,
                    reason="job deleted",
                )
                continue
            if record.status != "running" or record.attempts != attempt.attempt:
                continue
            ended, reason = attempt.ended_without_outcome()
            if ended and not self._stop.is_set():
                log.error(
                    "job_worker_died", job_id=attempt.job_id, attempt=attempt.attempt, reason=reason
                )
                self.store.worker_died(
                    attempt.job_id, attempt.attempt, self.settings.max_attempts, reason
                )

    def _stop_deleted(self) -> None:
        """Kill attempts whose job was deleted (perhaps by another server process)."""
        for attempt in self._running():
            if attempt.signals.cancel.is_set() or not attempt.alive():
                continue
            record = self.store.get(attempt.job_id)
            if record is None or record.attempts != attempt.attempt:
                attempt.kill()


class JobService:
    """What the routes need: the store, the runner, the settings, and the engine.

    `engine` is `(score_batch, ReferenceStore)`; None means `batch.default_engine()`.
    """

    def __init__(
        self,
        settings: JobSettings,
        engine: tuple[batch.ScoreBatch, Any] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = JobStore(settings.data_dir, clock=clock)
        self.runner = JobRunner(self.store, settings, engine)

    def reference_store(self) -> Any:
        return (self.engine or batch.default_engine())[1]

    @classmethod
    def from_env(cls) -> JobService:
        return cls(JobSettings.from_env())

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop(requeue=True)

    def owner(self, request: Request[Any, Any, Any]) -> str:
        return tenant_of(request, self.store.owner_secret())

    def owner_of_key(self, api_key: str) -> str:
        return key_fingerprint(api_key, self.store.owner_secret())

    def delete(self, job_id: str, owner: str) -> str | None:
        """Delete a job of this owner; returns the status it had, None if it has none.

        A queued or finished job's folder goes now; a running one's when its attempt
        has stopped (at once here, or on the next pass of the runner holding it)."""
        previous = self.store.delete(job_id, owner)
        if previous is None:
            return None
        if previous == "running":
            self.runner.cancel(job_id)
        else:
            self.store.remove_files(job_id)
        log.info("job_deleted", job_id=job_id, previous_status=previous, reason="client request")
        return previous


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


def provide_owner(state: State, request: Request[Any, Any, Any]) -> str:
    return state.jobs.owner(request)


# --------------------------------------------------------------------------- HTTP shapes


_JOB_ID = doc("The job's id.", "3f1d9a7c0b2e4c58a9d1e6f7a8b9c0d1")
_JOB_STATUS = doc(
    "`queued` (waiting for the runner), `running`, `completed` (result and errors ready) or "
    "`failed` (see `reason`).", "queued", enum=["queued", "running", "completed", "failed"])
_STATUS_URL = doc("Poll this for the job's status.", "/v1/jobs/3f1d9a7c0b2e4c58a9d1e6f7a8b9c0d1")
_RESULT_URL = doc(
    "The scored rows once completed (`?format=csv|json|parquet`).",
    "/v1/jobs/3f1d9a7c0b2e4c58a9d1e6f7a8b9c0d1/result")
_ERRORS_URL = doc(
    "The rejected members once completed, with their input line numbers.",
    "/v1/jobs/3f1d9a7c0b2e4c58a9d1e6f7a8b9c0d1/errors")
_DETAIL_URL = doc(
    "Submitted with `?detail=true`: the audit trail once completed.",
    "/v1/jobs/3f1d9a7c0b2e4c58a9d1e6f7a8b9c0d1/detail")
_WHEN = "UTC, ISO 8601."
_STAMP = "2025-02-22T18:36:00.540933+00:00"


class JobAccepted(msgspec.Struct, omit_defaults=True):
    """`POST /v1/jobs` 202: the job is recorded and queued."""

    job_id: Annotated[str, _JOB_ID]
    status: Annotated[JobStatus, _JOB_STATUS]
    status_url: Annotated[str, _STATUS_URL]
    result_url: Annotated[str, _RESULT_URL]
    errors_url: Annotated[str, _ERRORS_URL]
    detail_url: Annotated[str | None, _DETAIL_URL] = None


class JobProgress(msgspec.Struct):
    """How far a job is."""

    members_done: Annotated[int, doc("Members scored so far.", 50000)]
    members_total: Annotated[int | None, doc(
        "Members in the roster (null until the runner has counted them).", 120000)]


class JobView(msgspec.Struct, omit_defaults=True):
    """`GET /v1/jobs/{job_id}`: status plus what is known at that status."""

    job_id: Annotated[str, _JOB_ID]
    status: Annotated[JobStatus, _JOB_STATUS]
    payment_year: Annotated[int, doc("The payment year scored.", 2025)]
    created_at: Annotated[str, doc(f"When the job was submitted; {_WHEN}", _STAMP)]
    status_url: Annotated[str, _STATUS_URL]
    result_url: Annotated[str, _RESULT_URL]
    errors_url: Annotated[str, _ERRORS_URL]
    detail_url: Annotated[str | None, _DETAIL_URL] = None
    started_at: Annotated[str | None, doc(f"When the current attempt started; {_WHEN}",
                                          _STAMP)] = None
    finished_at: Annotated[str | None, doc(f"When it completed or failed; {_WHEN}", _STAMP)] = None
    expires_at: Annotated[str | None, doc(
        f"When its files and record are deleted (RAF_JOB_RETENTION_HOURS); {_WHEN}",
        _STAMP)] = None
    attempts: Annotated[int, doc(
        "Runs started (a job interrupted by a restart is run again, up to "
        "RAF_JOB_MAX_ATTEMPTS); omitted while 0.", 1)] = 0
    progress: Annotated[JobProgress | None, doc("Running or completed: members done.")] = None
    member_count: Annotated[int | None, doc("Completed: membership rows read.", 120000)] = None
    members_scored: Annotated[int | None, doc("Completed: members scored.", 119990)] = None
    members_rejected: Annotated[int | None, doc(
        "Completed: members rejected (in the errors file).", 10)] = None
    duplicate_rows: Annotated[int | None, doc(
        "Completed: identical repeats of a membership row (scored once).", 0)] = None
    count: Annotated[int | None, doc("Completed: rows in the result.", 359970)] = None
    errors_count: Annotated[int | None, doc("Completed: rows in the errors file.", 10)] = None
    diagnoses_summary: Annotated[dict[str, int] | None, doc(
        "Completed: " + DX_SUMMARY_DOC)] = None
    warnings: Annotated[list[DataWarning] | None, doc(
        "Completed: data-quality warnings about the roster.")] = None
    reference: Annotated[dict[str, Any] | None, doc(
        "Completed: `payment_year`, `release_id` and `sha256` of the reference data used.",
        {"payment_year": 2025, "release_id": "PY2025.1+46d6dadd6971",
         "sha256": "46d6dadd69713bdfab3c805819fea1c5eaf954dae03611dc36357cb0e3992ff7"})] = None
    software: Annotated[dict[str, str] | None, doc(
        "Completed: `version` and `commit` of the software that computed the result.",
        {"version": "0.1.0", "commit": "unknown"})] = None
    reason: Annotated[str | None, doc("Failed: why.", "interrupted by server restart")] = None


class JobList(msgspec.Struct):
    """`GET /v1/jobs`: the caller's jobs, newest first; pass `next_cursor` as `cursor` for
    the next page (null on the last)."""

    jobs: Annotated[list[JobView], doc("This page of jobs, newest first.")]
    next_cursor: Annotated[str | None, doc(
        "Pass as `cursor` for the next page; null on the last.",
        "MjAyNS0wMi0yMlQxODozNjowMHwzZjFk")] = None


class JobDeleted(msgspec.Struct):
    """`DELETE /v1/jobs/{job_id}`: the job is gone."""

    job_id: Annotated[str, _JOB_ID]
    deleted: Annotated[bool, doc("Always true.", True)]
    previous_status: Annotated[JobStatus, doc(
        "Its status when it was cancelled.", "running",
        enum=["queued", "running", "completed", "failed"])]


class TrixssAccepted(msgspec.Struct):
    """`POST /api/risk-assessment` 202 (the shape of the dict the route sends)."""

    id: Annotated[str, doc("The orchestration instance id (= the job id).", "3f1d9a7c0b2e4c58")]
    instanceId: Annotated[str, doc("Same as `id`.", "3f1d9a7c0b2e4c58")]
    statusQueryGetUri: Annotated[str, doc(
        "Absolute URL to poll (also in `Location`).",
        "http://127.0.0.1:8000/api/orchestrators/3f1d9a7c0b2e4c58")]


class TrixssProgress(msgspec.Struct):
    """`customStatus` of an orchestration."""

    members_done: Annotated[int, doc("Members scored so far.", 0)]
    members_total: Annotated[int | None, doc("Members in the request (null until counted).", 2)]


class TrixssStatus(msgspec.Struct):
    """`GET /api/orchestrators/{instance_id}` (the shape of the dict the route sends)."""

    name: Annotated[str, doc("Always `risk-assessment`.", "risk-assessment")]
    instanceId: Annotated[str, doc("The instance id.", "3f1d9a7c0b2e4c58")]
    runtimeStatus: Annotated[str, doc(
        "`Pending`, `Running`, `Completed` or `Failed`.", "Completed",
        enum=["Pending", "Running", "Completed", "Failed"])]
    createdTime: Annotated[str, doc(f"When it was submitted; {_WHEN}", _STAMP)]
    lastUpdatedTime: Annotated[str | None, doc(f"Last status change; {_WHEN}", _STAMP)]
    customStatus: Annotated[TrixssProgress, doc("Progress.")]
    output: Annotated[RiskScoreResponse | str | None, doc(
        "Completed: the POST /v1/risk-scores response for the request; Failed: the reason; "
        "otherwise null.")]


def job_urls(job_id: str, detail: bool = False) -> dict[str, Any]:
    urls: dict[str, Any] = {
        "status_url": f"/v1/jobs/{job_id}",
        "result_url": f"/v1/jobs/{job_id}/result",
        "errors_url": f"/v1/jobs/{job_id}/errors",
    }
    if detail:
        urls["detail_url"] = f"/v1/jobs/{job_id}/detail"
    return urls


def job_view(job: JobRecord, expires_at: str | None = None) -> JobView:
    view = JobView(
        job_id=job.job_id,
        status=job.status,
        payment_year=job.payment_year,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=expires_at,
        attempts=job.attempts,
        **job_urls(job.job_id, bool(job.detail)),
    )
    if job.status == "running":
        view.progress = JobProgress(job.members_done, job.members_total)
    elif job.status == "completed" and job.summary:
        summary = json.loads(job.summary)
        view.progress = JobProgress(summary["member_count"], summary["member_count"])
        view.member_count = summary["member_count"]
        view.members_scored = summary["members_scored"]
        view.members_rejected = summary["members_rejected"]
        view.duplicate_rows = summary.get("duplicate_rows", 0)
        view.warnings = [DataWarning(**w) for w in summary.get("warnings", [])]
        view.count = summary["count"]
        view.errors_count = job.errors_count
        view.diagnoses_summary = summary["diagnoses_summary"]
        view.reference = summary["reference"]
        view.software = summary.get("software")
    elif job.status == "failed":
        view.reason = job.reason
    return view


class JobForm(msgspec.Struct):
    """`POST /v1/jobs` multipart form."""

    payment_year: Annotated[str, doc("Payment year, as text (a form field).", "2025")]
    memberships: Annotated[UploadFile | None, doc(
        "The roster: CSV or Parquet with the membership fields of POST /v1/risk-scores as "
        "columns, or that route's JSON request (then omit `diagnoses`). The type is taken from "
        "the file name's extension or the part's Content-Type. Omit it when sending `mmr`.")] = None
    diagnoses: Annotated[UploadFile | None, doc(
        "CSV or Parquet with columns MemberID, FromDOS, ThruDOS, DxCode.")] = None
    rates: Annotated[UploadFile | None, doc(  # county rate table CSV (engine.finance.RateTable)
        "County rate table CSV: payment_year, county, monthly_rate, source.")] = None
    mmr: Annotated[UploadFile | None, doc(
        "CMS's MMR detail file, instead of `memberships`.")] = None
    cms: Annotated[UploadFile | None, doc(
        "CMS's scores to reconcile against: an MMR, or a MemberID,RiskScore .csv "
        "(GET /v1/jobs/{job_id}/reconciliation).")] = None


# --------------------------------------------------------------------------- submission


class SubmissionError(BadRequest):
    """A rejected submission (400), naming the form field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, [ErrorItem(field=field, message=message)])
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


def _input_error(exc: batch.BatchInputError, directory: Path) -> SubmissionError:
    message = str(exc).replace(str(directory) + os.sep, "")
    prefixes = (("diagnoses", "diagnoses"), ("memberships.mmr", "mmr"), ("cms", "cms"))
    field = next((f for p, f in prefixes if message.startswith(p)), "memberships")
    return SubmissionError(message, field)


def accept_job(
    service: JobService,
    payment_year: Any,
    write_inputs: Callable[[Path], tuple[str, str | None]],
    kind: str = "v1",
    owner: str = "",
    detail: bool = False,
) -> JobRecord:
    """Validate cheaply (year, the files' encoding, header, delimiter and first rows,
    required columns), then record the job for `owner`.

    Runs in a worker thread, holding the new folder's lock (the runner's start-up
    cleanup leaves it alone). Anything wrong is a `SubmissionError` naming the
    field, and the job directory is removed: a rejected submission leaves nothing.
    """
    year = _parse_year(payment_year)
    job_id, directory = service.store.new_job_dir()
    try:
        with folder_lock(directory):
            members_file, diagnoses_file = write_inputs(directory)
            try:
                batch.check_payment_year(service.reference_store(), year)
            except batch.BatchInputError as exc:
                raise SubmissionError(
                    str(exc).replace("--payment-year", "payment_year"), "payment_year"
                ) from exc
            members = directory / members_file
            diagnoses = directory / diagnoses_file if diagnoses_file else None
            try:
                batch.check_roster_files(members, diagnoses)
                source = batch.open_roster(members, diagnoses, year)
                if (cms := _cms_input(directory)) is not None:
                    from app import reconcile

                    reconcile.load_cms(cms, year)
            except batch.BatchInputError as exc:
                raise _input_error(exc, directory) from exc
            if source.embedded_payment_year not in (None, year):
                raise SubmissionError(
                    f"payment_year {year} differs from `payment_year` "
                    f"{source.embedded_payment_year} inside the request",
                    "payment_year",
                )
            record = service.store.create(
                job_id, year, members_file, diagnoses_file, kind=kind, owner=owner, detail=detail
            )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info("job_submitted", job_id=job_id, kind=kind, payment_year=year, detail=detail)
    service.runner.notify()
    return record


def _inputs_from_form(data: JobForm) -> Callable[[Path], tuple[str, str | None]]:
    def write(directory: Path) -> tuple[str, str | None]:
        if (data.memberships is None) == (data.mmr is None):
            raise SubmissionError(
                "memberships: send exactly one of memberships and mmr", "memberships"
            )
        if data.cms is not None:
            csv = Path(data.cms.filename or "").suffix.lower() == ".csv"
            _save_upload(data.cms, directory / CMS_INPUTS[0 if csv else 1])
        if data.rates is not None:
            save_job_rates(data.rates, directory)
        if data.mmr is not None:
            _save_upload(data.mmr, directory / "memberships.mmr")
            diagnoses_name = _upload_name(data.diagnoses, "diagnoses") if data.diagnoses else None
            if data.diagnoses and diagnoses_name:
                _save_upload(data.diagnoses, directory / diagnoses_name)
            return "memberships.mmr", diagnoses_name
        assert data.memberships is not None
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


JOB_RATES_FILE = "rates.csv"


def save_job_rates(upload: UploadFile, directory: Path) -> None:
    """Keep the job's rate table beside its inputs, checked now: a bad table is a 400 naming
    its line, not a job that fails later."""
    from engine.finance import RateTable, RateTableError

    target = directory / JOB_RATES_FILE
    _save_upload(upload, target)
    try:
        RateTable.from_csv(target, label="rates")
    except RateTableError as exc:
        raise SubmissionError(str(exc), "rates") from exc


# --------------------------------------------------------------------------- downloads


def _lists_as_text(frame: pl.LazyFrame) -> pl.LazyFrame:
    schema = frame.collect_schema()
    return frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join("; ")
        for name, dtype in schema.items()
        if isinstance(dtype, pl.List)
    )


def _write_csv(parquet: Path, target: Path) -> None:
    _lists_as_text(pl.scan_parquet(parquet)).sink_csv(target)


def _write_json(parquet: Path, target: Path) -> None:
    """A JSON array of row objects (lists stay lists, as in the API response), streamed:
    polars writes NDJSON, and its newlines between rows become commas block by block."""
    lines = target.with_suffix(".ndjson.partial")  # a temporary file: TEMPORARY_PATTERNS
    pl.scan_parquet(parquet).sink_ndjson(lines)
    try:
        with open(lines, "rb") as source, open(target, "wb") as out:
            out.write(b"[")
            held = b""  # the last byte of the previous block: a trailing newline is not a comma
            while block := source.read(1 << 20):
                data = (held + block).replace(b"\n", b",")  # newlines inside JSON are escaped
                out.write(data[:-1])
                held = data[-1:]
            out.write((b"" if held == b"," else held) + b"]")
    finally:
        lines.unlink(missing_ok=True)


# format → (writer of the twin file from the stored Parquet, media type); None = as stored
DOWNLOAD_FORMATS: dict[str, tuple[Callable[[Path, Path], None] | None, str]] = {
    "csv": (_write_csv, "text/csv"),
    "json": (_write_json, "application/json"),
    "parquet": (None, "application/vnd.apache.parquet"),
}
DownloadFormat = Literal["csv", "json", "parquet"]


@openapi_dataclass
class DownloadOperation(Operation):
    """OpenAPI of the downloads: the file in each `?format=` media type."""

    def __post_init__(self) -> None:
        self.responses = {
            **(self.responses or {}),
            "200": OpenAPIResponse(
                description="The file (`Content-Disposition: attachment`) in the media type of "
                "`?format=`: CSV (default; list columns joined with `; `), a JSON array of row "
                "objects, or Parquet.",
                content={
                    media_type: OpenAPIMediaType(
                        schema=Schema(type="array", items=Schema(type="object"))
                        if media_type == "application/json"
                        else Schema(type="string", content_media_type=media_type)
                    )
                    for _, media_type in DOWNLOAD_FORMATS.values()
                },
            ),
        }


@openapi_dataclass
class TrixssSubmitOperation(Operation):
    """The route reads the raw body (stored as the job's input): document it as the
    POST /v1/risk-scores request it is."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The POST /v1/risk-scores request, scored asynchronously.",
            content={"application/json": OpenAPIMediaType(
                schema=Reference(ref="#/components/schemas/RiskScoreRequest"),
                examples={"seed": Example(summary="The seed request",
                                          value=example("seed_request"))},
            )},
        )


Format = Annotated[DownloadFormat, QueryParameter(
    name="format", description="`csv` (default), `json` or `parquet`.")]
JobId = Annotated[str, PathParameter(description="The job id from POST /v1/jobs.")]
InstanceId = Annotated[str, PathParameter(
    description="The instance id from POST /api/risk-assessment.")]
Detail = Annotated[bool, QueryParameter(
    name="detail", description="Also write the audit trail (GET /v1/jobs/{job_id}/detail).")]
DOWNLOAD_RESPONSES = failure_responses(
    400, 404, 409, _400="`format` is not csv, json or parquet",
    _404="No such job for this key, or (detail) the job was not submitted with ?detail=true",
    _409="The job is queued, running or failed; the message says which",
)


def _twin(parquet: Path, fmt: str) -> Path:
    """The stored Parquet output in another format, made once (streaming) and kept beside it."""
    writer, _ = DOWNLOAD_FORMATS[fmt]
    target = parquet.with_suffix(f".{fmt}")
    if writer is None:
        return parquet
    if not target.is_file():
        staging = target.with_name(f"{target.name}.{uuid.uuid4().hex}.partial")
        try:
            writer(parquet, staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
    return target


def owned_job(jobs: JobService, owner: str, job_id: str) -> JobRecord:
    """The caller's job, or 404: a job of another key is answered exactly like no job."""
    job = jobs.store.get(job_id, owner)
    if job is None:
        raise NotFound(
            f"job {job_id} not found", [ErrorItem(field="job_id", message="no such job")]
        )
    return job


def completed_job(jobs: JobService, owner: str, job_id: str, what: str) -> JobRecord:
    """The caller's completed job: 404 as `owned_job`, 409 (naming `what`) until completed.
    What a route computed from a job's outputs starts with."""
    job = owned_job(jobs, owner, job_id)
    if job.status != "completed":
        raise Conflict(
            f"job {job_id} is {job.status}; its {what} is available once completed "
            f"(poll /v1/jobs/{job_id})",
            [ErrorItem(field="status", message=job.status)],
        )
    return job


def download_part(jobs: JobService, owner: str, job_id: str, part: str, fmt: str) -> File:
    """Serve one stored output of a completed job in the asked format."""
    completed_job(jobs, owner, job_id, part)
    parquet = jobs.store.part_path(job_id, part)
    if not parquet.is_file():
        hint = "; submit with ?detail=true for it" if part == "detail" else ""
        raise NotFound(
            f"job {job_id} has no {part}{hint}", [ErrorItem(field=part, message="not produced")]
        )
    _, media_type = DOWNLOAD_FORMATS[fmt]
    return File(_twin(parquet, fmt), filename=f"{job_id}.{part}.{fmt}", media_type=media_type)


def _encode_cursor(job: JobRecord) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at}|{job.job_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, _, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        _parse_stamp(created_at)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest(
            "cursor: not a cursor from a previous page's next_cursor",
            [ErrorItem(field="cursor", message="not a cursor")],
        ) from exc
    return created_at, job_id


# --------------------------------------------------------------------------- reconciliation


class JobReconciliation(msgspec.Struct):
    """`GET /v1/jobs/{job_id}/reconciliation` as JSON: the summary and one row per member."""

    job_id: Annotated[str, _JOB_ID]
    summary: Annotated[dict[str, Any], doc(
        "Counts exact, within 0.0005 and off by more; mean difference; dollar effect "
        "(docs/mmr.md).")]
    members: Annotated[list[dict[str, Any]], doc(
        "Per member: our active score, CMS's, `Difference`, `Match` and a likely cause.")]


def job_reconciliation(
    jobs: JobService, owner: str, job_id: str, fmt: str
) -> File | JobReconciliation:
    completed_job(jobs, owner, job_id, "reconciliation")
    if not jobs.store.part_path(job_id, "reconciliation").is_file():
        raise NotFound(
            f"job {job_id} has no reconciliation; submit it with a `cms` part (CMS's MMR or a "
            "MemberID,RiskScore CSV)",
            [ErrorItem(field="cms", message="not submitted")],
        )
    if fmt != "json":
        return download_part(jobs, owner, job_id, "reconciliation", fmt)
    summary = json.loads((jobs.store.job_dir(job_id) / RECONCILIATION_SUMMARY).read_text())
    rows = pl.read_parquet(jobs.store.part_path(job_id, "reconciliation")).to_dicts()
    return JobReconciliation(job_id=job_id, summary=summary, members=rows)


# --------------------------------------------------------------------------- routes

_JOB_DEPENDENCIES = {
    "jobs": Provide(provide_jobs, sync_to_thread=False),
    "owner": Provide(provide_owner, sync_to_thread=False),
}


class JobsController(Controller):
    """`/v1/jobs`: submit a roster, list, poll, cancel, download results and errors.

    Every route sees only the caller's jobs (`owner`, from its API key)."""

    path = "/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012
    dependencies = _JOB_DEPENDENCIES

    @post(
        "/",
        status_code=202,
        request_max_body_size=MAX_UPLOAD_BYTES,
        summary="Submit a roster for asynchronous scoring",
        description="Multipart form: `payment_year`, `memberships` (CSV, Parquet, or the JSON "
        "request of POST /v1/risk-scores), `diagnoses` (CSV or Parquet; omit with JSON), "
        "`rates` (optional county rate table CSV: payment_year, county, monthly_rate, source), "
        "`mmr` (CMS's MMR detail file instead of `memberships`), `cms` (CMS's scores to "
        "reconcile against: an MMR, or a MemberID,RiskScore .csv; GET .../reconciliation). "
        "`?detail=true` also writes the audit trail (GET .../detail). The files' encoding, "
        "header, delimiter and first rows are checked before the job is accepted.",
        responses={
            202: ResponseSpec(JobAccepted, description="Recorded and queued; `Location` is the "
                              "status URL", generate_examples=False),
            **failure_responses(
                400, 413, _400="A form field is missing or wrong: payment year not served, file "
                "type not CSV/Parquet/JSON, a required column missing (the field is named)",
                _413="Upload over RAF_JOB_MAX_UPLOAD_BYTES"),
        },
    )
    async def submit(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        data: Annotated[JobForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        detail: Detail = False,
    ) -> Response[JobAccepted]:
        from litestar.concurrency import sync_to_thread

        try:
            record = await sync_to_thread(
                accept_job, jobs, data.payment_year, _inputs_from_form(data), "v1", owner, detail
            )
        finally:
            for upload in (data.memberships, data.diagnoses, data.rates, data.mmr, data.cms):
                if upload is not None:
                    await upload.close()
        accepted = JobAccepted(
            job_id=record.job_id, status=record.status, **job_urls(record.job_id, detail)
        )
        return Response(accepted, status_code=202, headers={"Location": accepted.status_url})

    @get(
        "/",
        summary="The caller's jobs, newest first (cursor-paginated, filter by status)",
        sync_to_thread=True,
        responses=failure_responses(400, _400="`limit` not 1-500, or `cursor` not a cursor"),
    )
    def list_jobs(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        status: Annotated[JobStatus | None, QueryParameter(
            description="Only jobs with this status.")] = None,
        limit: Annotated[int, QueryParameter(description="Jobs per page, 1-500.", ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(
            description="`next_cursor` of the previous page.")] = None,
    ) -> JobList:
        if not 1 <= limit <= 500:
            raise BadRequest(
                f"limit: {limit} is not between 1 and 500",
                [ErrorItem(field="limit", message="between 1 and 500")],
            )
        after = _decode_cursor(cursor) if cursor else None
        records = jobs.store.list_jobs(owner, status, limit + 1, after)
        page = records[:limit]
        retention = jobs.settings.retention_hours
        return JobList(
            jobs=[job_view(job, jobs.store.expires_at(job, retention)) for job in page],
            next_cursor=_encode_cursor(page[-1]) if len(records) > limit else None,
        )

    @get(
        "/{job_id:str}",
        summary="Job status: queued, running (with progress), completed, failed",
        sync_to_thread=True,
        responses=failure_responses(404),
    )
    def status(
        self, jobs: NamedDependency[JobService], owner: NamedDependency[str], job_id: JobId
    ) -> JobView:
        job = owned_job(jobs, owner, job_id)
        return job_view(job, jobs.store.expires_at(job, jobs.settings.retention_hours))

    @delete(
        "/{job_id:str}",
        status_code=200,
        summary="Cancel a queued or running job and delete it with its files",
        description="A running job's worker is stopped within seconds and its folder removed; "
        "the job is then 404.",
        sync_to_thread=True,
        responses=failure_responses(404),
    )
    def cancel(
        self, jobs: NamedDependency[JobService], owner: NamedDependency[str], job_id: JobId
    ) -> JobDeleted:
        previous = jobs.delete(job_id, owner)
        if previous is None:
            owned_job(jobs, owner, job_id)  # raises the 404
        return JobDeleted(job_id=job_id, deleted=True, previous_status=previous)  # type: ignore[arg-type]

    @get(
        "/{job_id:str}/result",
        summary="Scored rows of a completed job (csv, json or parquet)",
        sync_to_thread=True,
        operation_class=DownloadOperation,
        responses=DOWNLOAD_RESPONSES,
    )
    def result(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        job_id: JobId,
        format: Format = "csv",
    ) -> File:
        return download_part(jobs, owner, job_id, "result", format)

    @get(
        "/{job_id:str}/errors",
        summary="Rejected members of a completed job (with input line numbers)",
        sync_to_thread=True,
        operation_class=DownloadOperation,
        responses=DOWNLOAD_RESPONSES,
    )
    def errors(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        job_id: JobId,
        format: Format = "csv",
    ) -> File:
        return download_part(jobs, owner, job_id, "errors", format)

    @get(
        "/{job_id:str}/detail",
        summary="Audit trail of a completed job submitted with ?detail=true",
        sync_to_thread=True,
        operation_class=DownloadOperation,
        responses=DOWNLOAD_RESPONSES,
    )
    def detail(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        job_id: JobId,
        format: Format = "csv",
    ) -> File:
        return download_part(jobs, owner, job_id, "detail", format)

    @get(
        "/{job_id:str}/reconciliation",
        summary="Our active scores against CMS's (job submitted with a `cms` part)",
        description="Per member both scores, `Difference`, `Match` and a likely cause, plus the "
        "summary (exact, within 0.0005, off by more; mean difference). `format=json` (default) "
        "gives the summary and the rows; `csv` and `parquet` give the rows (docs/mmr.md).",
        sync_to_thread=True,
        responses=failure_responses(
            400, 404, 409, _400="`format` is not csv, json or parquet",
            _404="No such job for this key, or it was submitted without a `cms` part",
            _409="The job is queued, running or failed"),
    )
    def reconciliation(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        job_id: JobId,
        format: Format = "json",
    ) -> File | JobReconciliation:
        return job_reconciliation(jobs, owner, job_id, format)


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
    dependencies = _JOB_DEPENDENCIES

    @post(
        "/risk-assessment",
        status_code=202,
        request_max_body_size=MAX_UPLOAD_BYTES,
        summary="Submit a JSON risk-score request asynchronously (Health Trixss shape)",
        operation_class=TrixssSubmitOperation,
        responses={
            202: ResponseSpec(TrixssAccepted, description="Accepted; poll `statusQueryGetUri`",
                              generate_examples=False),
            **failure_responses(400, 413, _400="Body not a JSON object, `payment_year` missing "
                                "or not served, or a request field wrong (named)",
                                _413="Body over RAF_JOB_MAX_UPLOAD_BYTES"),
        },
    )
    async def submit(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        request: Request[Any, Any, Any],
    ) -> Response[Any]:
        from litestar.concurrency import sync_to_thread

        body = await request.body()
        try:
            check_json_depth(body)
            year = msgspec.json.decode(body, type=dict[str, Any]).get("payment_year")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BadRequest(
                f"body is not a JSON object: {exc}", [ErrorItem(field="$", message=str(exc))]
            ) from exc

        def write(directory: Path) -> tuple[str, None]:
            (directory / "memberships.json").write_bytes(body)
            return "memberships.json", None

        if year is None:
            raise SubmissionError("payment_year: required", "payment_year")
        record = await sync_to_thread(accept_job, jobs, year, write, "trixss", owner)
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
        responses={
            200: ResponseSpec(TrixssStatus, description="Completed (output: the response) or "
                              "Failed (output: the reason)", generate_examples=False),
            202: ResponseSpec(TrixssStatus, description="Pending or Running (output: null)",
                              generate_examples=False),
            **failure_responses(404, _404="No such instance for this key"),
        },
    )
    def orchestration(
        self,
        jobs: NamedDependency[JobService],
        owner: NamedDependency[str],
        instance_id: InstanceId,
    ) -> Response[Any]:
        job = jobs.store.get(instance_id, owner)
        if job is None:
            raise NotFound(
                f"instance {instance_id} not found",
                [ErrorItem(field="instanceId", message="no such instance")],
            )
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
    counts = batch.BatchSummary(
        job.payment_year,
        members_rejected=summary.get("members_rejected", 0),
        duplicate_rows=summary.get("duplicate_rows", 0),
    )
    output_head = {
        "status": counts.status,
        "message": batch.summary_message(counts),
        "cache_status": "Cache miss",
        "count": rows.height,
    }
    output_tail = {
        "timestamp": job.finished_at,
        "member_count": summary.get("member_count"),
        "members_scored": summary.get("members_scored"),
        "warnings": summary.get("warnings", []),
        "diagnoses_summary": summary.get("diagnoses_summary"),
        "reference": summary.get("reference"),
        "software": summary.get("software"),
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
