"""The Litestar application: `create_app(settings=None) -> Litestar`.

* lifespan: builds the `ReferenceStore` once (`RAF_REFERENCE_DIR` or the
  bundled data) and parses every supported payment year before the first
  request; the member cache is built with the app (`RAF_CACHE_SIZE`, `..._TTL_SECONDS`);
* dependencies: `store`, `cache`, `settings`, `score_batch` (engine.run), read
  from `app.state` so tests can pass fakes to `create_app`;
* exception handlers: the contract's error table (`app.errors`);
* OpenAPI at `/schema` (Swagger UI at `/schema/swagger`, also `/schema/redoc`);
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
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from app.auth import require_api_key
from app.cache import MemberCache
from app.controllers import ReferenceController, RiskScoreController, health
from app.errors import exception_handlers
from app.logs import RequestIdMiddleware, configure_logging
from app.service import ScoreBatch
from app.settings import Settings


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


def _jobs_parts() -> tuple[list[Any], list[Any]]:
    """(route handlers, lifespans) of the batch-jobs module."""
    from app import jobs
    from app.job_reports import JobFinanceController

    return [
        jobs.JobsController,
        JobFinanceController,
        jobs.TrixssJobsController,
    ], [jobs.jobs_lifespan]


def create_app(
    settings: Settings | None = None,
    *,
    store: Any = None,
    score_batch: ScoreBatch | None = None,
    enable_jobs: bool = True,
) -> Litestar:
    """Build the app. `store`/`score_batch` default to the real ones (tests pass fakes)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def reference_data(app: Litestar) -> AsyncIterator[None]:
        if app.state.get("store") is None:
            from reference.store import ReferenceStore

            app.state.store = ReferenceStore(settings.reference_dir)
        for payment_year in app.state.store.supported_years:
            app.state.store.year(payment_year)  # parse every year now, not on a request
        yield

    if score_batch is None:
        from engine.run import score_batch as engine_score_batch

        score_batch = engine_score_batch

    job_handlers, job_lifespans = _jobs_parts() if enable_jobs else ([], [])
    return Litestar(
        route_handlers=[RiskScoreController, ReferenceController, health, *job_handlers],
        state=State(
            {
                "settings": settings,
                "store": store,
                "cache": MemberCache(settings.cache_size, settings.cache_ttl_seconds),
                "score_batch": score_batch,
                "rates": configured_rates(settings),
            }
        ),
        dependencies={
            "store": Provide(_provide_store, sync_to_thread=False),
            "cache": Provide(_provide_cache, sync_to_thread=False),
            "settings": Provide(_provide_settings, sync_to_thread=False),
            "score_batch": Provide(_provide_score_batch, sync_to_thread=False),
            "rates": Provide(_provide_rates, sync_to_thread=False),
        },
        lifespan=[reference_data, *job_lifespans],
        guards=[require_api_key],
        middleware=[RequestIdMiddleware()],
        exception_handlers=exception_handlers(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="raf-service",
            version="1",
            description="CMS-HCC V24/V28 and ESRD V24 risk scores, drop-in for the seed's "
            "RAF calculator API (see docs/ARCHITECTURE.md and the HTTP contract).",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), RedocRenderPlugin()],
        ),
        logging_config=None,  # app.logs configures structlog + stdlib JSON logging
        debug=False,
    )
