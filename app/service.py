"""POST /v1/risk-scores behind the controller: cache lookups, one engine call, the response.

Flow (`../shared/spec/api.md`):

1. the payment year must be one the reference store supports (else 400);
2. each member gets a cache key (`app.cache`); hits are answered from the cache;
3. all misses go through `engine.run.score_batch` in one call, with their own
   diagnoses; the fresh answers are cached per member;
4. the response lists members in request order (raw rows then the active row
   each), member errors, the diagnoses summary (per-member counts, cached or
   fresh, plus diagnoses naming no member of the request as `unknown_member`),
   the reference version and the cache counts.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import polars as pl

from app.cache import CachedMember, MemberCache, MemberKey
from app.errors import BadRequest
from app.wire import (
    CacheCounts,
    ErrorItem,
    ReferenceInfo,
    ResultRow,
    RiskScoreRequest,
    RiskScoreResponse,
)
from engine.run import DX_SUMMARY_KEYS
from reference.store import UnsupportedPaymentYear

ScoreBatch = Callable[..., Any]

MEMBERSHIP_FIELDS = ("MemberID", "DOB", "Gender", "RAType", "Hospice", "LTIMCAID", "NEMCAID", "OREC")
DIAGNOSIS_FIELDS = ("MemberID", "FromDOS", "ThruDOS", "DxCode")
SUCCESS_MESSAGE = "Data processed successfully"


@dataclass(frozen=True)
class ScoringStats:
    """What the request log line says (counts only, never member data)."""

    member_count: int
    row_count: int
    error_count: int
    cache_hits: int
    cache_misses: int
    engine_ms: float


def supported_year_tables(store: Any, payment_year: int) -> Any:
    """The year's tables, or a 400 naming `payment_year` with the supported years."""
    try:
        return store.year(payment_year)
    except UnsupportedPaymentYear as exc:
        raise BadRequest(
            f"$.payment_year: {exc}", [ErrorItem(field="$.payment_year", message=str(exc))]
        ) from exc


def _membership_values(member: Any) -> tuple[str | None, ...]:
    """The eight membership fields as sent (Struct field order = MEMBERSHIP_FIELDS)."""
    return msgspec.structs.astuple(member)


def score_request(
    request: RiskScoreRequest,
    *,
    detail: bool,
    store: Any,
    cache: MemberCache,
    score_batch: ScoreBatch,
) -> tuple[RiskScoreResponse, ScoringStats]:
    """Answer one decoded request (see the module docstring for the flow)."""
    tables = supported_year_tables(store, request.payment_year)
    release_id = getattr(tables, "release_id", None)
    memberships = request.memberships

    diagnoses_by_member: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for dx in request.diagnoses:
        diagnoses_by_member[dx.MemberID].append((dx.DxCode, dx.FromDOS, dx.ThruDOS))
    id_counts = Counter(m.MemberID for m in memberships)

    keys: list[MemberKey | None] = [
        None
        if id_counts[m.MemberID] > 1
        else (
            request.payment_year,
            release_id,
            _membership_values(m),
            tuple(sorted(diagnoses_by_member.get(m.MemberID, ()))),
            detail,
        )
        for m in memberships
    ]
    answers: list[CachedMember | None] = cache.get_many(keys)
    misses = [i for i, answer in enumerate(answers) if answer is None]
    hits = len(memberships) - len(misses)

    engine_started = time.perf_counter()
    reference = {"payment_year": request.payment_year, "release_id": release_id,
                 "sha256": getattr(tables, "sha256", None)}
    unattributed: dict[str, int] = {}
    if misses:
        fresh, reference, unattributed = _score_misses(
            request, misses, detail, store, score_batch
        )
        for i, answer in fresh.items():
            answers[i] = answer
        cache.put_many((keys[i], fresh[i]) for i in misses if keys[i] is not None)
    engine_ms = (time.perf_counter() - engine_started) * 1000

    results: list[ResultRow] = []
    errors: list[ErrorItem] = []
    summary = dict.fromkeys(DX_SUMMARY_KEYS, 0)
    for answer in answers:
        if answer is None:  # an identical repeat of an earlier membership row: scored once
            continue
        results.extend(answer.rows)
        if answer.error is not None:
            errors.append(answer.error)
        for reason, count in answer.dx_counts:
            summary[reason] = summary.get(reason, 0) + count
    for reason, count in unattributed.items():
        summary[reason] = summary.get(reason, 0) + count
    summary["unknown_member"] += sum(
        len(dxs) for member_id, dxs in diagnoses_by_member.items() if member_id not in id_counts
    )

    response = RiskScoreResponse(
        status="partial" if errors else "success",
        message=SUCCESS_MESSAGE
        if not errors
        else f"Data processed; {len(errors)} of {len(memberships)} members could not be scored "
        "(see errors)",
        cache_status="Cache hit" if memberships and not misses else "Cache miss",
        count=len(results),
        results=results,
        timestamp=datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds"),
        member_count=len(memberships),
        errors=errors,
        diagnoses_summary=summary,
        reference=msgspec.convert(reference, ReferenceInfo),
        cache=CacheCounts(hits=hits, misses=len(misses)),
    )
    stats = ScoringStats(
        member_count=len(memberships),
        row_count=len(results),
        error_count=len(errors),
        cache_hits=hits,
        cache_misses=len(misses),
        engine_ms=round(engine_ms, 3),
    )
    return response, stats


