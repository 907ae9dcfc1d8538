"""A server process's lifecycle: reference data loading, readiness, draining on SIGTERM.

States (`GET /ready`, `docs/operations.md`):

| state | /ready | when |
|---|---|---|
| `starting` | 503 | the reference years are being parsed, or the job runner has not started |
| `ready` | 200 | every supported year is loaded and the job runner is up (or jobs are off) |
| `draining` | 503 | SIGTERM (or SIGINT) received: finishing in-flight requests |
| `failed` | 503 | loading the reference data raised; the reason is in the body and the log |

`/health` is liveness and answers 200 in every state.

Under `raf serve` (`create_app(serving=True)`) the lifespan constructs the
`ReferenceStore` (the manifest only) and parses the years on a background
thread, so uvicorn is already listening while they load and `/ready` can say
503; a request that needs a year meanwhile waits for it (`ReferenceStore.year`
is locked per store). In-process apps (tests, `TestClient`) load before the
first request, as before.

Draining: uvicorn stops accepting as soon as it sees the signal. With
`RAF_SHUTDOWN_DRAIN_SECONDS` > 0 the signal is held back that long while
`/ready` answers 503, so a load balancer polling `/ready` takes the process out
of rotation before its listener closes; then uvicorn finishes the in-flight
requests (up to `RAF_SHUTDOWN_GRACE_SECONDS`) and the lifespans shut down (the
job runner hands its running jobs back to the queue). A request still running
when the grace period ends is cancelled by uvicorn; `CutOffMiddleware` answers
it 503 (retry it elsewhere) rather than uvicorn's bare 500.

Test hooks (never set them in production): `RAF_TEST_REFERENCE_LOAD_DELAY_SECONDS`
sleeps before the years are parsed and `RAF_TEST_SCORE_DELAY_SECONDS` before
each engine call, so process-level tests can catch a server while it loads or
while a request is in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import structlog
from litestar import Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.fielddoc import doc
from app.wire import FailureResponse

log = structlog.get_logger("app.lifecycle")

LOAD_DELAY_ENV = "RAF_TEST_REFERENCE_LOAD_DELAY_SECONDS"
SCORE_DELAY_ENV = "RAF_TEST_SCORE_DELAY_SECONDS"

ReadyStatus = Literal["starting", "ready", "draining", "failed"]
JobRunnerState = Literal["off", "starting", "up", "stopped"]


def _seconds_from_env(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else 0.0


class Lifecycle:
    """What `/ready` reports; one per app, in `app.state.lifecycle`. Thread-safe flags only."""

    def __init__(self, jobs_enabled: bool) -> None:
        self.reference_loaded = threading.Event()
        self.reference_error: str | None = None
        self.reference_load_seconds: float | None = None
        self.job_runner: JobRunnerState = "starting" if jobs_enabled else "off"
        self.draining = threading.Event()

    @property
    def status(self) -> ReadyStatus:
        if self.reference_error is not None:
            return "failed"
        if self.draining.is_set():
            return "draining"
        if not self.reference_loaded.is_set() or self.job_runner not in ("up", "off"):
            return "starting"
        return "ready"

    def load_reference(self, store: Any) -> None:
        """Parse every supported year now, not on a request; record how long it took."""
        started = time.perf_counter()
        delay = _seconds_from_env(LOAD_DELAY_ENV)
        if delay:
            time.sleep(delay)
        for payment_year in store.supported_years:
            store.year(payment_year)
        self.reference_load_seconds = time.perf_counter() - started
        self.reference_loaded.set()
        log.info(
            "reference_loaded",
            payment_years=list(store.supported_years),
            seconds=round(self.reference_load_seconds, 3),
        )

    def load_reference_in_background(self, store: Any) -> threading.Thread:
        def load() -> None:
            try:
                self.load_reference(store)
            except Exception as exc:  # /ready says failed; the worker stays up to say it
                self.reference_error = f"reference data failed to load: {type(exc).__name__}: {exc}"
                log.exception("reference_load_failed")

        thread = threading.Thread(target=load, name="raf-reference-load", daemon=True)
        thread.start()
        return thread

    def drain_on_signals(self, drain_seconds: float) -> None:
        """Wrap the server's SIGTERM/SIGINT handlers (uvicorn's, installed before the lifespan
        runs): mark the process draining first, and for SIGTERM hand the signal on only
        after `drain_seconds`. Must run on the main thread; a no-op elsewhere."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue  # no server handler to hand the signal to
            signal.signal(signum, self._drain_handler(previous, drain_seconds))

    def _drain_handler(
        self, previous: Callable[[int, Any], Any], drain_seconds: float
    ) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            first = not self.draining.is_set()
            self.draining.set()
            if first:  # logged off the handler: it may have interrupted a write to stdout
                threading.Thread(
                    target=log.warning,
                    args=("draining",),
                    kwargs={"signal": signal.Signals(signum).name, "drain_seconds": drain_seconds},
                    daemon=True,
                ).start()
            if first and drain_seconds > 0 and signum == signal.SIGTERM:
                timer = threading.Timer(drain_seconds, previous, (signum, None))
                timer.daemon = True
                timer.start()
            else:
                previous(signum, frame)

        return handler


