"""Roster summary: what plan finance reads first (counts, score distributions, dollars).

One computation for every path: the API (`?summary=true`), jobs
(`GET /v1/jobs/{id}/summary`), `raf score --summary` and `raf summary
scores.parquet`. It reads the response rows themselves (any frame or file with
the response columns), so a summary of a scored file and the summary of the run
that wrote it are the same numbers:

1. `member_facts(rows)`: one row per scored member (its active row) with the raw
   V28 / V24 / ESRD totals of its raw rows, as exact integers (raw in
   thousandths, active in millionths, money in cents), the `segment` (the
   prefix of the raw row's demographic cell, `CNA_F75_79` -> `CNA`, which is how
   CMS names it) and its `family` (`SEGMENT_FAMILIES`);
2. `summarize(facts, ...)`: the `RosterSummary` below.

Statistics (all polars expressions, no loop over members):

* mean: exact integer sum / count, rounded half away from zero to 6 decimals;
* median, p10, p90: polars `quantile(..., "linear")` (numpy's default: linear
  interpolation between the two nearest ranks), rounded to 6 decimals;
* member-month-weighted active mean: sum(active * months) / sum(months), where
  months is `Enrollment_Months` (12 when the member sent none);
* payment: integer cents summed; PMPM = total / member-months of the priced
  members, rounded half away from zero at the cent;
* transition effect (years with V24 and V28 rows, PY2024/PY2025): per segment,
  mean raw V28 - mean raw V24 over the members with both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec
import polars as pl
from msgspec import Struct

from app.fielddoc import doc
from ratype.normalizer import DUPLICATE_ROW_PREFIX

SEGMENT_FAMILIES: Mapping[str, str] = {
    "CNA": "community", "CND": "community", "CFA": "community", "CFD": "community",
    "CPA": "community", "CPD": "community",
    "INS": "institutional",
    "NE": "new_enrollee", "SNPNE": "new_enrollee",
    "DI": "esrd_dialysis", "DNE": "esrd_dialysis",
    "GFA": "esrd_graft", "GFN": "esrd_graft", "GNPA": "esrd_graft", "GNPN": "esrd_graft",
    "GI": "esrd_graft", "GNE": "esrd_graft",
    "TRANSPLANT": "esrd_transplant",
}
"""Segment (CMS's variable prefix) -> family: community, institutional, new enrollee, ESRD."""

FULL_YEAR_MONTHS = 12
RAW_MODELS = {"V28": "raw_v28", "V24": "raw_v24", "ESRD V24": "raw_esrd_v24"}
"""`Clinical_Version` of a raw row -> its column in `member_facts`."""

SCORE_COLUMNS = {"raw_v24": 1_000, "raw_v28": 1_000, "raw_esrd_v24": 1_000, "active": 1_000_000}
"""Fact column -> its integer scale (raw rows in thousandths, active in millionths)."""

ROW_COLUMNS = ("Member_Id", "RAType", "RA_Variable", "Clinical_Version", "RAF_Total",
               "Active_Score", "Enrollment_Months", "MA_Payment")
MAX_MEMBER_WARNINGS = 50
HISTOGRAM_WIDTH_MICRO = 100_000  # bins of 0.1 active score
HISTOGRAM_BINS = 30  # 0.0-3.0, then one bin for 3.0 and above


# --------------------------------------------------------------------------- wire shape


_SCORE6 = "rounded to 6 decimals"


class Stats(Struct, omit_defaults=True):
    """Distribution of one score over the members that have it."""

    count: Annotated[int, doc("Members with this score.", 1000)]
    mean: Annotated[float | None, doc(f"Mean, {_SCORE6}.", 1.021345)] = None
    median: Annotated[float | None, doc(f"Median (linear interpolation), {_SCORE6}.",
                                        0.874)] = None
    p10: Annotated[float | None, doc(f"10th percentile, {_SCORE6}.", 0.41)] = None
    p90: Annotated[float | None, doc(f"90th percentile, {_SCORE6}.", 1.9)] = None
    min: Annotated[float | None, doc("Smallest.", 0.261)] = None
    max: Annotated[float | None, doc("Largest.", 6.412)] = None


class ScoreStats(Struct, omit_defaults=True):
    """Statistics of the active score and of each raw model's `RAF_Total`."""

    active: Annotated[Stats, doc("Active (paid) scores.")]
    raw_v28: Annotated[Stats | None, doc("Raw V28 totals (years with V28).")] = None
    raw_v24: Annotated[Stats | None, doc("Raw V24 totals (PY2024/PY2025).")] = None
    raw_esrd_v24: Annotated[Stats | None, doc("Raw ESRD V24 totals (ESRD members).")] = None


class SegmentSummary(Struct, omit_defaults=True):
    """One segment's members."""

    segment: Annotated[str, doc("The segment (CMS's variable prefix).", "CNA")]
    family: Annotated[str, doc(
        "community, institutional, new_enrollee, esrd_dialysis, esrd_graft or esrd_transplant.",
        "community")]
    members: Annotated[int, doc("Members scored in it.", 800)]
    member_months: Annotated[int, doc("Their enrollment months (12 when not sent).", 9600)]
    scores: Annotated[ScoreStats, doc("Their score statistics.")]
    members_priced: Annotated[int, doc("Of them, members with a rate.", 800)] = 0
    payment_cents: Annotated[int | None, doc("Their MA payment, in cents.", 812345678)] = None
    payment: Annotated[float | None, doc("Their MA payment, in dollars.", 8123456.78)] = None


class Transition(Struct):
    """V24 to V28 effect (years scored with both): mean raw V28 minus mean raw V24."""

    segment: Annotated[str, doc("The segment, or `all`.", "CNA")]
    members: Annotated[int, doc("Members with both raw rows.", 800)]
    mean_raw_v24: Annotated[float, doc("Mean raw V24 total.", 1.0125)]
    mean_raw_v28: Annotated[float, doc("Mean raw V28 total.", 0.9871)]
    effect: Annotated[float, doc("mean_raw_v28 - mean_raw_v24.", -0.0254)]


class Payment(Struct):
    """Dollars of the members with a rate (`Monthly_Rate` or a county rate)."""

    members_priced: Annotated[int, doc("Members with a rate.", 990)]
    members_unpriced: Annotated[int, doc("Members scored without a rate.", 10)]
    member_months: Annotated[int, doc("Enrollment months of the priced members.", 11880)]
    total_cents: Annotated[int, doc("Total MA payment, in cents.", 1212345678)]
    total: Annotated[float, doc("Total MA payment, in dollars.", 12123456.78)]
    pmpm_cents: Annotated[int | None, doc(
        "Per member per month: total / member_months, in cents.", 102048)]
    pmpm: Annotated[float | None, doc("Per member per month, in dollars.", 1020.48)]


class Rejected(Struct):
    """Members not scored."""

    members: Annotated[int, doc("Members rejected.", 3)]
    by_field: Annotated[dict[str, int], doc("Rejections per field at fault.", {"DOB": 2})]


class DiagnosesSummary(Struct):
    """The diagnoses received and what happened to them."""

    received: Annotated[int, doc("Diagnosis rows received.", 8000)]
    used: Annotated[int, doc("Rows that produced a payment HCC.", 5100)]
    dropped: Annotated[int, doc("Rows not used.", 2900)]
    dropped_by_reason: Annotated[dict[str, int], doc(
        "Rows not used, by reason (the API's `diagnoses_summary` reasons).",
        {"no_hcc": 2500, "outside_collection_year": 400})]


class WarningCount(Struct):
    """A kind of warning and how many members got it."""

    code: Annotated[str, doc("Machine-readable kind.", "member_warning")]
    message: Annotated[str, doc(
        "What it says.",
        "NEMCAID=Y ignored: NEMCAID is used only for new-enrollee RATypes E, ED, E1, E2, not CP")]
    count: Annotated[int, doc("Members with it.", 4)]


class HistogramBin(Struct):
    """Members whose active score is in [lower, upper) (the last bin: lower and above)."""

    lower: Annotated[float, doc("Lower bound (included).", 0.9)]
    upper: Annotated[float | None, doc("Upper bound (excluded); null on the last bin.", 1.0)]
    members: Annotated[int, doc("Members in the bin.", 120)]


class RosterSummary(Struct, omit_defaults=True):
    """The roster summary (`app.summary`); money in cents and dollars, scores to 6 decimals."""

    members_scored: Annotated[int, doc("Members scored.", 997)]
    members_rejected: Annotated[int, doc("Members rejected.", 3)]
    by_segment_family: Annotated[dict[str, int], doc(
        "Members per segment family.", {"community": 900, "institutional": 97})]
    by_ratype: Annotated[dict[str, int], doc("Members per RAType sent.", {"CN": 700, "I": 97})]
    scores: Annotated[ScoreStats, doc("Score statistics of the whole roster.")]
    by_segment: Annotated[list[SegmentSummary], doc("Per segment.")]
    member_months: Annotated[int, doc("Enrollment months (12 per member when not sent).",
                                      11964)]
    active_mean_member_month_weighted: Annotated[float | None, doc(
        "sum(active x months) / sum(months), rounded to 6 decimals.", 1.018432)]
    rejected: Annotated[Rejected, doc("Members not scored, by field.")]
    warnings: Annotated[list[WarningCount], doc("Warnings, by kind, with member counts.")]
    payment_year: Annotated[int | None, doc("The payment year.", 2025)] = None
    members_received: Annotated[int | None, doc("Membership rows received.", 1000)] = None
    payment: Annotated[Payment | None, doc("Dollars (members with a rate).")] = None
    transition: Annotated[list[Transition] | None, doc(
        "PY2024/PY2025: V24 to V28 effect per segment.")] = None
    transition_overall: Annotated[Transition | None, doc(
        "PY2024/PY2025: V24 to V28 effect over all members with both rows.")] = None
    diagnoses: Annotated[DiagnosesSummary | None, doc("The diagnoses and their fate.")] = None
    reference: Annotated[dict[str, Any] | None, doc(
        "The reference data used (`payment_year`, `release_id`, `sha256`).",
        {"payment_year": 2025, "release_id": "PY2025.1+46d6dadd6971"})] = None
    active_histogram: Annotated[list[HistogramBin] | None, doc(
        "Active scores in bins of 0.1 from 0 to 3, then 3 and above.")] = None


def encode(summary: RosterSummary) -> bytes:
    return msgspec.json.format(msgspec.json.encode(summary), indent=2)


def decode(data: bytes) -> RosterSummary:
    return msgspec.json.decode(data, type=RosterSummary)


# --------------------------------------------------------------------------- facts


def _scaled(column: str, scale: int) -> pl.Expr:
    """Float of the wire back to its exact integer (the float is the nearest double of a
    decimal with log10(scale) places, so rounding recovers it)."""
    return (pl.col(column) * scale).round().cast(pl.Int64)


def member_facts(rows: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per scored member: `Member_Id, RAType, segment, family, raw_v28, raw_v24,
    raw_esrd_v24` (thousandths), `active` (millionths), `months`, `payment_cents` (null
    without a rate). `rows`: response rows (raw rows and the active row per member)."""
    lf = rows.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in ROW_COLUMNS[:6] if c not in names]
    if missing:
        raise ValueError(f"not a scores table: no column {missing[0]!r}")
    frame = lf.select(
        *ROW_COLUMNS[:6],
        *(c if c in names else pl.lit(None, pl.Float64).alias(c) for c in ROW_COLUMNS[6:]),
    ).collect()
    active_row = pl.col("Active_Score") == 1
    active = frame.filter(active_row).select(
        "Member_Id",
        pl.col("RAType").cast(pl.String),
        active=_scaled("RAF_Total", 1_000_000),
        months=pl.col("Enrollment_Months").cast(pl.Int64).fill_null(FULL_YEAR_MONTHS),
        payment_cents=_scaled("MA_Payment", 100),
    )
    raw = _raw_by_member(frame, active.height)
    joined = (
        active.join(raw, on="Member_Id", how="left") if "Member_Id" in raw.columns
        else active.hstack(raw)  # laid out member by member: already in the active rows' order
    )
    return joined.with_columns(
        pl.col("segment").fill_null("unknown"),
        family=pl.col("segment").replace_strict(
            dict(SEGMENT_FAMILIES), default="unknown", return_dtype=pl.String
        ),
    ).select("Member_Id", "RAType", "segment", "family", *RAW_MODELS.values(), "active",
             "months", "payment_cents")


_SEGMENT = r"^([A-Z]+)_"


def _raw_by_member(frame: pl.DataFrame, members: int) -> pl.DataFrame:
    """Per member: `segment` and the raw totals by model, either in the active rows' order
    (no `Member_Id` column) or keyed by `Member_Id`.

    Response rows come member by member, the active row last (the engine, `raf score`
    and jobs all write them so). When that holds -- every new MemberID starts right
    after an active row -- each row's member is the count of active rows before it,
    and the raw values are scattered into place by that number: no hash of a
    million MemberIDs (1M members: ~4x less CPU than grouping by MemberID). Rows in
    any other order are grouped by MemberID.
    """
    is_active = pl.col("Active_Score") == 1
    laid_out = frame.height > 0 and frame.select(
        (
            (pl.col("Member_Id") != pl.col("Member_Id").shift(1)).fill_null(True)
            == is_active.shift(1).fill_null(True)
        ).all()
        & is_active.last()
    ).item()
    if not laid_out:
        return (
            frame.lazy().filter(~is_active)
            .group_by("Member_Id")
            .agg(
                segment=pl.col("RA_Variable").first().str.extract(_SEGMENT, 1),
                **{
                    name: _scaled("RAF_Total", 1_000).filter(pl.col("Clinical_Version") == v)
                    .first()
                    for v, name in RAW_MODELS.items()
                },
            )
            .collect()
        )
    raw = frame.select(
        member=(is_active.cum_sum() - is_active.cast(pl.UInt32)).cast(pl.UInt32),
        active=is_active,
        version=pl.col("Clinical_Version"),
        value=_scaled("RAF_Total", 1_000),
        RA_Variable="RA_Variable",
    ).filter(~pl.col("active"))
    first = raw.filter(pl.col("member") != pl.col("member").shift(1).fill_null(members))
    columns = {
        "segment": pl.Series("segment", [None] * members, pl.String).scatter(
            first.get_column("member"), first.get_column("RA_Variable").str.extract(_SEGMENT, 1)
        )
    }
    for version, name in RAW_MODELS.items():
        part = raw.filter(pl.col("version") == version)
        columns[name] = pl.Series(name, [None] * members, pl.Int64).scatter(
            part.get_column("member"), part.get_column("value")
        )
    return pl.DataFrame(columns)


# --------------------------------------------------------------------------- statistics


def _decimal_float(numerator: int, denominator: int, scale: int) -> float:
    """numerator / denominator / scale, rounded half away from zero to 6 decimals."""
    value = (Decimal(numerator) / Decimal(denominator) / Decimal(scale)).quantize(
        Decimal("0.000001"), rounding=ROUND_HALF_UP  # HALF_UP is away from zero in decimal
    )
    return float(value)


def _stat_exprs(column: str) -> list[pl.Expr]:
    col = pl.col(column)
    return [
        col.count().alias(f"{column}|count"),
        col.sum().alias(f"{column}|sum"),
        col.median().alias(f"{column}|median"),
        col.quantile(0.1, "linear").alias(f"{column}|p10"),
        col.quantile(0.9, "linear").alias(f"{column}|p90"),
        col.min().alias(f"{column}|min"),
        col.max().alias(f"{column}|max"),
    ]


def _stats(row: Mapping[str, Any], column: str) -> Stats | None:
    count = int(row[f"{column}|count"] or 0)
    if count == 0:
        return None
    scale = SCORE_COLUMNS[column]

    def scaled(value: Any) -> float:
        return round(float(value) / scale, 6)

    return Stats(
        count=count,
        mean=_decimal_float(int(row[f"{column}|sum"]), count, scale),
        median=scaled(row[f"{column}|median"]),
        p10=scaled(row[f"{column}|p10"]),
        p90=scaled(row[f"{column}|p90"]),
        min=scaled(row[f"{column}|min"]),
        max=scaled(row[f"{column}|max"]),
    )


def _score_stats(row: Mapping[str, Any]) -> ScoreStats:
    return ScoreStats(
        active=_stats(row, "active") or Stats(count=0),
        raw_v28=_stats(row, "raw_v28"),
        raw_v24=_stats(row, "raw_v24"),
        raw_esrd_v24=_stats(row, "raw_esrd_v24"),
    )


def _cents_float(cents: int) -> float:
    return float(Decimal(cents) / 100)


def _round_div(numerator: int, denominator: int) -> int:
    """Integer quotient rounded half away from zero."""
    q, r = divmod(abs(numerator), denominator)
    q += 2 * r >= denominator
    return q if numerator >= 0 else -q


def summarize(
    facts: pl.DataFrame,
    *,
    payment_year: int | None = None,
    members_received: int | None = None,
    errors: pl.DataFrame | None = None,
    diagnoses_summary: Mapping[str, int] | None = None,
    warnings: Iterable[Mapping[str, Any]] = (),
    member_warnings: pl.Series | None = None,
    reference: Mapping[str, Any] | None = None,
) -> RosterSummary:
    """The roster summary of `member_facts` (see the module docstring).

    `errors`: the rejected members (`field` column; one row per member);
    `diagnoses_summary`: reason -> count as in the API (`used` and the reasons);
    `warnings`: top-level warnings `{code, message, count}`; `member_warnings`:
    the active rows' `Warnings` lists, counted by text.
    """
    stat_columns = list(SCORE_COLUMNS)
    priced = pl.col("payment_cents").is_not_null()
    aggregates = [
        *(e for c in stat_columns for e in _stat_exprs(c)),
        pl.len().alias("members"),
        pl.col("months").sum().alias("member_months"),
        (pl.col("active") * pl.col("months")).sum().alias("weighted"),
        priced.sum().alias("priced"),
        pl.col("months").filter(priced).sum().alias("priced_months"),
        pl.col("payment_cents").sum().alias("payment_cents"),
        pl.col("family").first().alias("family"),
    ]
    lf = facts.lazy()
    bin_index = (
        (pl.col("active") // HISTOGRAM_WIDTH_MICRO).clip(0, HISTOGRAM_BINS).alias("bin")
    )
    overall, by_segment, families, ratypes, transition, histogram = pl.collect_all([
        lf.select(aggregates),
        lf.group_by("segment").agg(aggregates).sort("segment"),
        lf.group_by("family").len().sort("family"),
        lf.group_by("RAType").len().sort("RAType"),
        lf.filter(pl.col("raw_v24").is_not_null() & pl.col("raw_v28").is_not_null())
        .group_by("segment")
        .agg(pl.len().alias("n"), pl.col("raw_v24").sum().alias("v24"),
             pl.col("raw_v28").sum().alias("v28"))
        .sort("segment"),
        lf.group_by(bin_index).len().sort("bin"),
    ])
    total = overall.row(0, named=True)
    members = int(total["members"])

    segments = []
    for row in by_segment.iter_rows(named=True):
        cents = int(row["payment_cents"]) if row["priced"] else None
        segments.append(SegmentSummary(
            segment=row["segment"], family=row["family"], members=int(row["members"]),
            member_months=int(row["member_months"]), scores=_score_stats(row),
            members_priced=int(row["priced"]), payment_cents=cents,
            payment=None if cents is None else _cents_float(cents),
        ))

    payment = None
    if total["priced"]:
        cents = int(total["payment_cents"])
        months = int(total["priced_months"])
        pmpm = _round_div(cents, months) if months else None
        payment = Payment(
            members_priced=int(total["priced"]), members_unpriced=members - int(total["priced"]),
            member_months=months, total_cents=cents, total=_cents_float(cents),
            pmpm_cents=pmpm, pmpm=None if pmpm is None else _cents_float(pmpm),
        )

    transitions = None
    transition_overall = None
    if transition.height:
        transitions = [_transition(row["segment"], row["n"], row["v24"], row["v28"])
                       for row in transition.iter_rows(named=True)]
        transition_overall = _transition(
            "all", int(transition["n"].sum()), int(transition["v24"].sum()),
            int(transition["v28"].sum()),
        )

    member_months = int(total["member_months"] or 0)
    errors = errors if errors is not None else pl.DataFrame(schema={"field": pl.String})
    if "message" in errors.columns:  # an identical repeat of a row is not a rejected member
        errors = errors.filter(
            ~pl.col("message").str.starts_with(DUPLICATE_ROW_PREFIX).fill_null(False)
        )
    by_field = dict(errors.group_by("field").len().sort("field").iter_rows()) if errors.height else {}

    return RosterSummary(
        payment_year=payment_year,
        members_received=members_received,
        members_scored=members,
        members_rejected=errors.height,
        by_segment_family={k: int(v) for k, v in families.iter_rows()},
        by_ratype={str(k): int(v) for k, v in ratypes.iter_rows()},
        scores=_score_stats(total),
        by_segment=segments,
        member_months=member_months,
        active_mean_member_month_weighted=_decimal_float(int(total["weighted"]), member_months,
                                                         1_000_000) if member_months else None,
        payment=payment,
        transition=transitions,
        transition_overall=transition_overall,
        rejected=Rejected(members=errors.height, by_field=by_field),
        diagnoses=_diagnoses(diagnoses_summary) if diagnoses_summary is not None else None,
        warnings=[*(_warning(w) for w in warnings), *_member_warnings(member_warnings)],
        reference=dict(reference) if reference else None,
        active_histogram=_histogram(histogram) if members else None,
    )


def _histogram(counts: pl.DataFrame) -> list[HistogramBin]:
    """Every bin from 0 to the highest occupied one (empty bins too: a histogram's gaps are
    information). Negative active scores (none in CMS-HCC) would count in the first bin."""
    by_bin = dict(counts.iter_rows())
    top = max(by_bin)
    width = Decimal(HISTOGRAM_WIDTH_MICRO) / 1_000_000
    return [
        HistogramBin(
            lower=float(width * k),
            upper=None if k == HISTOGRAM_BINS else float(width * (k + 1)),
            members=int(by_bin.get(k, 0)),
        )
        for k in range(top + 1)
    ]


def _transition(segment: str, n: int, v24: int, v28: int) -> Transition:
    return Transition(
        segment=segment, members=int(n),
        mean_raw_v24=_decimal_float(v24, n, 1_000), mean_raw_v28=_decimal_float(v28, n, 1_000),
        effect=_decimal_float(v28 - v24, n, 1_000),
    )


def _diagnoses(counts: Mapping[str, int]) -> DiagnosesSummary:
    dropped = {reason: int(n) for reason, n in counts.items() if reason != "used" and n}
    used = int(counts.get("used", 0))
    return DiagnosesSummary(received=used + sum(dropped.values()), used=used,
                            dropped=sum(dropped.values()), dropped_by_reason=dropped)


def _warning(item: Mapping[str, Any]) -> WarningCount:
    return WarningCount(code=str(item.get("code", "warning")), message=str(item.get("message", "")),
                        count=int(item.get("count", 1)))


def _member_warnings(lists: pl.Series | None) -> list[WarningCount]:
    """Member warnings counted by text (the most frequent first, at most 50 texts)."""
    if lists is None or lists.len() == 0 or lists.dtype == pl.Null:
        return []
    texts = lists.cast(pl.List(pl.String)) if isinstance(lists.dtype, pl.List) else (
        lists.cast(pl.String).str.split("; "))
    counts = (
        texts.explode(empty_as_null=False).drop_nulls().to_frame("message").filter(pl.col("message") != "")
        .group_by("message").len().sort(["len", "message"], descending=[True, False])
        .head(MAX_MEMBER_WARNINGS)
    )
    return [WarningCount(code="member_warning", message=m, count=int(n))
            for m, n in counts.iter_rows()]


# --------------------------------------------------------------------------- sources


def summary_of_rows(
    rows: pl.DataFrame | pl.LazyFrame, **context: Any
) -> RosterSummary:
    """`summarize(member_facts(rows))`, with the active rows' warnings counted."""
    lf = rows.lazy()
    facts = member_facts(lf)
    if "Warnings" in lf.collect_schema().names():
        warnings = lf.filter(pl.col("Active_Score") == 1).select("Warnings").collect()["Warnings"]
        context.setdefault("member_warnings", warnings)
    return summarize(facts, **context)


# --------------------------------------------------------------------------- files


def read_scores(path: Path) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """A scores file written by `raf score` (or a job's result) as response rows, and what its
    envelope says (JSON output: `errors`, `diagnoses_summary`, `member_count`, `reference`)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ValueError(f"{path}: scores file not found")
    context: dict[str, Any] = {}
    if suffix in (".parquet", ".pq"):
        return pl.scan_parquet(path), context
    if suffix == ".csv":
        lf = pl.scan_csv(path, infer_schema=False)
        names = lf.collect_schema().names()
        casts = {"RAF_Total": pl.Float64, "Active_Score": pl.Int8, "Enrollment_Months": pl.Int64,
                 "MA_Payment": pl.Float64, "Payment_Year": pl.Int64}
        return lf.with_columns(pl.col(c).cast(t) for c, t in casts.items() if c in names), context
    if suffix == ".json":
        document = msgspec.json.decode(path.read_bytes())
        if isinstance(document, dict):
            results = document.get("results", [])
            context = {
                "errors": pl.DataFrame(
                    [{"field": e.get("field"), "message": e.get("message")}
                     for e in document.get("errors", []) if e.get("MemberID") is not None],
                    schema={"field": pl.String, "message": pl.String},
                ),
                "diagnoses_summary": document.get("diagnoses_summary"),
                "members_received": document.get("member_count"),
                "reference": document.get("reference"),
            }
        else:
            results = document
        return pl.DataFrame(results, infer_schema_length=None).lazy(), context
    raise ValueError(f"{path}: unsupported scores file type {suffix or '(none)'!r}; "
                     "use .parquet, .csv or .json")


def read_errors(path: Path) -> pl.DataFrame:
    """An errors file (`MemberID, line, field, message`) of `raf score` or a job."""
    frame = (pl.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
             else pl.read_csv(path, infer_schema=False))
    if "field" not in frame.columns:
        raise ValueError(f"{path}: not an errors file (no column 'field')")
    return frame


def summary_of_file(
    scores: Path, errors: Path | None = None, **context: Any
) -> RosterSummary:
    """`raf summary`: the summary of a scores file. Beside it, the errors file
    (`<stem>.errors.csv`) counts the rejected members, and the run summary `raf score`
    writes (`<stem>.run.json`) gives the members received, the diagnoses by reason,
    the data-quality warnings and the reference: with both, the summary equals the
    run's own (`raf score --summary`)."""
    rows, found = read_scores(scores)
    if errors is None:
        beside = scores.with_name(f"{scores.stem}.errors.csv")
        errors = beside if beside.is_file() else None
    if errors is not None:
        found["errors"] = read_errors(errors)
    run_file = scores.with_name(f"{scores.stem}.run.json")
    if run_file.is_file():
        run = msgspec.json.decode(run_file.read_bytes())
        found.update(
            members_received=run.get("member_count"),
            diagnoses_summary=run.get("diagnoses_summary"),
            warnings=run.get("warnings") or (),
            reference=run.get("reference"),
        )
    payment_year = context.get("payment_year")
    if payment_year is None and "Payment_Year" in rows.collect_schema().names():
        years = rows.select(pl.col("Payment_Year").unique()).collect().get_column("Payment_Year")
        payment_year = int(years[0]) if years.len() == 1 and years[0] is not None else None
    return summary_of_rows(rows, **{**found, **context, "payment_year": payment_year})