def _score_misses(
    request: RiskScoreRequest,
    misses: list[int],
    detail: bool,
    store: Any,
    score_batch: ScoreBatch,
) -> tuple[dict[int, CachedMember], dict[str, Any], dict[str, int]]:
    """One engine call for every cache miss; answers keyed by the member's request position.

    Also returns the diagnosis counts the engine could not attribute to a member
    (see `engine.run.dx_counts_of`): they count in this response only.
    """
    miss_members = [request.memberships[i] for i in misses]
    miss_ids = {m.MemberID for m in miss_members}
    memberships = pl.DataFrame(
        {
            "input_index": misses,
            **{f: [getattr(m, f) for m in miss_members] for f in MEMBERSHIP_FIELDS},
        },
        schema={"input_index": pl.UInt32, **{f: pl.String for f in MEMBERSHIP_FIELDS}},
    )
    dx_positions = [i for i, dx in enumerate(request.diagnoses) if dx.MemberID in miss_ids]
    diagnoses = pl.DataFrame(
        {
            "input_index": dx_positions,
            **{f: [getattr(request.diagnoses[i], f) for i in dx_positions]
               for f in DIAGNOSIS_FIELDS},
        },
        schema={"input_index": pl.UInt32, **{f: pl.String for f in DIAGNOSIS_FIELDS}},
    )
    result = score_batch(memberships, diagnoses, request.payment_year, store, detail=detail)

    rows_by_index: dict[int, list[ResultRow]] = defaultdict(list)
    if result.rows.height:
        indices = result.rows["input_index"].to_list()
        for index, row in zip(indices, result_rows(result.rows)):
            rows_by_index[index].append(row)
    errors_by_index = {
        e["input_index"]: ErrorItem(field=e["field"], message=e["message"], MemberID=e["MemberID"])
        for e in result.errors.iter_rows(named=True)
    }
    dx_by_member, unattributed = _dx_counts_by_member(result)

    answers: dict[int, CachedMember] = {}
    counted_ids: set[str] = set()
    for i in misses:
        if i not in rows_by_index and i not in errors_by_index:
            continue  # a repeated identical membership row, answered under its first copy
        member_id = request.memberships[i].MemberID
        dx_counts: tuple[tuple[str, int], ...] = ()
        if member_id not in counted_ids:
            counted_ids.add(member_id)
            dx_counts = dx_by_member.get(member_id, ())
        answers[i] = CachedMember(
            rows=tuple(rows_by_index.get(i, ())),
            error=errors_by_index.get(i),
            dx_counts=dx_counts,
        )
    return answers, dict(result.reference or {}), unattributed


_ROW_FIELDS = ResultRow.__struct_fields__
_FLAT_ROW_FIELDS = _ROW_FIELDS[: _ROW_FIELDS.index("Warnings") + 1]


def result_rows(rows: pl.DataFrame) -> list[ResultRow]:
    """`BatchResult.rows` -> wire rows.

    Flat rows (no detail) are built positionally from tuples, which is about
    twice as fast as dicts + `msgspec.convert`; that is only done when the
    frame's columns are exactly the Struct's fields in order (else a column
    would land in the wrong field). Detail rows (nested lists of structs) go
    through `msgspec.convert`, which also validates them.
    """
    frame = _wire_ready(rows).drop("input_index")
    if tuple(frame.columns) == _FLAT_ROW_FIELDS:
        return [ResultRow(*values) for values in frame.iter_rows()]
    return msgspec.convert(frame.to_dicts(), list[ResultRow])


def _wire_ready(rows: pl.DataFrame) -> pl.DataFrame:
    """Empty `Warnings` lists become null so the wire omits the field."""
    if "Warnings" in rows.columns:
        rows = rows.with_columns(
            pl.when(pl.col("Warnings").list.len() > 0).then(pl.col("Warnings")).alias("Warnings")
        )
    return rows


def _dx_counts_by_member(
    result: Any,
) -> tuple[dict[str, tuple[tuple[str, int], ...]], dict[str, int]]:
    """(MemberID -> ((reason, count), ...), counts with no MemberID) from `dx_counts`."""
    counts = getattr(result, "dx_counts", None)
    if not isinstance(counts, pl.DataFrame):
        return {}, dict(getattr(result, "dx_summary", None) or {})
    unattributed = {
        reason: int(count)
        for reason, count in counts.filter(pl.col("MemberID").is_null())
        .group_by("reason")
        .agg(pl.col("count").sum())
        .iter_rows()
    }
    grouped = (
        counts.filter(pl.col("MemberID").is_not_null())
        .group_by("MemberID", "reason")
        .agg(pl.col("count").sum())
        .sort("MemberID", "reason")
    )
    by_member: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for member_id, reason, count in grouped.iter_rows():
        by_member[member_id].append((reason, int(count)))
    return {member_id: tuple(pairs) for member_id, pairs in by_member.items()}, unattributed
