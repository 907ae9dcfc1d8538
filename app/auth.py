"""API-key guard (`docs/api.md` errors table: 401).

When `RAF_API_KEYS` is set, every route under `PROTECTED_PREFIXES` (`/v1/`, and
the jobs module's Health-Trixss-shaped `/api/`) needs header `ApiKey: <key>`
(the seed provider's header) or `Authorization: Bearer <key>`. The guard is
installed app-wide so routes added later are covered by default. Keys are compared
with `hmac.compare_digest` against every configured key (no early exit), so the
time taken does not reveal how much of a key matched or which key it was.
`GET /metrics` is protected the same way unless `RAF_METRICS_PUBLIC=1` (a
Prometheus scraper then needs no key). `/health`, `/ready` and the OpenAPI docs
stay open.

`tenant_of` names the caller for data a key owns (batch jobs): an HMAC-SHA256 of
the presented key under a server secret, so what is stored identifies the key
without being it (a copied database does not yield usable keys, and a keyed hash
cannot be reversed by hashing guessed keys without the secret). With auth off
every caller is the one tenant `""`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

PROTECTED_PREFIXES = ("/v1/", "/api/")
# Here, not in app.metrics: app.jobs (and so every job worker process) imports this
# module, and importing prometheus-client there would give each job worker its own
# set of (zero) multiprocess metric files.
METRICS_PATH = "/metrics"


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    api_key = connection.headers.get("apikey")
    if api_key:
        return api_key.strip()
    authorization = connection.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def key_is_valid(presented: str, configured: tuple[str, ...]) -> bool:
    presented_bytes = presented.encode()
    matched = False
    for key in configured:
        matched |= hmac.compare_digest(presented_bytes, key.encode())
    return matched


def is_protected(path: str, settings: Any) -> bool:
    """Whether the guard asks this path for a key once keys are configured (also what the
    OpenAPI document marks with the security scheme, `app.openapi`)."""
    return path.startswith(PROTECTED_PREFIXES) or (
        path == METRICS_PATH and not settings.metrics_public
    )


def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard; a no-op when no keys are configured."""
    settings = connection.app.state.settings
    if not settings.api_keys or not is_protected(connection.url.path, settings):
        return
    presented = presented_key(connection)
    if presented is None:
        raise NotAuthorizedException(
            "missing API key: send header 'ApiKey: <key>' or 'Authorization: Bearer <key>'"
        )
    if not key_is_valid(presented, settings.api_keys):
        raise NotAuthorizedException("invalid API key")


ANONYMOUS_TENANT = ""


def key_fingerprint(key: str, secret: bytes) -> str:
    """Keyed hash (HMAC-SHA256, hex) of an API key: stored instead of the key."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def tenant_of(connection: ASGIConnection[Any, Any, Any, Any], secret: bytes) -> str:
    """The owner id of what this caller creates and may see: the fingerprint of its key
    when keys are configured (the guard has already checked the key), else one tenant."""
    settings = connection.app.state.get("settings")
    if not getattr(settings, "api_keys", None):
        return ANONYMOUS_TENANT
    presented = presented_key(connection)
    return ANONYMOUS_TENANT if presented is None else key_fingerprint(presented, secret)
