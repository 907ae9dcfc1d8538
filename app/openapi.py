"""The OpenAPI document and its docs pages, served by the service itself (no CDN).

* Pages: Swagger UI at `/schema` and `/schema/swagger`, ReDoc at
  `/schema/redoc`, the document at `/schema/openapi.json`. Their scripts,
  styles and icon are the npm packages vendored in `app/docs_assets/`
  (versions, licences and hashes in `VENDORED.json`), served under
  `/schema/assets/`; no font or script is fetched from the internet
  (`tests/browser/test_docs_pages.py` loads both pages with the network cut).
* Field documentation lives on the wire Structs (`app.wire.doc`); the seed's
  request and its response are the examples (`app/examples/`).
* Route-specific failures are declared on each route with `failure_responses`;
  what holds for every route is added when the document is first served
  (`finish_document`): the payment years of the reference store as the
  `payment_year` enum, the `ApiKey` / bearer security scheme and a 401 on
  every route the guard protects (`app.auth.is_protected`), a 500 on every
  route, and the error envelope (`FailureResponse`) in place of Litestar's
  `{status_code, detail}` wherever a route did not declare its own.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Example, SecurityScheme, Tag
from litestar.static_files import create_static_files_router

from app.auth import is_protected
from app.docs_assets.vendor import HERE as ASSETS_DIR
from app.docs_assets.vendor import PACKAGES
from app.wire import FailureResponse

OPENAPI_PATH = "/schema"
ASSETS_PATH = f"{OPENAPI_PATH}/assets"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
FAILURE_REF = "#/components/schemas/FailureResponse"
SECURITY_SCHEMES = {
    "ApiKey": SecurityScheme(
        type="apiKey",
        name="ApiKey",
        security_scheme_in="header",
        description="One of the keys in RAF_API_KEYS, in header `ApiKey` (the seed "
        "provider's header). Needed only when the service is started with RAF_API_KEYS.",
    ),
    "Bearer": SecurityScheme(
        type="http",
        scheme="bearer",
        description="The same key as `Authorization: Bearer <key>`.",
    ),
}
DESCRIPTION = """\
Medicare Advantage risk scores: raw CMS-HCC V24 and V28 and ESRD V24 rows per
member, and the blended, normalized, coding-adjusted active row CMS pays on.
A drop-in for the Health Trixss RAF calculator API (same request, same rows,
same field names), with the extensions described on each field.

The HTTP contract with its error table is `docs/api.md` in the repository; the
scoring rules, payment years and parameters with their sources are
`docs/scoring.md`. Every answer other than 2xx has the shape of
`FailureResponse`: `{"status": "failure", "message", "errors": [{field, message}]}`.
"""
TAGS = [
    Tag(name="risk scores", description="Score a batch of members in one request."),
    Tag(name="jobs", description="Rosters too big for one request: submit, poll, download."),
    Tag(name="reference", description="Payment years, models and parameters served."),
    Tag(name="health", description="Liveness."),
]


@cache
def example(name: str) -> Any:
    """`app/examples/<name>.json`: the seed's request (`seed_request`) and our answer to it
    (`seed_response`, the seed's six rows)."""
    return json.loads((EXAMPLES_DIR / f"{name}.json").read_text())


FAILURE_EXAMPLES: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("A field is missing, mistyped or not allowed (its path is named)", {
        "status": "failure",
        "message": "$.memberships[0].DOB: Expected `str`, got `int`",
        "errors": [{"field": "$.memberships[0].DOB", "message": "Expected `str`, got `int`"}],
        "request_id": "0f9c2a51d7e84b6c9a3e5d1f2b4c6a80",
    }),
    401: ("API keys are configured and the key is missing or wrong", {
        "status": "failure",
        "message": "missing API key: send header 'ApiKey: <key>' or 'Authorization: Bearer <key>'",
        "errors": [],
        "request_id": "0f9c2a51d7e84b6c9a3e5d1f2b4c6a80",
    }),
    404: ("No such job", {
        "status": "failure",
        "message": "job 3f1d9a7c0b2e4c58 not found",
        "errors": [{"field": "job_id", "message": "no such job"}],
        "request_id": "0f9c2a51d7e84b6c9a3e5d1f2b4c6a80",
    }),
    409: ("The job has not completed yet", {
        "status": "failure",
        "message": "job 3f1d9a7c0b2e4c58 is running; its result is available once completed "
        "(poll /v1/jobs/3f1d9a7c0b2e4c58)",
        "errors": [{"field": "status", "message": "running"}],
        "request_id": "0f9c2a51d7e84b6c9a3e5d1f2b4c6a80",
    }),
    413: ("Body or member count over the configured limit (named in the message)", {
        "status": "failure",
        "message": "60000 memberships exceed the limit of 50000 members per request "
        "(RAF_MAX_MEMBERS); split the batch or use POST /v1/jobs",
        "errors": [],
        "request_id": "0f9c2a51d7e84b6c9a3e5d1f2b4c6a80",
    }),
    500: ("Unexpected error; the log has the traceback (never member data)", {
        "status": "failure",
        "message": "internal error; quote request id 0f9c2a51d7e84b6c9a3e5d1f2b4c6a80 when "
        "reporting it",
        "errors": [],
        "request_id": "0f9c2a51d7e84b6c9a3e5d1f2b4c6a80",
    }),
}


