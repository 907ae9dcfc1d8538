"""POST /v1/risk-scores behind the controller: cache lookups, one engine call, the response.

Flow (`docs/api.md`):

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from operator import attrgetter
from typing import Any

import msgspec
import polars as pl

from app.cache import CachedMember, MemberCache, MemberKey
from app.errors import BadRequest
from app.quality import WarningThresholds, diagnosis_warnings, thru_year_counts
from app.software import software
from app.summary import RosterSummary, summary_of_rows
from app.wire import (
    CacheCounts,
    DataWarning,
    Diagnosis,
    ErrorItem,
    Membership,
    ReferenceInfo,
    ResultRow,
    RiskScoreRequest,
    RiskScoreResponse,
)
from engine.finance import FINANCE_FIELDS, RateTable, RateTableError
from engine.run import DIAGNOSIS_FIELDS, DX_SUMMARY_KEYS, MEMBERSHIP_FIELDS, reference_info
from reference.store import UnsupportedPaymentYear

ScoreBatch = Callable[..., Any]

SUCCESS_MESSAGE = "Data processed successfully"
SUMMARY_ROW_SCHEMA = {
    "Member_Id": pl.String,
    "RAType": pl.String,
    "RA_Variable": pl.String,
    "Clinical_Version": pl.String,
    "RAF_Total": pl.Float64,
    "Active_Score": pl.Int8,
    "Enrollment_Months": pl.Int64,
    "MA_Payment": pl.Float64,
    "Warnings": pl.List(pl.String),
}
SUMMARY_ROW_COLUMNS = tuple(SUMMARY_ROW_SCHEMA)
DEFAULT_THRESHOLDS = WarningThresholds()


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


_KEY_ENCODER = msgspec.json.Encoder()


def member_key(
    payment_year: int,
    release_id: str | None,
    member: Membership,
    diagnoses: Iterable[Diagnosis],
    detail: bool,
    rates_digest: str = "",
) -> MemberKey:
    """The member's cache key (`app.cache`): its inputs, diagnoses sorted, as JSON bytes.

    `rates_digest` names the rate tables that priced the member (`engine.finance`).

    The diagnoses are sorted (Struct field order) so that a member whose
    diagnoses arrive in another order is the same key.

    Bytes, not the nested tuple itself: a bytes object hashes once (the hash is
    kept on the object) and compares with one memcmp, while a fresh nested
    tuple is re-hashed and compared string by string on each of the TTL
    cache's four dict lookups per get (10k members: 18 ms vs 118 ms). JSON of
    strings, nulls, ints and bools is unambiguous (every field is written,
    nulls too), so equal bytes mean equal inputs.
    """
    return _KEY_ENCODER.encode(
        (payment_year, release_id, member, sorted(diagnoses), detail, rates_digest)
    )


def request_rates(request: RiskScoreRequest, configured: RateTable | None) -> RateTable | None:
    """The request's own `rates` over the configured table (`RAF_RATES`); a bad row is a 400
    naming `$.rates[i].<field>`."""
    own = None
    if request.rates:
        try:
            own = RateTable.from_records(
                (
                    {
                        "payment_year": r.payment_year if r.payment_year is not None
                        else request.payment_year,
                        "county": r.county,
                        "monthly_rate": r.monthly_rate,
                        "source": r.source or "request rates",
                    }
                    for r in request.rates
                ),
                label="rates",
            )
        except RateTableError as exc:
            items = [
                ErrorItem(field=f"$.rates[{row}].{field}", message=message)
                for row, field, message in exc.problems
            ]
            raise BadRequest(f"$.rates: {exc}", items) from exc
    return RateTable.layered(own, configured)


_FINANCE_GETTERS = tuple(attrgetter(f) for f in FINANCE_FIELDS)


def _has_finance(memberships: Sequence[Membership]) -> bool:
    return any(any(get(m) is not None for get in _FINANCE_GETTERS) for m in memberships)


def score_request(
    request: RiskScoreRequest,
    *,
    detail: bool,
    store: Any,
    cache: MemberCache,
    score_batch: ScoreBatch,
    rates: RateTable | None = None,
    summary: bool = False,
    thresholds: WarningThresholds = DEFAULT_THRESHOLDS,
) -> tuple[RiskScoreResponse, ScoringStats]:
    """Answer one decoded request (see the module docstring for the flow).

    `rates`: the configured rate table (`RAF_RATES`); `summary`: add the roster
    summary of this request (`app.summary`).
    """
    tables = supported_year_tables(store, request.payment_year)
    release_id = getattr(tables, "release_id", None)
    memberships = request.memberships
    pricing = (
        _Pricing(request_rates(request, rates)) if _has_finance(memberships) else None
    )
    rates_digest = pricing.rates.digest if pricing and pricing.rates else ""

    diagnoses_by_member: dict[str, list[Diagnosis]] = defaultdict(list)
    for dx in request.diagnoses:
        diagnoses_by_member[dx.MemberID].append(dx)
    id_counts = Counter(m.MemberID for m in memberships)

    keys: list[MemberKey | None] = [
        None
        if id_counts[m.MemberID] > 1
        else member_key(
            request.payment_year,
            release_id,
            m,
            diagnoses_by_member.get(m.MemberID, ()),
            detail,
            rates_digest,
        )
        for m in memberships
    ]
    answers: list[CachedMember | None] = cache.get_many(keys)
    misses = [i for i, answer in enumerate(answers) if answer is None]
    hits = len(memberships) - len(misses)

    engine_started = time.perf_counter()
    reference = reference_info(tables, request.payment_year)
    unattributed: dict[str, int] = {}
    repeats = 0  # membership rows identical to an earlier row (their errors name it)
    if misses:
        fresh, reference, unattributed, repeats = _score_misses(
            request, misses, detail, store, score_batch, pricing
        )
        for i, answer in fresh.items():
            answers[i] = answer
        cache.put_many((keys[i], fresh[i]) for i in misses if keys[i] is not None)
    engine_ms = (time.perf_counter() - engine_started) * 1000

    results: list[ResultRow] = []
    errors: list[ErrorItem] = []
    members_scored = 0
    warning_counts: Counter[tuple[str, str]] = Counter()
    dx_summary = dict.fromkeys(DX_SUMMARY_KEYS, 0)
    for answer in answers:
        if answer is None:  # not answered by the engine (it names every row; kept as a guard)
            continue
        members_scored += bool(answer.rows)
        results.extend(answer.rows)
        if answer.error is not None:
            errors.append(answer.error)
        warning_counts.update(answer.warnings)
        for reason, count in answer.dx_counts:
            dx_summary[reason] = dx_summary.get(reason, 0) + count
    for reason, count in unattributed.items():
        dx_summary[reason] = dx_summary.get(reason, 0) + count
    dx_summary["unknown_member"] += sum(
        len(dxs) for member_id, dxs in diagnoses_by_member.items() if member_id not in id_counts
    )

    collection_year = _collection_year(tables, request.payment_year)
    warnings = diagnosis_warnings(
        dx_summary,
        payment_year=request.payment_year,
        collection_year=collection_year,
        members_scored=members_scored,
        thresholds=thresholds,
        thru_years=lambda: thru_year_counts(
            pl.DataFrame({"ThruDOS": list(map(attrgetter("ThruDOS"), request.diagnoses))},
                         schema={"ThruDOS": pl.String}),
            collection_year,
        ),
    )
    # members scored with a caveat (e.g. raw rows only: a factor is not published), kept
    # per cached member so cached and fresh answers count alike
    warnings += [
        DataWarning(code=code, message=message, count=count)
        for (code, message), count in warning_counts.items()
    ]
    response = RiskScoreResponse(
        status="partial" if errors else "success",
        message=_message(len(memberships), len(errors) - repeats, repeats),
        cache_status="Cache hit" if memberships and not misses else "Cache miss",
        count=len(results),
        results=results,
        timestamp=datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds"),
        member_count=len(memberships),
        members_scored=members_scored,
        errors=errors,
        warnings=warnings,
        diagnoses_summary=dx_summary,
        reference=msgspec.convert(reference, ReferenceInfo),
        software=software(),
        cache=CacheCounts(hits=hits, misses=len(misses)),
    )
    if summary:
        response.summary = request_summary(response)
    stats = ScoringStats(
        member_count=len(memberships),
        row_count=len(results),
        error_count=len(errors),
        cache_hits=hits,
        cache_misses=len(misses),
        engine_ms=round(engine_ms, 3),
    )
    return response, stats


def _message(rows: int, rejected: int, repeats: int) -> str:
    if not rejected and not repeats:
        return SUCCESS_MESSAGE
    parts = []
    if rejected:
        parts.append(f"{rejected} of {rows} members could not be scored")
    if repeats:
        parts.append(f"{repeats} membership row(s) repeat an earlier row and are scored once")
    return f"Data processed; {' and '.join(parts)} (see errors)"


def _collection_year(tables: Any, payment_year: int) -> int:
    parameters = getattr(tables, "parameters", None)
    return int(getattr(parameters, "collection_year", payment_year - 1))


def _score_misses(
    request: RiskScoreRequest,
    misses: list[int],
    detail: bool,
    store: Any,
    score_batch: ScoreBatch,
    pricing: _Pricing | None = None,
) -> tuple[dict[int, CachedMember], dict[str, Any], dict[str, int], int]:
    """One engine call for every cache miss; answers keyed by the member's request position.

    Also returns the diagnosis counts the engine could not attribute to a member
    (see `engine.run.dx_counts_of`): they count in this response only; and how many
    rows were identical repeats of an earlier row (their error names it).
    """
    if len(misses) == len(request.memberships):  # nothing cached: the whole request
        miss_members = request.memberships
        dx_positions: Sequence[int] = range(len(request.diagnoses))
        miss_diagnoses = request.diagnoses
    else:
        miss_members = [request.memberships[i] for i in misses]
        miss_ids = {m.MemberID for m in miss_members}
        dx_positions = [i for i, dx in enumerate(request.diagnoses) if dx.MemberID in miss_ids]
        miss_diagnoses = [request.diagnoses[i] for i in dx_positions]
    finance = {} if pricing is None else {"rates": pricing.rates, "finance": True}
    result = score_batch(
        _request_frame(
            misses, miss_members, MEMBERSHIP_FIELDS + (FINANCE_FIELDS if finance else ())
        ),
        _request_frame(dx_positions, miss_diagnoses, DIAGNOSIS_FIELDS),
        request.payment_year,
        store,
        detail=detail,
        **finance,
    )

    rows_by_index = _rows_by_input_index(result.rows)
    errors = result.errors
    repeats = (
        errors.get_column("duplicate_of").is_not_null().sum()
        if "duplicate_of" in errors.columns
        else 0
    )
    errors_by_index = {
        index: ErrorItem(field=field, message=message, MemberID=member_id)
        for index, field, message, member_id in zip(
            *(errors.get_column(c).to_list() for c in ("input_index", "field", "message", "MemberID"))
        )
    }
    dx_by_member, unattributed = _dx_counts_by_member(result)
    warnings_by_index: dict[int, list[tuple[str, str]]] = defaultdict(list)
    member_warnings = getattr(result, "member_warnings", None)
    if member_warnings is not None and not member_warnings.is_empty():
        for index, code, message in member_warnings.select("input_index", "code", "message").iter_rows():
            warnings_by_index[index].append((code, message))

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
            rows=rows_by_index.get(i, ()),
            error=errors_by_index.get(i),
            dx_counts=dx_counts,
            warnings=tuple(warnings_by_index.get(i, ())),
        )
    return answers, dict(result.reference or {}), unattributed, int(repeats)


def _request_frame(
    positions: Sequence[int], items: Sequence[msgspec.Struct], fields: tuple[str, ...]
) -> pl.DataFrame:
    """`input_index` (the items' request positions) and `fields` as String columns.

    One C-level `map(attrgetter)` per column: no per-item tuple, which for a
    10k-member request (90k items) is also 160k fewer GC-tracked allocations.
    """
    return pl.DataFrame(
        {"input_index": positions, **{f: _texts(map(attrgetter(f), items)) for f in fields}},
        schema={"input_index": pl.UInt32, **dict.fromkeys(fields, pl.String)},
    )


def _texts(values: Iterable[Any]) -> list[Any]:
    """Strings as sent; a JSON number (finance fields) as its shortest text (1023.45)."""
    values = list(values)
    if all(v is None or type(v) is str for v in values):
        return values
    return [v if v is None or type(v) is str else repr(v) for v in values]


@dataclass(frozen=True)
class _Pricing:
    """Finance is on for this request; `rates` are the tables that price it."""

    rates: RateTable | None


def request_summary(response: RiskScoreResponse) -> RosterSummary:
    """`?summary=true`: the roster summary of this response's rows (`app.summary`)."""
    rows = response.results
    frame = pl.DataFrame(
        {c: list(map(attrgetter(c), rows)) for c in SUMMARY_ROW_COLUMNS},
        schema=SUMMARY_ROW_SCHEMA,
    )
    errors = pl.DataFrame(
        {"field": [e.field for e in response.errors if e.MemberID is not None]},
        schema={"field": pl.String},
    )
    return summary_of_rows(
        frame,
        payment_year=response.reference.payment_year,
        members_received=response.member_count,
        errors=errors,
        diagnoses_summary=response.diagnoses_summary,
        warnings=msgspec.to_builtins(response.warnings),
        reference=msgspec.to_builtins(response.reference),
    )


def _rows_by_input_index(rows: pl.DataFrame) -> dict[int, tuple[ResultRow, ...]]:
    """Wire rows grouped by member (`input_index`), each member's rows in engine order."""
    if not rows.height:
        return {}
    if not rows.get_column("input_index").is_sorted():
        rows = rows.sort("input_index", maintain_order=True)
    wire = result_rows(rows)
    # sorted by input_index: each member's rows are one run of the list
    runs = rows.select(pl.col("input_index").rle()).unnest("input_index")
    starts = list(accumulate(runs.get_column("len").to_list(), initial=0))
    return {
        index: tuple(wire[start:end])
        for index, start, end in zip(runs.get_column("value").to_list(), starts, starts[1:])
    }


_ROW_FIELDS = ResultRow.__struct_fields__
_FLAT_ROW_FIELDS = _ROW_FIELDS[: _ROW_FIELDS.index("Warnings") + 1]
_PRICED_ROW_FIELDS = _ROW_FIELDS[: _ROW_FIELDS.index("MA_Payment") + 1]


def result_rows(rows: pl.DataFrame) -> list[ResultRow]:
    """`BatchResult.rows` -> wire rows.

    Flat rows (no detail) are built positionally from whole columns
    (`map(ResultRow, *columns)`: no per-row tuple or dict; 10k members, 29k
    rows: 50 ms vs 86 ms from `iter_rows`); that is only done when the frame's
    columns are exactly the Struct's fields in order (else a column would land
    in the wrong field). Detail rows (nested lists of structs) go through
    `msgspec.convert`, which also validates them.
    """
    frame = _wire_ready(rows)
    if tuple(frame.columns) in (_FLAT_ROW_FIELDS, _PRICED_ROW_FIELDS):
        return list(map(ResultRow, *(column.to_list() for column in frame.get_columns())))
    return msgspec.convert(frame.to_dicts(), list[ResultRow])


def _wire_ready(rows: pl.DataFrame) -> pl.DataFrame:
    """Without `input_index`; empty `Warnings` lists become null so the wire omits the field."""
    return rows.select(
        pl.when(pl.col(name).list.len() > 0).then(pl.col(name)).alias(name)
        if name == "Warnings"
        else pl.col(name)
        for name in rows.columns
        if name != "input_index"
    )


def _dx_counts_by_member(
    result: Any,
) -> tuple[dict[str, tuple[tuple[str, int], ...]], dict[str, int]]:
    """(MemberID -> ((reason, count), ...) by reason, counts with no MemberID) from `dx_counts`."""
    counts = getattr(result, "dx_counts", None)
    if not isinstance(counts, pl.DataFrame):
        return {}, dict(getattr(result, "dx_summary", None) or {})
    unattributed: dict[str, int] = {}
    if counts.get_column("MemberID").null_count():  # null_count is metadata: no query
        unattributed = {
            reason: int(count)
            for reason, count in counts.filter(pl.col("MemberID").is_null())
            .group_by("reason")
            .agg(pl.col("count").sum())
            .iter_rows()
        }
    per_member = (
        counts.lazy()
        .filter(pl.col("MemberID").is_not_null())
        .group_by("MemberID", "reason")
        .agg(pl.col("count").sum())
        .sort("MemberID", "reason")
        .group_by("MemberID", maintain_order=True)
        .agg("reason", "count")
        .collect()
    )
    return {
        member_id: tuple(zip(reasons, member_counts))
        for member_id, reasons, member_counts in zip(
            *(column.to_list() for column in per_member.get_columns())
        )
    }, unattributed
