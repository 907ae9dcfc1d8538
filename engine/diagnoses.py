"""Stage 1: clean diagnosis rows and decide which ones the year counts.

Rules (``docs/scoring.md`` "Payment years" and stage 1):

* codes are trimmed, upper-cased and stripped of dots (CMS's formats key on the
  undotted code, e.g. ``F13229``);
* a diagnosis counts when its ``ThruDOS`` falls in the collection year, the
  calendar year before the payment year. CMS's programs take no dates at all
  (the caller selects the year's diagnoses); we do the selection here.
* dates are ``YYYY-MM-DD``; a row whose FromDOS or ThruDOS does not parse, or
  whose ThruDOS is before its FromDOS, is ignored with ``invalid_dates``;
* a diagnosis whose MemberID is not among the *scorable* members is ignored
  with ``unknown_member``. This covers both IDs absent from the roster and
  members rejected by ``ratype.normalize`` (the engine only sees scorable
  members, so it cannot tell them apart; the member's own error says why);
* a code is valid only on the dates of service of its ICD-10-CM fiscal years
  (1 Oct - 30 Sep): a row whose ThruDOS falls outside its code's validity
  (``YearTables.dated_codes``, from ``reference/data/icd10cm/codes.csv``) is
  ignored with ``invalid_on_service_date`` (``G35A``, new on 2025-10-01, on a
  2024 date; ``C8600`` before 2024-10-01; ``C860`` after 2024-09-30);
* exact repeats (same member, cleaned code, FromDOS, ThruDOS) change nothing:
  the first occurrence (lowest diagnosis ``input_index``) is screened, later
  ones are reported with ``duplicate`` so the summary still adds up to the
  number of diagnosis rows received.

Reason precedence for one row: ``duplicate``, ``unknown_member``,
``invalid_dates``, ``outside_collection_year``, ``invalid_on_service_date``.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from engine.memo import derived

#: Screening reasons, in precedence order (module docstring).
REASONS = (
    "duplicate",
    "unknown_member",
    "invalid_dates",
    "outside_collection_year",
    "invalid_on_service_date",
)

DROPPED_COLUMNS = ["dx_index", "input_index", "MemberID", "DxCode", "FromDOS", "ThruDOS", "reason"]


def clean_code(expr: pl.Expr) -> pl.Expr:
    """Trim, upper-case, remove dots: ``" f13.229 "`` -> ``"F13229"``."""
    return expr.str.strip_chars().str.to_uppercase().str.replace_all(".", "", literal=True)


def _parse_date(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)


def reason_name(reason: pl.Expr) -> pl.Expr:
    """``screen_reason`` (Int8, index into ``REASONS``) -> its name (null stays null)."""
    return reason.replace_strict(dict(enumerate(REASONS)), return_dtype=pl.Utf8)


def prepare(diagnoses: pl.DataFrame) -> pl.DataFrame:
    """Typed, cleaned copy of the request's diagnoses with a stable ``dx_index``."""
    return _prepared(diagnoses).drop("_from_trimmed", "_thru_trimmed").collect()


def _prepared(diagnoses: pl.DataFrame) -> pl.LazyFrame:
    """``prepare`` (lazy) plus the trimmed date strings (``_from_trimmed``, ``_thru_trimmed``),
    trimmed once for both the date parse and the exact-repeat key."""
    frame = diagnoses
    for column in ("MemberID", "FromDOS", "ThruDOS", "DxCode"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(column))
    if "input_index" not in frame.columns:
        frame = frame.with_row_index("input_index")
    columns, dates = _prepared_exprs()
    return frame.lazy().select(columns).with_columns(dates)


@lru_cache(maxsize=1)
def _prepared_exprs() -> tuple[tuple[pl.Expr, ...], tuple[pl.Expr, ...]]:
    """``_prepared``'s columns, then its parsed dates: built once (per call, building
    them cost about as much as running them on a one-member request)."""
    columns = (
        pl.col("input_index").cast(pl.UInt32).alias("dx_index"),
        pl.col("MemberID").cast(pl.Utf8),
        pl.col("DxCode").cast(pl.Utf8),
        pl.col("FromDOS").cast(pl.Utf8),
        pl.col("ThruDOS").cast(pl.Utf8),
        clean_code(pl.col("DxCode").cast(pl.Utf8)).fill_null("").alias("code"),
        pl.col("FromDOS").cast(pl.Utf8).str.strip_chars().alias("_from_trimmed"),
        pl.col("ThruDOS").cast(pl.Utf8).str.strip_chars().alias("_thru_trimmed"),
    )
    dates = (
        # same as _parse_date (the strings are already trimmed)
        pl.col("_from_trimmed").str.to_date("%Y-%m-%d", strict=False).alias("from_date"),
        pl.col("_thru_trimmed").str.to_date("%Y-%m-%d", strict=False).alias("thru_date"),
    )
    return columns, dates


