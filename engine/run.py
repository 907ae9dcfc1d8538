"""The one entry point: memberships + diagnoses -> response rows, errors, summary.

Contract: `docs/ARCHITECTURE.md` "The one entry point". Used by the API
(`app.controllers`), the CLI (`app.batch`) and the jobs (`app.jobs`), so all
three answer identically. Stages:

    ratype.normalize -> engine.score_raw -> engine.blend.blend -> engine.rows.build_rows

Member conservation (`docs/api.md`: "Nothing is dropped silently"):
every input member ends up in `rows` or `errors`. A member that a stage loses
without saying why (e.g. a model family the raw engine does not implement yet)
is reported here as a member error rather than vanishing. Identical repeated
membership rows are one member (`ratype.normalize` collapses them); each repeat
has an error of its own naming the row it repeats (`duplicate_of`), so every
input row has its own row or error.

Diagnosis conservation: every diagnosis row is `used` or counted under one
reason. A diagnosis of a member that is in the batch but was not scored is
`member_rejected` (the raw engine only sees scorable members, so it first
calls it `unknown_member`); `unknown_member` is left for IDs the batch does not
list.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from engine import score_raw
from engine.blend import (
    MEMBER_ERROR_SCHEMA,
    MEMBER_WARNING_SCHEMA,
    BlendParameters,
    blend,
    blend_trail,
)
from engine.finance import (
    FINANCE_FIELDS,
    RateTable,
    apply_payments,
    conflicting_rows,
    finance_inputs,
)
from engine.memo import derived
from engine.raw import DX_REASONS as RAW_DX_REASONS
from engine.rows import build_rows
from ratype import normalize
from ratype.normalizer import MEMBERSHIP_FIELDS

DIAGNOSIS_FIELDS = ("MemberID", "FromDOS", "ThruDOS", "DxCode")

#: Reason of a diagnosis whose member is in the batch but was rejected (see module docstring).
MEMBER_REJECTED = "member_rejected"
_UNKNOWN_MEMBER = "unknown_member"
DX_SUMMARY_KEYS = (
    "used",
    *(
        reason
        for raw_reason in RAW_DX_REASONS
        for reason in (
            (raw_reason, MEMBER_REJECTED) if raw_reason == _UNKNOWN_MEMBER else (raw_reason,)
        )
    ),
)
DX_COUNTS_SCHEMA = {"MemberID": pl.String, "reason": pl.String, "count": pl.Int64}
#: `BatchResult.errors`: one row per membership row not scored. `duplicate_of` is the
#: `input_index` of the earlier row an identical repeat is answered by (else null).
ERROR_SCHEMA = {**MEMBER_ERROR_SCHEMA, "duplicate_of": pl.UInt32}



@dataclass(frozen=True)
class BatchResult:
    """What `score_batch` returns (see module docstring and ARCHITECTURE.md).

    `dx_counts` is the per-member breakdown behind `dx_summary`: columns
    `MemberID` (as in the diagnoses), `reason` (`used` or a drop reason),
    `count`. The API cache uses it to answer a cached member's share of the
    summary. `member_warnings` (`MemberID, input_index, code, message`) are the
    warnings of scored members that change what they get (e.g. raw rows only,
    active row left out for a missing parameter); the same text is on the
    member's `Warnings`. `warnings` counts them: `[{code, message, count}]`.
    """

    rows: pl.DataFrame
    errors: pl.DataFrame
    dx_summary: dict[str, int]
    dx_counts: pl.DataFrame
    trail: dict[str, pl.DataFrame] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    member_count: int = 0
    member_warnings: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=MEMBER_WARNING_SCHEMA)
    )

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return count_warnings(self.member_warnings)


def count_warnings(member_warnings: pl.DataFrame) -> list[dict[str, Any]]:
    """`[{code, message, count}]`: members per distinct warning, in first-seen order."""
    if member_warnings.is_empty():
        return []
    counted = member_warnings.group_by("code", "message", maintain_order=True).agg(
        count=pl.col("input_index").n_unique()
    )
    return counted.to_dicts()


def with_string_columns(frame: pl.DataFrame, fields: tuple[str, ...]) -> pl.DataFrame:
    """Frame of strings with every field (missing ones null) and `input_index`."""
    if "input_index" not in frame.columns:
        frame = frame.with_row_index("input_index")
    present = set(frame.columns)
    return frame.select(
        pl.col("input_index").cast(pl.UInt32),
        *[
            (pl.col(f).cast(pl.String) if f in present else pl.lit(None, pl.String)).alias(f)
            for f in fields
        ],
    )


def blend_parameters(tables: Any, payment_year: int) -> BlendParameters:
    """The year's blend parameters from the reference tables (`YearTables`)."""
    from reference.parameters import blend_parameters_of

    def build() -> BlendParameters:
        return replace(blend_parameters_of(tables, payment_year), provenance=_provenance(tables))

    return derived(tables, f"blend_parameters_{payment_year}", build)


