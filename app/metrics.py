"""Prometheus metrics: `GET /metrics` in the text exposition format (prometheus-client).

Labels are route templates (`/v1/jobs/{job_id}`), methods, status codes,
diagnosis reasons, job statuses and reference release ids: never a MemberID,
a code, a job id or anything else a request carries.

Every metric, with what it means and example queries: `docs/operations.md`
"Metrics". Request metrics come from `MetricsMiddleware` (route templates) and
`count_unrouted` (404/405 of no route); scoring metrics from `observe_scoring`,
called by the `POST /v1/risk-scores` handler; job, reference and readiness
gauges are read at scrape time (`_StateCollector`).

Several workers (`raf serve --workers N`): `app.server` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the workers start, so
each worker writes its values to its own memory-mapped files and whichever
worker answers `/metrics` adds them all up (prometheus-client's multiprocess
mode): counters and histograms are summed, `raf_http_requests_in_progress`
is summed over live workers, `raf_cache_entries` is one series per live worker
(`pid` label). The job gauges are read from the jobs database at scrape time;
the reference and readiness gauges are the answering worker's (every worker
loads the same `RAF_REFERENCE_DIR`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.auth import METRICS_PATH

# text exposition format 0.0.4, what every Prometheus scrapes; Litestar adds the charset
MEDIA_TYPE = "text/plain; version=0.0.4"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
JOB_STATUSES = ("queued", "running", "completed", "failed")

disable_created_metrics()  # no `*_created` twin of every series: Prometheus does not read them

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUESTS = Counter(
    "raf_http_requests", "HTTP responses by route template and status", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "raf_http_request_duration_seconds",
    "HTTP request duration by route template",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "raf_http_requests_in_progress",
    "HTTP requests being answered",
    ["method", "route"],
    multiprocess_mode="livesum",
)
WORKER_REQUESTS = Counter(
    "raf_worker_http_requests", "HTTP responses per server process", ["pid"]
)
MEMBERS = Counter("raf_members", "memberships received by POST /v1/risk-scores")
MEMBERS_SCORED = Counter("raf_members_scored", "members scored by POST /v1/risk-scores")
MEMBER_ERRORS = Counter("raf_member_errors", "members rejected (listed in `errors`)")
RESULT_ROWS = Counter("raf_result_rows", "result rows returned by POST /v1/risk-scores")
DIAGNOSES = Counter("raf_diagnoses", "diagnoses by diagnoses_summary reason", ["reason"])
CACHE_HITS = Counter("raf_cache_hits", "members answered from the member cache")
CACHE_MISSES = Counter("raf_cache_misses", "members scored by the engine (cache misses)")
CACHE_ENTRIES = Gauge(
    "raf_cache_entries",
    "members held in this worker's cache (expired ones until evicted)",
    multiprocess_mode="liveall",
)
ENGINE_SECONDS = Histogram(
    "raf_engine_seconds",
    "engine time of a POST /v1/risk-scores with cache misses",
    buckets=_LATENCY_BUCKETS,
)


def observe_scoring(stats: Any, diagnoses_summary: Mapping[str, int], cache_entries: int) -> None:
    """Count one answered `POST /v1/risk-scores` (`app.service.ScoringStats`)."""
    MEMBERS.inc(stats.member_count)
    MEMBERS_SCORED.inc(max(stats.member_count - stats.error_count, 0))
    MEMBER_ERRORS.inc(stats.error_count)
    RESULT_ROWS.inc(stats.row_count)
    CACHE_HITS.inc(stats.cache_hits)
    CACHE_MISSES.inc(stats.cache_misses)
    CACHE_ENTRIES.set(cache_entries)
    if stats.cache_misses:
        ENGINE_SECONDS.observe(stats.engine_ms / 1000)
    for reason, count in diagnoses_summary.items():
        if count:
            DIAGNOSES.labels(reason).inc(count)


def _count_response(method: str, route: str, status: int | None) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    WORKER_REQUESTS.labels(str(os.getpid())).inc()


class MetricsMiddleware(ASGIMiddleware):
    """Times and counts every routed request under its route template.

    Litestar runs app middleware after routing, so requests for no route
    (404, 405) never reach it: `count_unrouted` (a `before_send` hook) counts those.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = scope.get("method", "")
        route = scope.get("path_template") or UNMATCHED_ROUTE
        status: dict[str, int | None] = {"code": None}

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        in_progress = HTTP_IN_PROGRESS.labels(method, route)
        in_progress.inc()
        started = time.perf_counter()
        try:
            await next_app(scope, receive, send_counted)
        finally:
            in_progress.dec()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
            _count_response(method, route, status["code"] or 500)


