"""Plan finance: enrollment months, monthly rates and MA payment dollars on the active row.

Inputs (all optional per member, strings as sent, like every membership field):

* `Enrollment_Months`: whole months enrolled in the payment year, 0-12; or
  `Enrollment_Start` / `Enrollment_End` (ISO dates; a missing start is 1 January,
  a missing end 31 December of the payment year). A span counts the months of
  the payment year whose **first day** lies inside it: MA enrollment is effective
  on the first of a month and CMS pays per enrolled month (42 CFR 422.304(a)),
  so 2025-03-15..2025-08-31 is April-August, 5 months. When both are sent they
  must agree. Neither: 12 (a full-year projection).
* `Monthly_Rate`: the plan's risk-standardized monthly rate in dollars (at most
  two decimals), which wins over any table; or `County` (the 5-digit SSA
  state-county code) looked up in the rate tables (`RateTable`: the request's or
  job's own first, then the configured `RAF_RATES` file). The service ships no
  county rates: CMS publishes ratebooks, and the plan's own rates are what its
  finance uses.

A value that cannot be used makes the member a member error naming the field
(never a guess, never a silent drop). A `County` with no rate in any table is
not an error: the member is scored without dollars and says so in `Warnings`.

Money is integer **cents** (Int64) throughout, rounded half away from zero at
the cent (`engine.blend.round_half_away_from_zero`), never a float sum:

    MA_Payment_Monthly = round_cent(active RAF_Total * Monthly_Rate)
    MA_Payment         = MA_Payment_Monthly * Enrollment_Months

The active total arrives as Int64 millionths and the rate as cents, so the
product is exact (a score under 100 times a rate under $100,000 stays far below
2**63). Floats appear only at the wire (`engine.rows.scaled_to_float`, exact
for two decimals). With `detail`, `payment_lines` itemizes the same money per
`RAF_*` bucket of the active row and per HCC / interaction line of each model:
a line's `RAF_Score` is its contribution to the active score (the coefficient
through the same normalization, coding adjustment and blend weight as its
bucket, `engine.blend`), and its dollars are that times the rate and months.
Each line is rounded to the cent on its own, so lines need not add up to
`MA_Payment` to the cent (as the buckets need not add up to `RAF_Total`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.blend import (
    BUCKETS,
    PARAMETER_SCALE,
    BlendParameters,
    adjusted_micro,
    normalization_key_of,
    round_half_away_from_zero,
)
from engine.rows import BUCKET_FIELDS, scaled_to_float

FINANCE_FIELDS: tuple[str, ...] = (
    "Enrollment_Months",
    "Enrollment_Start",
    "Enrollment_End",
    "County",
    "Monthly_Rate",
)
"""Optional membership fields read by this module (strings as sent)."""

OUTPUT_FIELDS: tuple[str, ...] = (
    "Enrollment_Months",
    "Monthly_Rate",
    "Rate_Source",
    "MA_Payment_Monthly",
    "MA_Payment",
)
"""Columns added to the response rows (set on the active row, null on raw rows)."""

DETAIL_FIELD = "MA_Payment_Detail"
"""With detail: the active row's itemization (list of PaymentLine structs)."""

FULL_YEAR_MONTHS = 12
MAX_RATE_CENTS = 100_000 * 100
"""A monthly rate above $100,000 is certainly a unit mistake (annual, or cents)."""

MEMBER_RATE_SOURCE = "Monthly_Rate"
"""`Rate_Source` when the member's own `Monthly_Rate` was used."""

FINANCE_SCHEMA = {
    "input_index": pl.UInt32,
    "months": pl.Int8,
    "rate_cents": pl.Int64,
    "Rate_Source": pl.String,
    "rate_warning": pl.String,
}

_ERROR_SCHEMA = {
    "MemberID": pl.String,
    "input_index": pl.UInt32,
    "field": pl.String,
    "message": pl.String,
}

_MONEY = r"^(\d{1,9})(?:\.(\d{1,2})0*)?$"
_MONTHS = r"^(\d{1,2})(?:\.0+)?$"
_COUNTY = r"^\d{5}$"


