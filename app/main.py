"""The Litestar application: `create_app(settings=None) -> Litestar`.

* lifespan: builds the `ReferenceStore` once (`RAF_REFERENCE_DIR` or the
  bundled data) and parses every supported payment year before the first
  request -- or, under `raf serve` (`serving=True`), on a background thread
  while `/ready` says 503 (`app.lifecycle`); the member cache is built with the
  app (`RAF_CACHE_SIZE`, `..._TTL_SECONDS`), one per process;
* operations: `/health` (liveness), `/ready` (readiness, `app.lifecycle`),
  `/metrics` (Prometheus, `app.metrics`); under `raf serve` SIGTERM drains
  (`RAF_SHUTDOWN_DRAIN_SECONDS`, then uvicorn's graceful shutdown);
* dependencies: `store`, `cache`, `settings`, `score_batch` (engine.run), read
  from `app.state` so tests can pass fakes to `create_app`;
* exception handlers: the contract's error table (`app.errors`);
* OpenAPI at `/schema/openapi.json`, Swagger UI at `/schema` and `/schema/swagger`,
  ReDoc at `/schema/redoc`, all from vendored assets (`app.openapi`);
* structlog JSON logs with a request id (`app.logs`).
Batch jobs (`app.jobs`: `/v1/jobs`, and `/api/...` in the seed provider's
asynchronous shape) are mounted with their runner's lifespan unless
`enable_jobs=False`. The API-key guard is app-wide (`app.auth`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from app.auth import require_api_key
from app.cache import MemberCache
from app.controllers import ReferenceController, RiskScoreController, health
from app.errors import exception_handlers
from app.lifecycle import CutOffMiddleware, Lifecycle, ready, slowed_for_tests
from app.logs import RequestIdMiddleware, configure_logging
from app.metrics import MetricsMiddleware, count_unrouted, metrics, worker_exited
from app.openapi import docs_assets_routers, openapi_config
from app.service import ScoreBatch
from app.settings import Settings
from app.software import software


def _provide_store(state: State) -> Any:
    return state.store


def _provide_cache(state: State) -> MemberCache:
    return state.cache


def _provide_settings(state: State) -> Settings:
    return state.settings


def _provide_score_batch(state: State) -> ScoreBatch:
    return state.score_batch


def _provide_rates(state: State) -> Any:
    return state.rates


def configured_rates(settings: Settings) -> Any:
    """The `RAF_RATES` table, or None; a table that cannot be used stops the start-up
    (`SettingsError` naming the file and row), never a silently unpriced roster."""
    if not settings.rates_path:
        return None
    from app.settings import SettingsError
    from engine.finance import RateTable, RateTableError

    try:
        return RateTable.from_csv(settings.rates_path)
    except RateTableError as exc:
        raise SettingsError(f"RAF_RATES={settings.rates_path}: {exc}") from exc


def job_route_handlers() -> list[Any]:
    """Every controller of job routes (the jobs tests mount exactly these)."""
    from app import jobs
    from app.job_reports import JobFinanceController

    return [jobs.JobsController, JobFinanceController, jobs.TrixssJobsController]


def _jobs_parts() -> tuple[list[Any], list[Any]]:
    """(route handlers, lifespans) of the batch-jobs module."""
    from app import jobs

    return job_route_handlers(), [jobs.jobs_lifespan]


def create_app(
    settings: Settings | None = None,
    *,
    store: Any = None,
    score_batch: ScoreBatch | None = None,
    enable_jobs: bool = True,
    serving: bool = False,
) -> Litestar:
    """Build the app. `store`/`score_batch` default to the real ones (tests pass fakes).

    `serving`: the app runs in a `raf serve` process (`create_served_app`): load the
    reference years in the background and drain on SIGTERM (`app.lifecycle`).
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    software()  # the version and commit every answer names, read once at start-up
    lifecycle = Lifecycle(jobs_enabled=enable_jobs)

    @asynccontextmanager
    async def process_signals(app: Litestar) -> AsyncIterator[None]:
        lifecycle.drain_on_signals(settings.shutdown_drain_seconds)
        try:
            yield
        finally:
            worker_exited()

    @asynccontextmanager
    async def reference_data(app: Litestar) -> AsyncIterator[None]:
        if app.state.get("store") is None:
            from reference.store import ReferenceStore

            app.state.store = ReferenceStore(settings.reference_dir)
        if serving:
            lifecycle.load_reference_in_background(app.state.store)
        else:
            lifecycle.load_reference(app.state.store)
        yield

    @asynccontextmanager
    async def job_runner_state(app: Litestar) -> AsyncIterator[None]:
        lifecycle.job_runner = "up"  # the jobs lifespan before this one has started it
        try:
            yield
        finally:
            lifecycle.job_runner = "stopped"

    if score_batch is None:
        from engine.run import score_batch as engine_score_batch

        score_batch = engine_score_batch
    score_batch = slowed_for_tests(score_batch)

    job_handlers, job_lifespans = _jobs_parts() if enable_jobs else ([], [])
    if enable_jobs:
        job_lifespans.append(job_runner_state)
    return Litestar(
        route_handlers=[
            RiskScoreController,
            ReferenceController,
            health,
            ready,
            metrics,
            *job_handlers,
            *docs_assets_routers(),
        ],
        state=State(
            {
                "settings": settings,
                "store": store,
                "cache": MemberCache(settings.cache_size, settings.cache_ttl_seconds),
                "score_batch": score_batch,
                "rates": configured_rates(settings),
                "lifecycle": lifecycle,
            }
        ),
        dependencies={
            "store": Provide(_provide_store, sync_to_thread=False),
            "cache": Provide(_provide_cache, sync_to_thread=False),
            "settings": Provide(_provide_settings, sync_to_thread=False),
            "score_batch": Provide(_provide_score_batch, sync_to_thread=False),
            # not "rates": Litestar reports a form field named like a dependency (the jobs
            # form's `rates` upload) that fails validation as a 500, not a 400
            "rate_table": Provide(_provide_rates, sync_to_thread=False),
        },
        lifespan=[*([process_signals] if serving else []), reference_data, *job_lifespans],
        guards=[require_api_key],
        middleware=[RequestIdMiddleware(), MetricsMiddleware(), CutOffMiddleware()],
        before_send=[count_unrouted],
        exception_handlers=exception_handlers(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        logging_config=None,  # app.logs configures structlog + stdlib JSON logging
        debug=False,
    )


def create_served_app() -> Litestar:
    """The uvicorn factory of `raf serve` (`app.server`), called once in each worker."""
    return create_app(serving=True)
