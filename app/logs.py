"""Structured JSON logs (structlog) and the request-id middleware.

`docs/api.md`: structured JSON logs with request id, member count,
row count, cache hits, duration; no member data (IDs, DOBs, codes) at INFO.
So the events here carry counts, paths, status codes and timings only; the
request id (the client's `X-Request-ID` when it is a short token, else a new
UUID) is bound to every event of the request and echoed in the response header.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _CurrentStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is now (test capture swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stdout for structlog and stdlib loggers (jobs, uvicorn); idempotent.

    Litestar's own logging config is off (`logging_config=None` in `app.main`):
    errors reach the log through `app.errors.internal_error_handler`.
    """
    numeric_level = logging.getLevelName(level)
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            # ExtraAdder: stdlib calls' `extra={...}` fields become JSON keys, not lost
            foreign_pre_chain=[
                *_SHARED_PROCESSORS,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _CurrentStdoutHandler)]
    root.addHandler(handler)
    root.setLevel(numeric_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # test client chatter


access_log = structlog.get_logger("app.access")


def request_id_of_scope(scope: Scope) -> str:
    """The request's id, assigned on first use: the client's `X-Request-ID` when it is a
    short token, else a new UUID. Kept in the scope state, so the middleware, the error
    handlers and the logs agree. Error handlers call it too: Litestar answers an unknown
    route or method (404/405) before any route middleware runs."""
    state = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if request_id is None:
        sent = dict(scope.get("headers") or [])
        client_id = sent.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = client_id if _CLIENT_REQUEST_ID.match(client_id) else uuid.uuid4().hex
        state["request_id"] = request_id
    return request_id


class RequestIdMiddleware(ASGIMiddleware):
    """Assign a request id, bind it to the log context, log one access line."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = request_id_of_scope(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "http_request",
                method=scope.get("method"),
                path=scope.get("path"),
                status_code=status["code"],
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            structlog.contextvars.clear_contextvars()
