"""Errors of the HTTP contract (`docs/api.md` "Errors") and their handlers.

| case | status | raised by |
|---|---|---|
| body not JSON / not an object / missing or mistyped field (field path in the message) | 400 | `request_error_from_msgspec` |
| `payment_year` not supported | 400 | `UnsupportedPaymentYear` from the store |
| API keys configured, key missing or wrong | 401 | `app.auth.require_api_key` |
| a job that does not exist or belongs to another key | 404 | `NotFound` (`app.jobs`) |
| a job's output asked for before it is ready | 409 | `Conflict` (`app.jobs`) |
| body nested deeper than 64 levels | 400 naming `$`, before the decoder recurses | `app.json_depth` via `decode_request` |
| multipart text field not valid in its charset (UTF-8) | 400 naming the field | `form_decoding_error_handler` |
| body over `RAF_MAX_BODY_BYTES`, more than `RAF_MAX_MEMBERS` members | 413, limit in the message | Litestar's body limit / `app.controllers` |
| anything unexpected | 500 with the request id | `internal_error_handler` (traceback logged, no values) |

Every non-200 body is `{"status": "failure", "message": ..., "errors": [...],
"request_id": ...}` (`app.wire.FailureResponse`), with the same id in
`X-Request-ID`. Per-member problems are not errors here: they come back with
200 "partial" (see `app.service`).
"""

from __future__ import annotations

import re
import traceback
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from app.json_depth import JsonTooDeep
from app.logs import REQUEST_ID_HEADER, request_id_of_scope
from app.wire import ErrorItem, FailureResponse

log = structlog.get_logger("app.errors")


class ApiError(Exception):
    """An answer other than 200, in the contract's failure shape."""

    status_code: int = HTTP_400_BAD_REQUEST

    def __init__(self, message: str, errors: list[ErrorItem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(ApiError):
    status_code = HTTP_400_BAD_REQUEST


class PayloadTooLarge(ApiError):
    status_code = HTTP_413_REQUEST_ENTITY_TOO_LARGE


class NotFound(ApiError):
    status_code = HTTP_404_NOT_FOUND


class Conflict(ApiError):
    status_code = HTTP_409_CONFLICT


_PATH_IN_MESSAGE = re.compile(r" - at `(?P<path>[^`]+)`$")


def request_error_from_msgspec(exc: msgspec.MsgspecError) -> BadRequest:
    """400 from a strict decode failure, naming the field path (`$.memberships[0].DOB`)."""
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        match = _PATH_IN_MESSAGE.search(text)
        path = match.group("path") if match else "$"
        problem = text[: match.start()] if match else text
        if path == "$" and problem.startswith("Expected `object`"):
            message = f"request body must be a JSON object: {problem}"
        else:
            message = f"{path}: {problem}"
        return BadRequest(message, [ErrorItem(field=path, message=problem)])
    if isinstance(exc, JsonTooDeep):
        return BadRequest(f"request body: {text}", [ErrorItem(field="$", message=text)])
    return BadRequest(
        f"request body is not valid JSON: {text}", [ErrorItem(field="$", message=text)]
    )


def request_id_of(request: Request[Any, Any, Any]) -> str:
    return request_id_of_scope(request.scope)


def failure(
    request: Request[Any, Any, Any],
    status_code: int,
    message: str,
    errors: list[ErrorItem],
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """The one error envelope, with the request id in the body and in `X-Request-ID`
    (also for 404/405 on unknown routes, which no route middleware sees)."""
    request_id = request_id_of(request)
    body = FailureResponse(status="failure", message=message, errors=errors, request_id=request_id)
    return Response(
        content=msgspec.json.encode(body),
        status_code=status_code,
        media_type=MediaType.JSON,
        headers={**(headers or {}), REQUEST_ID_HEADER: request_id},
    )


def api_error_handler(request: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    log.info("request_rejected", status_code=exc.status_code, error=type(exc).__name__)
    return failure(request, exc.status_code, exc.message, exc.errors)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own HTTP errors (401 from the guard, 404, 405, body limit) in our shape."""
    status_code = exc.status_code
    if status_code >= HTTP_500_INTERNAL_SERVER_ERROR:
        return internal_error_handler(request, exc)
    message = exc.detail or "request rejected"
    errors = [
        ErrorItem(field=str(item.get("key", "$")), message=str(item.get("message", "")))
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    ]
    if status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        settings = request.app.state.get("settings")
        limit = request.route_handler.resolve_request_max_body_size() or settings.max_body_bytes
        setting = "RAF_MAX_BODY_BYTES" if limit == settings.max_body_bytes else "the route's limit"
        message = (
            f"request body exceeds the limit of {limit} bytes ({setting}); "
            "split the batch or use POST /v1/jobs"
        )
    # keep Litestar's headers: `Allow` on 405 (RFC 9110), `WWW-Authenticate`-style hints
    return failure(request, status_code, message, errors, headers=dict(exc.headers or {}))


def _multipart_field(exc: BaseException) -> str | None:
    """The form field Litestar's multipart parser was decoding when `exc` was raised,
    or None when `exc` did not come from that parser.

    Litestar decodes every text field with the part's charset (default UTF-8) and
    lets `UnicodeDecodeError` (or `LookupError` for an unknown charset) escape; the
    field name is only in the parser's frame, so it is read from the traceback.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if (
            frame.f_code.co_name == "parse_multipart_form"
            and frame.f_globals.get("__name__") == "litestar._multipart"
        ):
            return str(getattr(frame.f_locals.get("segment"), "name", None) or "multipart form")
        tb = tb.tb_next
    return None


def form_decoding_error_handler(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError | LookupError
) -> Response[bytes]:
    """400 naming the form field whose bytes are not text in its charset; any other
    `UnicodeDecodeError`/`LookupError` is a bug and stays a 500."""
    field = _multipart_field(exc)
    if field is None:
        return internal_error_handler(request, exc)
    if isinstance(exc, UnicodeDecodeError):
        problem = (
            f"not valid {exc.encoding} text (byte 0x{exc.object[exc.start]:02x} at "
            f"position {exc.start}); send form text fields as UTF-8"
        )
    else:
        problem = f"unknown charset ({exc}); send form text fields as UTF-8"
    log.info("request_rejected", status_code=HTTP_400_BAD_REQUEST, error="form_field_encoding")
    return failure(
        request,
        HTTP_400_BAD_REQUEST,
        f"{field}: {problem}",
        [ErrorItem(field=field, message=problem)],
    )


def traceback_without_values(exc: BaseException) -> list[str]:
    """Frames (file, line, function, source line) and exception types only.

    Exception messages can carry member data (a polars error quoting a value),
    so they are left out of the log; the type and the frames locate the bug.
    """
    lines: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        current = current.__cause__ or current.__context__
    return lines


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """500 with the request id; the traceback goes to the log, member data does not."""
    request_id = request_id_of(request)
    log.error(
        "unhandled_exception",
        path=request.url.path,
        exception_type=type(exc).__qualname__,
        traceback=traceback_without_values(exc),
    )
    return failure(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        f"internal error; quote request id {request_id} when reporting it",
        [],
    )


def exception_handlers() -> dict[type[Exception], Any]:
    """The handlers every app serving our routes installs (`app.main`, the jobs tests)."""
    return {
        ApiError: api_error_handler,
        HTTPException: http_exception_handler,
        UnicodeDecodeError: form_decoding_error_handler,
        LookupError: form_decoding_error_handler,
        Exception: internal_error_handler,
    }