def has_finance_columns(frame: pl.DataFrame | pl.LazyFrame) -> bool:
    """Whether a membership frame carries any finance field (by name)."""
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    return any(name in names for name in FINANCE_FIELDS)


def dollars_to_cents(text: pl.Expr) -> pl.Expr:
    """Cents of a dollar amount written with at most two decimals ("1023.4" -> 102340); null
    when the text is not such an amount (negative, three decimals, "$", thousands commas)."""
    parts = text.str.strip_chars().str.extract_groups(_MONEY)
    whole = parts.struct.field("1").cast(pl.Int64, strict=False)
    cents = parts.struct.field("2").fill_null("").str.pad_end(2, "0").cast(pl.Int64, strict=False)
    return whole * 100 + cents


class RateTableError(ValueError):
    """A rate table that cannot be used; `problems` are (row, field, message): `row` the
    0-based data row (None for the whole table), `message` naming its line or row."""

    def __init__(self, label: str, problems: list[tuple[int | None, str, str]]) -> None:
        self.label = label
        self.problems = problems
        shown = "; ".join(message for _, _, message in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{label}: {shown}{more}")


RATE_COLUMNS = ("payment_year", "county", "monthly_rate", "source")


@dataclass(frozen=True)
class RateTable:
    """County rates: `payment_year` Int32, `county` (5 digits), `rate_cents` Int64, `source`.

    `digest` identifies the content (it is part of the API's member cache key).
    Build with `from_csv` / `from_records`, which validate every row and raise
    `RateTableError` naming the row and column; `layered` stacks tables, the
    first table's rate winning for a (payment_year, county).
    """

    frame: pl.DataFrame
    digest: str
    label: str = "rates"

    @classmethod
    def from_csv(cls, path: str | Path, label: str | None = None) -> RateTable:
        path = Path(path)
        label = label or str(path)
        try:
            raw = pl.read_csv(path, infer_schema=False)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise RateTableError(label, [(None, "rates", f"cannot read rate table: {exc}")]) from exc
        raw = raw.rename({name: name.strip().lower() for name in raw.columns})
        # a row without `source` says the file's name, never the server's path to it
        return cls._validated(raw, label, line_offset=2, row_word="line", source=path.name)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], label: str = "rates") -> RateTable:
        rows = [
            {name: None if r.get(name) is None else str(r.get(name)) for name in RATE_COLUMNS}
            for r in records
        ]
        raw = pl.DataFrame(rows, schema=dict.fromkeys(RATE_COLUMNS, pl.String))
        return cls._validated(raw, label, line_offset=0, row_word="row")

    @classmethod
    def empty(cls) -> RateTable:
        return cls(_empty_rates(), digest="", label="none")

    @classmethod
    def _validated(
        cls, raw: pl.DataFrame, label: str, line_offset: int, row_word: str,
        source: str | None = None,
    ) -> RateTable:
        missing = [c for c in ("payment_year", "county", "monthly_rate") if c not in raw.columns]
        if missing:
            raise RateTableError(
                label,
                [(None, missing[0],
                  f"no column {missing[0]!r} (expected {', '.join(RATE_COLUMNS)})")],
            )
        if "source" not in raw.columns:
            raw = raw.with_columns(source=pl.lit(None, pl.String))
        frame = raw.with_row_index("_row").select(
            "_row",
            _year=pl.col("payment_year").str.strip_chars(),
            county=pl.col("county").str.strip_chars(),
            _rate=pl.col("monthly_rate"),
            payment_year=pl.col("payment_year").str.strip_chars().cast(pl.Int32, strict=False),
            rate_cents=dollars_to_cents(pl.col("monthly_rate")),
            source=pl.coalesce(
                pl.col("source").str.strip_chars().replace("", None), pl.lit(source or label)
            ),
        )
        where = pl.format(f"{row_word} {{}}", pl.col("_row") + line_offset)
        checks = [
            ("payment_year", pl.col("payment_year").is_null(),
             pl.format("{}: payment_year {} is not a year", where, pl.col("_year"))),
            ("county", ~pl.col("county").fill_null("").str.contains(_COUNTY),
             pl.format("{}: county {} is not a 5-digit SSA state-county code", where,
                       pl.col("county"))),
            ("monthly_rate", pl.col("rate_cents").is_null() | (pl.col("rate_cents") > MAX_RATE_CENTS),
             pl.format("{}: monthly_rate {} is not a dollar amount from 0 to 100000 with at most "
                       "two decimals", where, pl.col("_rate"))),
            ("county", pl.struct("payment_year", "county").is_duplicated(),
             pl.format("{}: a second rate for county {} in payment year {}", where,
                       pl.col("county"), pl.col("payment_year"))),
        ]
        problems = frame.select(
            pl.concat_list(
                pl.when(bad).then(
                    pl.struct(row=pl.col("_row").cast(pl.Int64), field=pl.lit(name),
                              message=message)
                )
                for name, bad, message in checks
            ).list.drop_nulls().alias("p")
        ).explode("p", empty_as_null=False).drop_nulls().unnest("p")
        if problems.height:
            raise RateTableError(label, list(problems.iter_rows()))
        frame = frame.select("payment_year", "county", "rate_cents", "source")
        digest = hashlib.sha256(frame.sort("payment_year", "county").write_csv().encode()).hexdigest()
        return cls(frame, digest=digest[:16], label=label)

    @staticmethod
    def layered(*tables: RateTable | None) -> RateTable | None:
        present = [t for t in tables if t is not None and t.frame.height]
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        frame = pl.concat([t.frame for t in present]).unique(
            ["payment_year", "county"], keep="first", maintain_order=True
        )
        return RateTable(frame, digest="+".join(t.digest for t in present), label="+".join(
            t.label for t in present))

    def for_year(self, payment_year: int) -> pl.DataFrame:
        return self.frame.filter(pl.col("payment_year") == payment_year).select(
            "county", "rate_cents", "source"
        )


