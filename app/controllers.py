"""HTTP routes: `POST /v1/risk-scores`, `GET /v1/reference`, `GET /health`.

Contract: `docs/api.md`. The request body is decoded straight from
bytes by `StrictRequestDTO` (msgspec, strict types) so every 400 names the
field path; responses are `app.wire` Structs that Litestar encodes with msgspec.
The reference store, the member cache, the settings and the scoring function
are injected (`app.main` dependencies), which is also how tests swap them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import structlog
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.dto import MsgspecDTO
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, QueryParameter
from litestar.typing import FieldDefinition

from app import metrics
from app.cache import MemberCache
from app.errors import PayloadTooLarge, request_error_from_msgspec
from app.openapi import example, failure_responses
from app.service import ScoreBatch, score_request
from app.settings import Settings
from app.software import software
from app.wire import (
    HealthResponse,
    ParameterValue,
    PaymentYearReference,
    ReferenceResponse,
    RiskScoreRequest,
    RiskScoreResponse,
    decode_request,
)

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference, Schema

log = structlog.get_logger("app.requests")

SCORE_RESPONSES: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        RiskScoreResponse,
        description="Every member scored (`success`) or some listed in `errors` (`partial`)",
        examples=[Example(summary="The seed request's six rows", value=example("seed_response"))],
        generate_examples=False,
    ),
    **failure_responses(
        400,
        413,
        _400="Body not JSON or not an object, a missing or mistyped field (its path in the "
        "message), a `payment_year` not served, or a query parameter that is not a boolean",
        _413="Body over RAF_MAX_BODY_BYTES or more members than RAF_MAX_MEMBERS (the limit is "
        "in the message; use POST /v1/jobs)",
    ),
}
ScoreRequestBody = Annotated[
    RiskScoreRequest,
    Body(
        media_type=RequestEncodingType.JSON,
        description="Members and their diagnoses for one payment year (the seed's request).",
        examples=[Example(summary="The seed request", value=example("seed_request"))],
    ),
]
Detail = Annotated[bool, QueryParameter(
    name="detail",
    description="Add the audit trail to each raw row: HCCs with the codes behind them, "
    "hierarchy drops, interactions, and every diagnosis not used with its reason.",
    examples=[Example(value=True)],
)]
Summary = Annotated[bool, QueryParameter(
    name="summary",
    description="Add the roster `summary` (members, average scores and payments).",
    examples=[Example(value=True)],
)]


class StrictRequestDTO(MsgspecDTO[RiskScoreRequest]):
    """Decodes the body with `app.wire.decode_request` (strict msgspec) instead of
    Litestar's lax conversion; the OpenAPI schema still comes from the Struct."""

    def decode_bytes(self, value: bytes) -> Any:
        try:
            return decode_request(value)
        except msgspec.MsgspecError as exc:
            raise request_error_from_msgspec(exc) from exc

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        """Document the Struct itself (component `RiskScoreRequest`), not a transfer model."""
        return schema_creator.for_field_definition(
            FieldDefinition.from_annotation(
                RiskScoreRequest, kwarg_definition=field_definition.kwarg_definition
            )
        )