def _provenance(tables: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(parameter, key) -> (status, source) of the year's blend parameters (parameters.csv)."""
    params = getattr(tables, "parameters", None)
    named = [
        *(("blend_weight", k, f) for k, f in getattr(params, "blend_weights", {}).items()),
        *(("normalization_factor", k, f) for k, f in getattr(params, "normalization", {}).items()),
    ]
    coding = getattr(params, "coding_adjustment", None)
    if coding is not None:
        named.append(("coding_adjustment", "ALL", coding))
    return {
        (name, key): (str(getattr(f, "status", "")), str(getattr(f, "source", "")))
        for name, key, f in named
    }


#: Members per internal chunk of a large batch (bounded peak memory, see `score_batch`).
#: 50k rather than 100k: two chunks in flight then hold what one 100k chunk held,
#: and the smaller hash tables cost less CPU (1M members: 21.5 vs 23.3 CPU-s).
CHUNK_MEMBERS = 50_000
#: Chunks scored at once. polars releases the GIL, so a second chunk fills the
#: cores while the first is in its single-threaded steps (Python glue, small
#: collects); more than the core count only adds memory.
CHUNK_WORKERS = 2


def score_batch(
    memberships: pl.DataFrame,
    diagnoses: pl.DataFrame,
    payment_year: int,
    store: Any,
    detail: bool = False,
    *,
    rates: RateTable | None = None,
    finance: bool | None = None,
) -> BatchResult:
    """Score one batch. Raises `reference.UnsupportedPaymentYear` for an unknown year.

    Finance (`engine.finance`): with `finance` True the rows carry the payment
    fields (`engine.finance.OUTPUT_FIELDS`, null where unknown) and members'
    `Enrollment_*`, `County`, `Monthly_Rate` are read (bad values are member
    errors); None decides by whether any membership row has a finance value;
    False ignores them. `rates` prices members by `County`.

    A batch of more than `CHUNK_MEMBERS` membership rows is scored in chunks of
    about that many members (diagnoses follow their member), and the chunk
    results are concatenated in input order: the answer is the same as one
    pass, and peak memory is bounded by the chunk, not the batch. Every row of
    one MemberID goes to the chunk of its first row, so repeated memberships
    still collapse; diagnoses of unknown members go to the first chunk.
    `CHUNK_WORKERS` chunks are scored at once on threads (the engine keeps no
    per-call state outside its arguments; derived reference frames are
    idempotent, so a race only builds one twice).
    """
    tables = store.year(payment_year)
    params = blend_parameters(tables, payment_year)

    finance_fields = tuple(f for f in FINANCE_FIELDS if f in memberships.columns)
    if finance is None:
        finance = any(memberships.get_column(f).null_count() < memberships.height
                      for f in finance_fields)
    memberships = with_string_columns(
        memberships, MEMBERSHIP_FIELDS + (finance_fields if finance else ())
    )
    diagnoses = with_string_columns(diagnoses, DIAGNOSIS_FIELDS)
    pricing = _Pricing(rates) if finance else None
    if memberships.height <= CHUNK_MEMBERS:
        return _score_chunk(memberships, diagnoses, payment_year, tables, params, detail, pricing)

    # by row position, not by the index's value: a caller may bring sparse indexes
    # (app.spark scores a hash bucket of a larger roster under its global indexes)
    chunk_of = pl.int_range(pl.len()).min().over("MemberID") // CHUNK_MEMBERS
    member_chunk = memberships.select(chunk_of.cast(pl.UInt32).alias("_chunk")).to_series()
    # the chunk of each diagnosis as a column of its own (no copy of the diagnoses);
    # each chunk's rows are gathered only when that chunk is scored
    dx_chunk = _diagnosis_chunks(memberships, member_chunk, diagnoses)

    def score_chunk(key: int) -> BatchResult:
        return _score_chunk(
            memberships.filter(member_chunk == key),
            diagnoses.filter(dx_chunk == key),
            payment_year,
            tables,
            params,
            detail,
            pricing,
        )

    # map() keeps chunk order, so the concatenation stays in input order
    with ThreadPoolExecutor(max_workers=CHUNK_WORKERS, thread_name_prefix="score-chunk") as pool:
        results = list(pool.map(score_chunk, member_chunk.unique().sort().to_list()))
    return _concat_results(results, memberships.height, tables, payment_year)


@dataclass(frozen=True)
class _Pricing:
    """Finance is on for this batch; `rates` prices members by County (None: no table)."""

    rates: RateTable | None


def _member_hash(member_id: pl.Expr) -> pl.Expr:
    return member_id.hash().alias("_member_hash")


def _diagnosis_chunks(
    memberships: pl.DataFrame, member_chunk: pl.Series, diagnoses: pl.DataFrame
) -> pl.Series:
    """The chunk of each diagnosis row: its member's chunk (0 for unknown members).

    Joined on a 64-bit hash of MemberID rather than the string (1M members,
    8M diagnoses: ~0.45 vs ~0.9 CPU-s, before any chunk can start). Exact: when
    two members' IDs share a hash the string join is used instead; a diagnosis
    of an unknown member whose ID shares a member's hash goes to that member's
    chunk, where it is reported as `unknown_member` exactly as in chunk 0.
    """
    members = memberships.select(
        _member_hash(pl.col("MemberID")), "MemberID", member_chunk
    ).unique("MemberID")
    if members.get_column("_member_hash").n_unique() == members.height:
        left, right, key = (
            diagnoses.select(_member_hash(pl.col("MemberID"))),
            members.select("_member_hash", "_chunk"),
            "_member_hash",
        )
    else:
        left, right, key = diagnoses.select("MemberID"), members.select("MemberID", "_chunk"), "MemberID"
    return (
        left.join(right, on=key, how="left", maintain_order="left")
        .get_column("_chunk")
        .fill_null(0)
    )


def _concat_results(
    results: list[BatchResult], member_count: int, tables: Any, payment_year: int
) -> BatchResult:
    """One `BatchResult` from chunk results (chunks in input order, each sorted)."""

    def by_index(frames: list[pl.DataFrame]) -> pl.DataFrame:
        # chunks hold consecutive input_index ranges, so the concatenation is
        # usually already in order; a stable sort only when it is not
        frame = pl.concat(frames)
        if frame.get_column("input_index").is_sorted():
            return frame
        return frame.sort("input_index", maintain_order=True)

    trail: dict[str, pl.DataFrame] = {}
    for name in results[0].trail:
        frames = [r.trail[name] for r in results]
        trail[name] = (
            pl.concat(frames).sort("dx_index", maintain_order=True)
            if name == "dropped_dx"
            else by_index(frames)
        )
    dx_counts = pl.concat([r.dx_counts for r in results])
    return BatchResult(
        member_warnings=by_index([r.member_warnings for r in results]),
        rows=by_index([r.rows for r in results]),
        errors=by_index([r.errors for r in results]),
        dx_summary=summarize_dx_counts(dx_counts),
        dx_counts=dx_counts,
        trail=trail,
        reference=reference_info(tables, payment_year),
        member_count=member_count,
    )


def _score_chunk(
    memberships: pl.DataFrame,
    diagnoses: pl.DataFrame,
    payment_year: int,
    tables: Any,
    params: BlendParameters,
    detail: bool,
    pricing: _Pricing | None = None,
) -> BatchResult:
    """`score_batch` on frames already shaped by `with_string_columns`."""
    finance_errors = pl.DataFrame(schema=MEMBER_ERROR_SCHEMA)
    conflicts = finance_errors
    if pricing is not None:
        priced, finance_errors = finance_inputs(memberships, payment_year, pricing.rates)
        conflicts = conflicting_rows(memberships)
        if conflicts.height or finance_errors.height:  # one error per member, its first row
            finance_errors = (
                pl.concat([conflicts, finance_errors])
                .unique("MemberID", keep="first", maintain_order=True)
                .sort("input_index")
            )
        memberships = memberships.select("input_index", *MEMBERSHIP_FIELDS)
    members, ratype_errors = normalize(memberships, payment_year)
    if conflicts.height:
        ratype_errors = _finance_conflicts_on_every_row(ratype_errors, conflicts)
    if finance_errors.height:  # one error per member: a membership error comes first
        finance_errors = finance_errors.join(
            ratype_errors.select("input_index"), on="input_index", how="anti"
        )
        members = members.join(finance_errors.select("input_index"), on="input_index", how="anti")
    raw = score_raw(members, diagnoses, tables, detail=detail)
    blended = blend(raw.rows, members, params)
    trail = dict(raw.trail or {}) if detail else {}
    raw_rows = raw.rows
    if not blended.errors.is_empty():  # members the blend rejected show no rows at all
        raw_rows = raw_rows.join(blended.errors.select("input_index"), on="input_index", how="anti")
    if not blended.warnings.is_empty():  # scored raw only: the reason is on their rows
        members = _with_warnings(members, blended.warnings)
    if detail:
        trail["blend"] = blend_trail(raw_rows, members, params)
    rows = build_rows(members, raw_rows, blended.active, params, trail or None)
    if pricing is not None:
        rows, lines = apply_payments(
            rows, blended.active, priced, params, members, trail if detail else None
        )
        if lines is not None:
            trail["payment_lines"] = lines

    unscored = _unscored_members(members, raw.rows, payment_year)
    errors = _member_errors(ratype_errors, finance_errors, blended.errors, unscored)
    errors = _account_for_every_member(memberships, rows, errors)
    if not errors.is_empty():
        raw = _rejected_members_diagnoses(raw, diagnoses, rows, errors)
        if "dropped_dx" in trail:
            trail["dropped_dx"] = raw.dropped_dx
    dx_counts = dx_counts_of(raw, diagnoses)
    return BatchResult(
        rows=rows,
        errors=errors,
        dx_summary=summarize_dx_counts(dx_counts),
        dx_counts=dx_counts,
        trail=trail,
        reference=reference_info(tables, payment_year),
        member_count=memberships.height,
        member_warnings=blended.warnings,
    )


def _finance_conflicts_on_every_row(
    ratype_errors: pl.DataFrame, conflicts: pl.DataFrame
) -> pl.DataFrame:
    """Rows equal in the membership fields but not in the finance ones are no repeats:
    `ratype.normalize` named the later ones identical duplicates; they get the finance
    conflict instead (one error per row, like rows whose membership fields conflict)."""
    conflict = conflicts.select("MemberID", pl.col("message").alias("_conflict"))
    relabeled = ratype_errors.join(conflict, on="MemberID", how="left", maintain_order="left")
    is_repeat = pl.col("duplicate_of").is_not_null() & pl.col("_conflict").is_not_null()
    return relabeled.with_columns(
        pl.when(is_repeat).then(pl.col("_conflict")).otherwise(pl.col("message")).alias("message"),
        pl.when(is_repeat).then(None).otherwise(pl.col("duplicate_of")).alias("duplicate_of"),
    ).drop("_conflict")


def _rejected_members_diagnoses(
    raw: Any, diagnoses: pl.DataFrame, rows: pl.DataFrame, errors: pl.DataFrame
) -> Any:
    """Every diagnosis of a member the batch lists but did not score -> `member_rejected`.

    A member rejected by `ratype.normalize` is never seen by the raw engine, so its
    diagnoses come back `unknown_member`; one rejected later (a blend parameter not
    published) had its diagnoses screened and mapped like anyone's. Either way none
    of them counts towards a payment: they are relabeled in `dropped_dx` (exact
    repeats stay `duplicate`), and the ones the screening had kept are added to it,
    so `dropped_dx` and the summary still cover every diagnosis row.
    """
    dropped = getattr(raw, "dropped_dx", None)
    if dropped is None:
        return raw
    rejected = (
        errors.filter(pl.col("duplicate_of").is_null())
        .select("MemberID")
        .drop_nulls()
        .unique()
        .join(rows.select(MemberID=pl.col("Member_Id")).unique(), on="MemberID", how="anti")
        .get_column("MemberID")
    )
    if rejected.is_empty():
        return raw
    of_rejected = pl.col("MemberID").is_in(rejected.implode())
    relabeled = dropped.with_columns(
        pl.when(of_rejected & (pl.col("reason") != "duplicate"))
        .then(pl.lit(MEMBER_REJECTED))
        .otherwise(pl.col("reason"))
        .alias("reason")
    )
    kept = (
        diagnoses.filter(of_rejected)
        .rename({"input_index": "dx_index"})
        .join(dropped.select("dx_index"), on="dx_index", how="anti")
    )
    if not kept.is_empty():
        kept = kept.with_columns(
            pl.lit(None, pl.UInt32).alias("input_index"), pl.lit(MEMBER_REJECTED).alias("reason")
        )
        relabeled = (
            pl.concat([relabeled, kept.select(relabeled.columns)], how="vertical_relaxed")
            .cast(relabeled.schema)
            .sort("dx_index")
        )
    return replace(raw, dropped_dx=relabeled)


def _with_warnings(members: pl.DataFrame, warnings: pl.DataFrame) -> pl.DataFrame:
    """`members` with each warning's message appended to the member's `warnings` list."""
    extra = warnings.group_by("input_index").agg(pl.col("message").alias("_extra"))
    joined = members.join(extra, on="input_index", how="left", maintain_order="left")
    base = pl.col("warnings") if "warnings" in members.columns else pl.lit([], pl.List(pl.String))
    return joined.with_columns(
        pl.concat_list(base.fill_null([]), pl.col("_extra").fill_null([])).alias("warnings")
    ).drop("_extra")


def _member_errors(*parts: pl.DataFrame) -> pl.DataFrame:
    """The stages' member errors as one frame in input order (no query when all are empty);
    stages other than `ratype.normalize` name no earlier row (`duplicate_of` null)."""
    present = [part for part in parts if not part.is_empty()]
    if not present:
        return pl.DataFrame(schema=ERROR_SCHEMA)
    return (
        pl.concat([_with_duplicate_of(part.lazy()) for part in present])
        .sort("input_index")
        .collect()
    )


def _with_duplicate_of(errors: pl.LazyFrame) -> pl.LazyFrame:
    if "duplicate_of" not in errors.collect_schema().names():
        errors = errors.with_columns(pl.lit(None, pl.UInt32).alias("duplicate_of"))
    return errors.select(*ERROR_SCHEMA).cast(ERROR_SCHEMA)


def _unscored_members(members: pl.DataFrame, raw_rows: pl.DataFrame, year: int) -> pl.DataFrame:
    """Members that passed `ratype.normalize` but got no raw row."""
    # raw rows come only from these members, so as many distinct indexes as
    # members means every member was scored (the usual case: no join)
    if raw_rows.get_column("input_index").n_unique() == members.height:
        return pl.DataFrame(schema=MEMBER_ERROR_SCHEMA)
    lost = members.join(raw_rows.select("input_index").unique(), on="input_index", how="anti")
    return lost.select(
        "MemberID",
        "input_index",
        field=pl.lit("RAType"),
        message=pl.format(
            f"the member passed validation but no model of PY{year} produced a score for it "
            "(segment {}, model family {}); it is reported here instead of being dropped",
            "segment",
            "model_family",
        ),
    ).cast(MEMBER_ERROR_SCHEMA)


def _account_for_every_member(
    memberships: pl.DataFrame, rows: pl.DataFrame, errors: pl.DataFrame
) -> pl.DataFrame:
    """Invariant check: each input row has its own row (`input_index`) or error.

    Anything else would be a silent drop: it becomes a member error so the
    caller still sees it.
    """
    # rows and errors only carry indexes of these membership rows, so as many
    # distinct indexes as rows means each input row has its own row or error
    # (the usual case: decided without a join)
    seen = pl.concat([rows.get_column("input_index"), errors.get_column("input_index")])
    if seen.drop_nulls().n_unique() == memberships.height:
        return errors
    missing = memberships.join(seen.unique().to_frame(), on="input_index", how="anti")
    if missing.is_empty():
        return errors
    lost = missing.select(
        "MemberID",
        "input_index",
        field=pl.lit("MemberID"),
        message=pl.lit("the member was not scored and no stage said why (internal error)"),
        duplicate_of=pl.lit(None, pl.UInt32),
    ).cast(ERROR_SCHEMA)
    return pl.concat([errors, lost]).sort("input_index")


def dx_counts_of(raw: Any, diagnoses: pl.DataFrame) -> pl.DataFrame:
    """Per-member diagnosis counts (see `BatchResult.dx_counts`).

    From the raw result's per-diagnosis drops (`dropped_dx`: MemberID, reason):
    a member's `used` count is its diagnosis rows minus its dropped ones. When
    the raw result has no per-diagnosis drops, the batch summary is returned
    with a null MemberID (no per-member split).
    """
    dropped = getattr(raw, "dropped_dx", None)
    if dropped is None:
        dropped = (getattr(raw, "trail", None) or {}).get("dropped_dx")
    if dropped is None:
        return pl.DataFrame(
            {"MemberID": [None] * len(raw.dx_summary), "reason": list(raw.dx_summary),
             "count": list(raw.dx_summary.values())},
            schema=DX_COUNTS_SCHEMA,
        )
    # one lazy query (the dropped counts are computed once and used twice)
    dropped_counts = (
        dropped.lazy().group_by("MemberID", "reason").agg(count=pl.len().cast(pl.Int64)).cache()
    )
    received = diagnoses.lazy().group_by("MemberID").agg(received=pl.len().cast(pl.Int64))
    used = (
        received.join(
            dropped_counts.group_by("MemberID").agg(dropped=pl.col("count").sum()),
            on="MemberID",
            how="left",
            # diagnoses without a MemberID are one group on both sides: unmatched, they
            # would count as `used` as well as `unknown_member`
            nulls_equal=True,
        )
        .select("MemberID", reason=pl.lit("used"),
                count=pl.col("received") - pl.col("dropped").fill_null(0))
        .filter(pl.col("count") > 0)
    )
    return (
        pl.concat([used, dropped_counts.select("MemberID", "reason", "count")])
        .cast(DX_COUNTS_SCHEMA)
        .collect()
    )


def summarize_dx_counts(dx_counts: pl.DataFrame) -> dict[str, int]:
    """reason -> count: `used`, then every engine reason (0 when none), then any other."""
    summary = dict.fromkeys(DX_SUMMARY_KEYS, 0)
    for reason, count in dx_counts.group_by("reason").agg(pl.col("count").sum()).iter_rows():
        summary[reason] = summary.get(reason, 0) + int(count)
    return summary


def reference_info(tables: Any, payment_year: int) -> dict[str, Any]:
    """`{"payment_year", "release_id", "sha256", "parameter_caveats"}` of the year's
    reference data: `parameter_caveats` lists every parameter whose status is not
    `cms`/`corroborated` (single-source, missing, operator), so a PY2027 answer says
    which of its factors rest on one source and an overridden one says so."""
    parameters = getattr(tables, "parameters", None)
    caveats = getattr(parameters, "caveats", None) or []
    return {
        "payment_year": payment_year,
        "release_id": getattr(tables, "release_id", None),
        "sha256": getattr(tables, "sha256", None),
        "parameter_caveats": [
            {"parameter": c.parameter, "model": c.model, "value": c.value,
             "status": c.status, "source": c.source}
            for c in caveats
        ],
    }