def slowed_for_tests(score_batch: Callable[..., Any]) -> Callable[..., Any]:
    """`score_batch` that first sleeps `RAF_TEST_SCORE_DELAY_SECONDS` (test hook), or as is."""
    delay = _seconds_from_env(SCORE_DELAY_ENV)
    if not delay:
        return score_batch

    def slow_score_batch(*args: Any, **kwargs: Any) -> Any:
        time.sleep(delay)
        return score_batch(*args, **kwargs)

    return slow_score_batch


CUT_OFF_MESSAGE = (
    "the server shut down before this request finished (RAF_SHUTDOWN_GRACE_SECONDS); send it again"
)


class CutOffMiddleware(ASGIMiddleware):
    """503 for a request uvicorn cancels because the shutdown grace period ran out.

    Only while draining and before the response started: uvicorn cancels a
    request task for nothing else (a client that disconnects is told through
    `receive`), and a started response cannot change its status.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await next_app(scope, receive, send_tracked)
        except asyncio.CancelledError:
            lifecycle = scope["app"].state.get("lifecycle")
            if started or lifecycle is None or not lifecycle.draining.is_set():
                raise
            log.warning("request_cut_off", path=scope.get("path"))
            await send({
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                            (b"connection", b"close")],
            })
            body = FailureResponse(
                status="failure",
                message=CUT_OFF_MESSAGE,
                errors=[],
                request_id=scope.get("state", {}).get("request_id"),
            )
            await send({"type": "http.response.body", "body": msgspec.json.encode(body)})


class ReadyResponse(msgspec.Struct, omit_defaults=True):
    """`GET /ready`: whether this process takes traffic."""

    status: Annotated[ReadyStatus, doc(
        "`ready` (200), or `starting`, `draining`, `failed` (503).", "ready",
        enum=["starting", "ready", "draining", "failed"])]
    reference_loaded: Annotated[bool, doc("Every payment year's tables are loaded.", True)]
    job_runner: Annotated[JobRunnerState, doc(
        "`off` (jobs not mounted), `starting`, `up` or `stopped`.", "up",
        enum=["off", "starting", "up", "stopped"])]
    reason: Annotated[str | None, doc(
        "Why not ready (e.g. the reference data failed to load).",
        "draining after SIGTERM")] = None


@get(
    "/ready",
    tags=["operations"],
    summary="Readiness: 200 once the reference data is loaded and the job runner is up",
    description="503 while starting, while draining after SIGTERM, or when the reference data "
    "failed to load (`reason`). Never needs an API key. `/health` is liveness.",
    sync_to_thread=False,
    responses={
        503: ResponseSpec(ReadyResponse, description="starting, draining or failed (`status`)")
    },
)
def ready(state: State) -> Response[ReadyResponse]:
    lifecycle: Lifecycle = state.lifecycle
    status = lifecycle.status
    body = ReadyResponse(
        status=status,
        reference_loaded=lifecycle.reference_loaded.is_set(),
        job_runner=lifecycle.job_runner,
        reason=lifecycle.reference_error,
    )
    return Response(body, status_code=200 if status == "ready" else 503)