class RiskScoreController(Controller):
    path = "/v1/risk-scores"
    tags = ("risk scores",)

    @post(
        dto=StrictRequestDTO,
        return_dto=None,
        status_code=200,
        sync_to_thread=True,
        summary="Score a batch of members",
        description="Per member: one raw row per model of the payment year (V28 first), then the "
        "active (blended, normalized, coding-adjusted) row. `?detail=true` adds the audit trail "
        "to raw rows. Members that cannot be scored are listed in `errors` (status `partial`). "
        "Finance: members with `Enrollment_Months` (or `Enrollment_Start`/`Enrollment_End`), "
        "`Monthly_Rate` or `County` (priced by the request's `rates` or the configured "
        "`RAF_RATES` table) get `Enrollment_Months`, `Monthly_Rate`, `Rate_Source`, "
        "`MA_Payment_Monthly` and `MA_Payment` on the active row (`MA_Payment_Detail` with "
        "`?detail=true`). `?summary=true` adds the roster `summary`.",
        responses=SCORE_RESPONSES,
    )
    def score(
        self,
        data: ScoreRequestBody,
        store: NamedDependency[Any],
        cache: NamedDependency[MemberCache],
        score_batch: NamedDependency[ScoreBatch],
        settings: NamedDependency[Settings],
        rate_table: NamedDependency[Any],
        detail: Detail = False,
        summary: Summary = False,
    ) -> RiskScoreResponse:
        if len(data.memberships) > settings.max_members:
            raise PayloadTooLarge(
                f"{len(data.memberships)} memberships exceed the limit of {settings.max_members} "
                "members per request (RAF_MAX_MEMBERS); split the batch or use POST /v1/jobs"
            )
        started = time.perf_counter()
        response, stats = score_request(
            data,
            detail=detail,
            store=store,
            cache=cache,
            score_batch=score_batch,
            rates=rate_table,
            summary=summary,
            thresholds=settings.warning_thresholds,
        )
        log.info(
            "risk_scores",
            payment_year=data.payment_year,
            detail=detail,
            member_count=stats.member_count,
            diagnosis_count=len(data.diagnoses),
            row_count=stats.row_count,
            error_count=stats.error_count,
            cache_hits=stats.cache_hits,
            cache_misses=stats.cache_misses,
            engine_ms=stats.engine_ms,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        metrics.observe_scoring(stats, response.diagnoses_summary, cache.entry_count())
        return response


class ReferenceController(Controller):
    path = "/v1/reference"
    tags = ("reference",)

    @get(
        summary="Supported payment years and their parameters",
        description="Per payment year: the models scored, blend weights, normalization factors "
        "and the coding adjustment, each value with its source and status, and the SHA-256 of "
        "every reference file of the year.",
        sync_to_thread=False,  # years are loaded by the lifespan: no I/O here
    )
    def reference(self, store: NamedDependency[Any]) -> ReferenceResponse:
        return reference_response(store)


def reference_response(store: Any) -> ReferenceResponse:
    """Every supported year: models, weights, factors, coding adjustment (with
    each value's source and status) and the year's file hashes."""
    manifest = store.manifest
    file_hashes = {entry["path"]: entry["sha256"] for entry in manifest.get("files", [])}
    years = []
    for payment_year in store.supported_years:
        tables = store.year(payment_year)
        params = tables.parameters
        factors = [
            ("blend_weight", model, factor) for model, factor in params.blend_weights.items()
        ] + [
            ("normalization_factor", key, factor) for key, factor in params.normalization.items()
        ] + [("coding_adjustment", "ALL", params.coding_adjustment)]
        # every parameter, each with its status (cms, corroborated, single-source, missing,
        # operator)
        years.append(
            PaymentYearReference(
                payment_year=payment_year,
                release_id=tables.release_id,
                sha256=tables.sha256,
                models=list(tables.models_of_year),
                mapping=manifest.get("payment_years", {}).get(str(payment_year), {}).get("mapping"),
                blend_weights={m: _text(f.value) for m, f in params.blend_weights.items()},
                normalization_factors={k: _text(f.value) for k, f in params.normalization.items()},
                coding_adjustment=_text(params.coding_adjustment.value),
                parameters=[
                    ParameterValue(parameter=name, model=model, value=_text(factor.value),
                                   status=factor.status, source=factor.source)
                    for name, model, factor in factors
                ],
                files={path: file_hashes.get(path, "") for path in tables.files},
                warnings=list(getattr(tables, "warnings", ())),
            )
        )
    return ReferenceResponse(
        supported_payment_years=list(store.supported_years), payment_years=years,
        software=software(),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@get(
    "/health",
    tags=["health"],
    summary="Liveness",
    description="Answers while the process serves; lists the payment years served. Never "
    "needs an API key.",
    sync_to_thread=False,
)
def health(store: NamedDependency[Any]) -> HealthResponse:
    return HealthResponse(status="ok", payment_years=list(store.supported_years))