def _empty_rates() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"payment_year": pl.Int32, "county": pl.String, "rate_cents": pl.Int64,
                "source": pl.String}
    )


def finance_inputs(
    memberships: pl.DataFrame, payment_year: int, rates: RateTable | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per membership row: months, rate and its source (`FINANCE_SCHEMA`), and member errors.

    `memberships`: `input_index`, `MemberID` and any of `FINANCE_FIELDS` (strings;
    absent columns are treated as not sent). A row whose finance values cannot be
    used is one member error (the first bad field) and is left out of the first frame.
    """
    present = set(memberships.columns)

    def text(name: str) -> pl.Expr:
        if name not in present:
            return pl.lit(None, pl.String)
        value = pl.col(name).cast(pl.String).str.strip_chars()
        return pl.when(value != "").then(value)

    year_start = pl.date(payment_year, 1, 1)
    year_end = pl.date(payment_year, 12, 31)
    frame = memberships.lazy().select(
        "input_index",
        "MemberID",
        _months_text=text("Enrollment_Months"),
        _start_text=text("Enrollment_Start"),
        _end_text=text("Enrollment_End"),
        _county=text("County"),
        _rate_text=text("Monthly_Rate"),
    ).with_columns(
        _months=pl.col("_months_text").str.extract(_MONTHS, 1).cast(pl.Int64, strict=False),
        _start=pl.col("_start_text").str.to_date("%Y-%m-%d", strict=False),
        _end=pl.col("_end_text").str.to_date("%Y-%m-%d", strict=False),
        _member_rate=dollars_to_cents(pl.col("_rate_text")),
    )
    has_span = pl.col("_start_text").is_not_null() | pl.col("_end_text").is_not_null()
    # months of the payment year whose first day lies in [start, end], both clipped to the year
    start = pl.max_horizontal(pl.col("_start").fill_null(year_start), year_start)
    end = pl.min_horizontal(pl.col("_end").fill_null(year_end), year_end)
    first_month = start.dt.month().cast(pl.Int64) + (start.dt.day() != 1).cast(pl.Int64)
    span_months = pl.when(end < start).then(0).otherwise(
        pl.max_horizontal(end.dt.month().cast(pl.Int64) - first_month + 1, pl.lit(0))
    )
    frame = frame.with_columns(_span_months=pl.when(has_span).then(span_months))

    checks = [
        ("Enrollment_Months",
         pl.col("_months_text").is_not_null()
         & (pl.col("_months").is_null() | (pl.col("_months") > FULL_YEAR_MONTHS)),
         pl.format("Enrollment_Months {} is not a whole number of months from 0 to 12",
                   pl.col("_months_text"))),
        ("Enrollment_Start", pl.col("_start_text").is_not_null() & pl.col("_start").is_null(),
         pl.format("Enrollment_Start {} is not a date (YYYY-MM-DD)", pl.col("_start_text"))),
        ("Enrollment_End", pl.col("_end_text").is_not_null() & pl.col("_end").is_null(),
         pl.format("Enrollment_End {} is not a date (YYYY-MM-DD)", pl.col("_end_text"))),
        ("Enrollment_End",
         pl.col("_start").is_not_null() & pl.col("_end").is_not_null()
         & (pl.col("_end") < pl.col("_start")),
         pl.format("Enrollment_End {} is before Enrollment_Start {}", pl.col("_end_text"),
                   pl.col("_start_text"))),
        ("Enrollment_Months",
         pl.col("_months").is_not_null() & pl.col("_span_months").is_not_null()
         & (pl.col("_months") != pl.col("_span_months")),
         pl.format(f"Enrollment_Months {{}} disagrees with the enrollment span ({{}} months of "
                   f"PY{payment_year} from Enrollment_Start/Enrollment_End)",
                   pl.col("_months_text"), pl.col("_span_months"))),
        ("County", pl.col("_county").is_not_null() & ~pl.col("_county").str.contains(_COUNTY),
         pl.format("County {} is not a 5-digit SSA state-county code", pl.col("_county"))),
        ("Monthly_Rate",
         pl.col("_rate_text").is_not_null()
         & (pl.col("_member_rate").is_null() | (pl.col("_member_rate") > MAX_RATE_CENTS)),
         pl.format("Monthly_Rate {} is not a dollar amount from 0 to 100000 with at most two "
                   "decimals", pl.col("_rate_text"))),
    ]
    # the first failing check names the member's error (one error per member)
    field = pl.coalesce(*[pl.when(bad).then(pl.lit(name)) for name, bad, _ in checks])
    message = pl.coalesce(*[pl.when(bad).then(msg) for _, bad, msg in checks])
    frame = frame.with_columns(_field=field, _message=message).collect()

    bad = frame.get_column("_field").is_not_null()
    errors = frame.filter(bad).select(
        "MemberID", "input_index", field=pl.col("_field"), message=pl.col("_message")
    ).cast(_ERROR_SCHEMA)
    good = frame.filter(~bad) if errors.height else frame

    table = rates.for_year(payment_year) if rates is not None else _empty_rates().drop(
        "payment_year")
    resolved = (
        good.lazy()
        .join(
            table.lazy().rename({"county": "_county", "rate_cents": "_table_rate",
                                 "source": "_table_source"}),
            on="_county",
            how="left",
        )
        .select(
            "input_index",
            months=pl.coalesce("_months", "_span_months").cast(pl.Int8),
            rate_cents=pl.coalesce("_member_rate", "_table_rate"),
            Rate_Source=pl.when(pl.col("_member_rate").is_not_null())
            .then(pl.lit(MEMBER_RATE_SOURCE))
            .otherwise(pl.col("_table_source")),
            rate_warning=pl.when(
                pl.col("_member_rate").is_null()
                & pl.col("_county").is_not_null()
                & pl.col("_table_rate").is_null()
            ).then(pl.format(f"County {{}} has no rate for PY{payment_year} in the rate table(s); "
                             "no MA_Payment", pl.col("_county"))),
        )
        .cast(FINANCE_SCHEMA)
        .collect()
    )
    return resolved, errors


def conflicting_rows(memberships: pl.DataFrame) -> pl.DataFrame:
    """One member error per MemberID listed on several rows whose finance values differ
    (at its first row): `ratype.normalize` compares the membership fields only, so
    without this a second row's other rate or months would fold into the first."""
    present = [f for f in FINANCE_FIELDS if f in memberships.columns]
    ids = memberships.get_column("MemberID")
    if not present or ids.n_unique() == memberships.height:
        return pl.DataFrame(schema=_ERROR_SCHEMA)
    differing = (
        memberships.lazy()
        .filter(pl.col("MemberID").is_not_null() & pl.col("MemberID").is_duplicated())
        .group_by("MemberID")
        .agg(pl.col("input_index").min(), *(pl.col(f).n_unique().alias(f) for f in present))
        .filter(pl.any_horizontal(pl.col(f) > 1 for f in present))
        .select(
            "MemberID",
            "input_index",
            field=pl.lit("MemberID"),
            message=pl.format(
                "MemberID {} is listed on several rows with different {}; the member is not scored",
                "MemberID",
                pl.concat_str([pl.when(pl.col(f) > 1).then(pl.lit(f)) for f in present],
                              separator=", ", ignore_nulls=True),
            ),
        )
        .sort("input_index")
        .collect()
    )
    return differing.cast(_ERROR_SCHEMA)


def _payment_cents(micro: pl.Expr) -> pl.Expr:
    """round_cent(score * rate) from millionths and cents."""
    return round_half_away_from_zero(micro * pl.col("rate_cents"), PARAMETER_SCALE)


def apply_payments(
    rows: pl.DataFrame,
    active: pl.DataFrame,
    finance: pl.DataFrame,
    params: BlendParameters,
    members: pl.DataFrame,
    trail: Mapping[str, pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Rows with `OUTPUT_FIELDS` (after `Warnings`) on the active row; and with a trail the
    `payment_lines` frame (also attached to the active row as `MA_Payment_Detail`).

    `active`: `engine.blend` active frame (buckets in millionths). `finance`: from
    `finance_inputs`. A member with no finance value at all gets nulls.
    """
    money = (
        active.lazy()
        .select("input_index", *BUCKETS)
        .join(finance.lazy(), on="input_index", how="inner")
        .with_columns(
            Enrollment_Months=pl.when(
                pl.col("months").is_not_null() | pl.col("rate_cents").is_not_null()
            ).then(pl.col("months").fill_null(FULL_YEAR_MONTHS)),
        )
        .with_columns(_monthly=_payment_cents(pl.col("total")))
        .with_columns(
            _payment=pl.col("_monthly") * pl.col("Enrollment_Months").cast(pl.Int64),
        )
        .collect()
    )
    lines = _payment_lines(money, params, members, trail) if trail is not None else None

    wire = money.select(
        pl.col("input_index").cast(pl.UInt32),
        pl.col("Enrollment_Months").cast(pl.Int64),
        Monthly_Rate=scaled_to_float(pl.col("rate_cents"), 2),
        Rate_Source=pl.col("Rate_Source"),
        MA_Payment_Monthly=scaled_to_float(pl.col("_monthly"), 2),
        MA_Payment=scaled_to_float(pl.col("_payment"), 2),
        _warning=pl.col("rate_warning"),
        _active=pl.lit(1, pl.Int8),
    )
    if lines is not None:
        detail = lines.group_by("input_index").agg(
            pl.struct(
                Section="kind", Code="code", Model="model",
                RAF_Score=scaled_to_float(pl.col("score_micro"), 6),
                MA_Payment=scaled_to_float(pl.col("payment_cents"), 2),
            ).alias(DETAIL_FIELD)
        )
        wire = wire.join(detail, on="input_index", how="left")
    order = rows.columns
    at = order.index("Warnings") + 1
    added = [*OUTPUT_FIELDS, *([DETAIL_FIELD] if lines is not None else [])]
    out = rows.join(
        wire, left_on=["input_index", "Active_Score"], right_on=["input_index", "_active"],
        how="left", maintain_order="left",
    )
    if out.get_column("_warning").null_count() < out.height:
        # a County without a rate: say so on the active row, where the dollars would be
        out = out.with_columns(
            pl.when(pl.col("_warning").is_not_null())
            .then(pl.col("Warnings").fill_null([]).list.concat(pl.concat_list("_warning")))
            .otherwise(pl.col("Warnings"))
            .alias("Warnings")
        )
    return out.select(*order[:at], *added, *order[at:]), lines


def _payment_lines(
    money: pl.DataFrame,
    params: BlendParameters,
    members: pl.DataFrame,
    trail: Mapping[str, pl.DataFrame],
) -> pl.DataFrame:
    """`input_index, kind (bucket|hcc|interaction), code, model, score_micro, payment_cents`.

    Buckets: the active row's six `RAF_*` buckets (and no total: that is `MA_Payment`).
    Lines: each model's HCC and interaction coefficients through the blend
    (weight * round6(coefficient / factor * (1 - coding))), rounded to millionths.
    """
    priced = money.filter(pl.col("rate_cents").is_not_null()).select(
        "input_index", "rate_cents", "Enrollment_Months", *BUCKETS
    )
    months = pl.col("Enrollment_Months").cast(pl.Int64)
    buckets = priced.unpivot(
        index=["input_index", "rate_cents", "Enrollment_Months"],
        on=[b for b in BUCKETS if b != "total"],
        variable_name="bucket",
        value_name="score_micro",
    ).select(
        "input_index",
        kind=pl.lit("bucket"),
        code=pl.col("bucket").replace_strict(dict(BUCKET_FIELDS), return_dtype=pl.String),
        model=pl.lit(None, pl.String),
        score_micro="score_micro",
        payment_cents=_payment_cents(pl.col("score_micro")) * months,
        _order=pl.lit(0, pl.Int64),
    )
    coded = []
    for kind, name, code in (("hcc", "hccs", "hcc"), ("interaction", "interactions", "name")):
        frame = trail.get(name)
        if frame is None or not frame.height:
            continue
        code_expr = (
            pl.format("HCC{}", pl.col(code)) if frame.schema[code].is_integer() else pl.col(code)
        )
        coded.append(
            frame.select(
                pl.col("input_index").cast(pl.UInt32), "model", "coefficient_milli",
                kind=pl.lit(kind), code=code_expr.cast(pl.String),
            )
        )
    parts = [buckets.with_columns(pl.col("input_index").cast(pl.UInt32))]
    if coded:
        weights = params.model_weights()
        factors = params.normalization_factors()
        group = members.select(pl.col("input_index").cast(pl.UInt32), "normalization_group")
        lines = (
            pl.concat(coded)
            .join(priced.select(pl.col("input_index").cast(pl.UInt32), "rate_cents",
                                "Enrollment_Months"), on="input_index", how="inner")
            .join(group, on="input_index", how="left")
            .with_columns(normalization_key=normalization_key_of(params))
            .join(weights, on="model", how="left")
            .join(factors, on="normalization_key", how="left")
            .with_columns(
                score_micro=round_half_away_from_zero(
                    pl.col("weight_e6")
                    * adjusted_micro(pl.col("coefficient_milli"), pl.col("factor_e6"),
                                     params.coding_e6 or 0),
                    PARAMETER_SCALE,
                )
            )
            .select(
                "input_index", "kind", "code", "model", "score_micro",
                payment_cents=_payment_cents(pl.col("score_micro")) * months,
                _order=pl.when(pl.col("kind") == "hcc").then(1).otherwise(2).cast(pl.Int64),
            )
        )
        parts.append(lines)
    return (
        pl.concat(parts, how="vertical_relaxed")
        .sort("input_index", "_order", "model", maintain_order=True)
        .drop("_order")
    )