def failure_responses(*codes: int, **descriptions: str) -> dict[int, ResponseSpec]:
    """`responses=` for a route: the error envelope for each status code it can send.

    `descriptions` override the default text per code (`_400="..."`). 401 and 500
    need not be listed: `finish_document` adds them where they apply."""
    responses = {}
    for code in codes:
        default, value = FAILURE_EXAMPLES[code]
        responses[code] = ResponseSpec(
            FailureResponse,
            description=descriptions.get(f"_{code}", default),
            examples=[Example(summary=default, value=value)],
            generate_examples=False,
        )
    return responses


# --------------------------------------------------------------------------- pages


def _asset(directory: str, name: str) -> str:
    return f"{ASSETS_PATH}/{directory}/{name}"


_FAVICON = f"<link rel='icon' type='image/png' href='{_asset('swagger-ui', 'favicon-32x32.png')}'>"


# The pages may load only what this service serves: a script of a vendored bundle that
# reaches for the internet (ReDoc's "API docs by Redocly" logo on cdn.redoc.ly) is
# stopped by the browser before any request is made. Inline scripts and styles are the
# pages' own (Litestar's templates and the bundles' styled components).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'"
)
_CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'


class _FinishedDocument:
    """Render plugins that finish the document (`finish_document`) before the first render."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        finish_document(request.app, openapi_schema)
        return super().render(request, openapi_schema)  # type: ignore[misc]


class _OfflinePage(_FinishedDocument):
    """An HTML docs page that declares the Content-Security-Policy above."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        html = super().render(request, openapi_schema)
        return html.replace(b"<head>", b"<head>" + _CSP_META.encode(), 1)


class SwaggerPage(_OfflinePage, SwaggerRenderPlugin):
    pass


class RedocPage(_OfflinePage, RedocRenderPlugin):
    pass


class JsonDocument(_FinishedDocument, JsonRenderPlugin):
    pass


def render_plugins() -> list[Any]:
    return [
        SwaggerPage(
            version=PACKAGES["swagger-ui"][1],
            js_url=_asset("swagger-ui", "swagger-ui-bundle.js"),
            css_url=_asset("swagger-ui", "swagger-ui.css"),
            standalone_preset_js_url=_asset("swagger-ui", "swagger-ui-standalone-preset.js"),
            path="/swagger",
            favicon=_FAVICON,
        ),
        RedocPage(
            version=PACKAGES["redoc"][1],
            js_url=_asset("redoc", "redoc.standalone.js"),
            google_fonts=False,
            path="/redoc",
            favicon=_FAVICON,
        ),
        JsonDocument(path="/openapi.json"),
    ]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="raf-service",
        version="1",
        description=DESCRIPTION,
        path=OPENAPI_PATH,
        render_plugins=render_plugins(),
        components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        tags=TAGS,
    )


def docs_assets_routers() -> list[Router]:
    """The vendored scripts and styles, one static router per package directory."""
    return [
        create_static_files_router(
            path=f"{ASSETS_PATH}/{directory}",
            directories=[ASSETS_DIR / directory],
            name=f"docs-assets-{directory}",
            cache_control=CacheControlHeader(max_age=86_400),
            include_in_schema=False,
        )
        for directory in PACKAGES
    ]


# --------------------------------------------------------------------------- finishing


def finish_document(app: Any, document: dict[str, Any]) -> None:
    """Complete the served document once (it is cached by Litestar and shared by every page)."""
    if app.state.get("openapi_finished"):
        return
    store = app.state.get("store")
    years = sorted(store.supported_years) if store is not None else []
    settings = app.state.get("settings")
    add_payment_years(document, years)
    add_security(document, settings)
    add_failure_envelopes(document)
    app.state.openapi_finished = True


def add_payment_years(document: dict[str, Any], years: list[int]) -> None:
    """`payment_year` (request body and job form) is one of the years the store serves."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("RiskScoreRequest", "JobForm"):
        prop = schemas.get(name, {}).get("properties", {}).get("payment_year")
        if prop is None or not years:
            continue
        prop["enum"] = [str(y) for y in years] if prop.get("type") == "string" else list(years)
        prop["description"] = (
            prop.get("description", "") + f" Served: {', '.join(map(str, years))}."
        ).strip()


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return [
        (path, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in methods
    ]


def _failure_response(code: int) -> dict[str, Any]:
    description, value = FAILURE_EXAMPLES[code]
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": FAILURE_REF}, "examples": {
            "failure": {"summary": description, "value": value}}}},
    }


def add_security(document: dict[str, Any], settings: Any) -> None:
    """`ApiKey` or bearer on the guarded routes, with their 401. Without RAF_API_KEYS the
    guard lets everyone in, which the empty requirement `{}` says."""
    requirement: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
    if settings is None or not settings.api_keys:
        requirement.append({})
    for path, operation in _operations(document):
        if settings is None or not is_protected(path, settings):
            continue
        operation["security"] = requirement
        operation.setdefault("responses", {}).setdefault("401", _failure_response(401))


def _litestar_default_error(schema: dict[str, Any]) -> bool:
    """Litestar's own `{status_code, detail, extra}` schema (or a oneOf of them)."""
    shapes = schema.get("oneOf", [schema])
    return any({"status_code", "detail"} <= set(s.get("properties", {})) for s in shapes)


def add_failure_envelopes(document: dict[str, Any]) -> None:
    """A 500 on every route; Litestar's default error schema replaced by the envelope the
    service really sends (a route's own declared error body is left alone)."""
    for _, operation in _operations(document):
        responses = operation.setdefault("responses", {})
        responses.setdefault("500", _failure_response(500))
        for code, response in list(responses.items()):
            if code[0] not in "45":
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if _litestar_default_error(schema):
                default = _failure_response(int(code) if int(code) in FAILURE_EXAMPLES else 400)
                responses[code] = {**default, "description": response.get("description")
                                   or default["description"]}