async def count_unrouted(message: Message, scope: Scope) -> None:
    """`before_send` hook: count the responses of requests no route matched.

    `async` on purpose: Litestar runs a sync hook in a worker thread for every message
    sent (measured: +120 us CPU on a cached one-member request)."""
    if message["type"] == "http.response.start" and not scope.get("path_template"):
        _count_response(scope.get("method", ""), UNMATCHED_ROUTE, message["status"])


# --------------------------------------------------------------------------- scrape


# Read once, at import, like prometheus-client itself picks its value store at import.
MULTIPROCESS_DIR = os.environ.get(MULTIPROC_ENV) or None


def worker_exited() -> None:
    """Drop this process's live gauges (in-progress, cache entries) from the multiprocess sums."""
    if MULTIPROCESS_DIR:
        mark_process_dead(os.getpid(), MULTIPROCESS_DIR)


class _StateCollector:
    """Read at scrape time: jobs by status (from the database every worker shares), and the
    answering worker's reference release and readiness."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        lifecycle = self.state.get("lifecycle")
        store = self.state.get("store")
        if lifecycle is not None:
            yield GaugeMetricFamily(
                "raf_ready", "1 when this worker's /ready answers 200",
                value=1 if lifecycle.status == "ready" else 0,
            )
            if lifecycle.reference_load_seconds is not None:
                yield GaugeMetricFamily(
                    "raf_reference_load_seconds",
                    "time this worker took to parse the reference years",
                    value=lifecycle.reference_load_seconds,
                )
        if store is not None and lifecycle is not None and lifecycle.reference_loaded.is_set():
            releases = GaugeMetricFamily(
                "raf_reference_release_info",
                "reference release loaded per payment year (value 1)",
                labels=["payment_year", "release_id", "sha256"],
            )
            for payment_year in store.supported_years:
                tables = store.year(payment_year)
                releases.add_metric(
                    [str(payment_year), str(getattr(tables, "release_id", "") or ""),
                     str(getattr(tables, "sha256", "") or "")],
                    1,
                )
            yield releases

    def _jobs(self) -> Iterator[Metric]:
        jobs = self.state.get("jobs")
        db_path = getattr(getattr(jobs, "store", None), "db_path", None)
        if db_path is None or not Path(db_path).is_file():
            return
        counts = dict.fromkeys(JOB_STATUSES, 0)
        with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as conn:
            counts.update(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"))
        family = GaugeMetricFamily(
            "raf_jobs", "jobs in RAF_DATA_DIR by status", labels=["status"]
        )
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family
        yield GaugeMetricFamily("raf_job_queue_depth", "jobs queued", value=counts["queued"])


class _Scrape:
    """What `generate_latest` collects: the process (or multiprocess) registry, then state."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def render(state: State) -> bytes:
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry = REGISTRY
    return generate_latest(_Scrape(registry, _StateCollector(state)))  # type: ignore[arg-type]


@get(
    METRICS_PATH,
    tags=["operations"],
    summary="Prometheus metrics (text exposition format 0.0.4)",
    description="Counts and timings only, no member data. Needs an API key like `/v1/*` when "
    "`RAF_API_KEYS` is set, unless `RAF_METRICS_PUBLIC=1`. See docs/operations.md.",
    media_type=MEDIA_TYPE,
    sync_to_thread=True,  # reads the jobs database
)
def metrics(state: State) -> Response[bytes]:
    return Response(render(state), media_type=MEDIA_TYPE)