def screen_query(
    diagnoses: pl.DataFrame,
    members: pl.DataFrame | pl.LazyFrame,
    collection_year: int,
    dated_codes: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Every diagnosis row, in ``dx_index`` order, with its screening reason (lazy).

    ``members`` (eager or lazy): ``MemberID, input_index`` and any other member
    columns the caller wants on each diagnosis (null for an unknown member;
    MemberIDs are distinct, as ``ratype.normalize`` leaves them). Columns: ``dx_index,
    MemberID, DxCode, FromDOS, ThruDOS, code``, the member columns and
    ``screen_reason`` (Int8 index into ``REASONS``; null = the row counts).
    ``dated_codes``: ``code, valid_from, valid_to`` (``YearTables.dated_codes``).
    """
    dx = _prepared(diagnoses)
    member_ids = members.lazy().with_columns(pl.col("MemberID").cast(pl.Utf8))
    reason = _screen_reason(collection_year)
    if dated_codes is not None and dated_codes.height:
        outside_validity = _outside_validity(dated_codes)
        reason = (
            pl.when(reason.is_null() & outside_validity)
            .then(pl.lit(REASONS.index("invalid_on_service_date"), pl.Int8))
            .otherwise(reason)
            .alias("screen_reason")
        )
    return (
        dx.sort("dx_index")
        .join(member_ids, on="MemberID", how="left", maintain_order="left")
        .with_columns(reason)
        .drop("_from_trimmed", "_thru_trimmed", "from_date", "thru_date")
    )


def _outside_validity(dated_codes: pl.DataFrame) -> pl.Expr:
    """True when the row's code is one of ``dated_codes`` and its ThruDOS is outside the
    code's ``[valid_from, valid_to]``. A lookup of the few hundred dated codes
    (``replace_strict``) rather than a join: most rows' codes are not among them."""

    def build() -> pl.Expr:
        codes = dated_codes.get_column("code")
        open_from, open_to = pl.date(1900, 1, 1), pl.date(9999, 12, 31)
        valid_from = pl.col("code").replace_strict(
            codes, dated_codes.get_column("valid_from"), default=None, return_dtype=pl.Date
        )
        valid_to = pl.col("code").replace_strict(
            codes, dated_codes.get_column("valid_to"), default=None, return_dtype=pl.Date
        )
        listed = pl.col("code").is_in(codes.implode())
        return listed & (
            (pl.col("thru_date") < valid_from.fill_null(open_from))
            | (pl.col("thru_date") > valid_to.fill_null(open_to))
        )

    return derived(dated_codes, "outside_validity", build)


@lru_cache(maxsize=8)
def _screen_reason(collection_year: int) -> pl.Expr:
    """``screen_reason`` of ``screen_query``, built once per collection year."""
    # valid dates are YYYY-MM-DD, so equal dates have equal trimmed strings
    repeat_key = pl.struct("MemberID", "code", "_from_trimmed", "_thru_trimmed")
    # reasons as small integers (index into REASONS) while screening; names only on drops
    reason = (
        pl.when(~repeat_key.is_first_distinct())
        .then(pl.lit(0, pl.Int8))
        .when(pl.col("input_index").is_null())
        .then(pl.lit(1, pl.Int8))
        .when(
            pl.col("from_date").is_null()
            | pl.col("thru_date").is_null()
            | (pl.col("thru_date") < pl.col("from_date"))
        )
        .then(pl.lit(2, pl.Int8))
        .when(pl.col("thru_date").dt.year() != collection_year)
        .then(pl.lit(3, pl.Int8))
        .otherwise(pl.lit(None, dtype=pl.Int8))
    )
    return reason.alias("screen_reason")


def screen(
    diagnoses: pl.DataFrame, members: pl.DataFrame, collection_year: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split diagnoses into counted rows and ignored rows.

    ``members``: at least ``MemberID, input_index``. Returns ``(counted, dropped)``;
    ``counted`` has ``dx_index, input_index, MemberID, DxCode, FromDOS, ThruDOS,
    code``; ``dropped`` has ``DROPPED_COLUMNS``.
    """
    screened = screen_query(
        diagnoses, members.select("MemberID", "input_index"), collection_year
    )
    counted = screened.filter(pl.col("screen_reason").is_null()).select(
        "dx_index", "input_index", "MemberID", "DxCode", "FromDOS", "ThruDOS", "code"
    )
    dropped = (
        screened.filter(pl.col("screen_reason").is_not_null())
        .with_columns(reason_name(pl.col("screen_reason")).alias("reason"))
        .select(DROPPED_COLUMNS)
    )
    counted, dropped = pl.collect_all([counted, dropped])
    return counted, dropped
