"""CMS's Monthly Membership Report (MMR) detail file → memberships, one per payment year.

CMS sends each MA contract a fixed-width MMR detail file every month: one record
per member per payment or adjustment month. Its layout is CMS's, published in the
Plan Communications User Guide (PCUG), "Monthly Membership Detail Report" data
file layout. We keep that layout as data, `reference/mmr/layout_pcug_495.csv`
(field, column, start, length, type, description, source, confirmed); a plan
whose PCUG says otherwise passes its corrected copy (`--mmr-layout`,
`RAF_MMR_LAYOUT`). Which positions are confirmed, and from where, is in
`docs/mmr.md`; unconfirmed ones are marked `confirmed=no` in the file itself.

Reading is vectorized: the file is split into lines by polars and every field is
a `str.slice` of the line (positions are bytes: the file is decoded as latin-1,
one character per byte). Records of the wrong length are errors with their line
numbers, as are unreadable fields and unknown RA factor type codes.

Records → memberships, per payment year (`read_mmr`):

1. each record covers the months from its Paymt/Adjustmt Start Date to its End
   Date (blank: its Payment Date month) and pays them (+) or recovers them (-),
   by the sign of its months count;
2. a month counts when what was paid minus what was recovered is at least one;
   its status is the latest paying record's (Payment Date, then line);
3. a month paid twice, without a recovery, with different status is a conflict:
   the member is an error naming the field, never a guess; so is a status that
   changes between counted months (RAType, OREC, DOB, Gender, the Medicaid
   flags) unless the caller asks for the latest month's status
   (`status_rule="latest"`, a documented choice, counted in the summary);
4. `Enrollment_Months` = counted months; `Hospice` = Y if any counted month
   has it; `County` and CMS's risk score are the latest counted month's.

Every record ends up in a membership, in `errors` (by line), or counted in the
summary (blank lines, other payment years, months recovered).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from ratype.normalizer import MEMBERSHIP_FIELDS

LAYOUT_DIR = Path(__file__).resolve().parent.parent / "reference" / "mmr"
DEFAULT_LAYOUT = LAYOUT_DIR / "layout_pcug_495.csv"
LAYOUT_COLUMNS = (
    "number",
    "field",
    "column",
    "start",
    "length",
    "type",
    "description",
    "source",
    "confirmed",
)
FIELD_TYPES = {"record", "str", "date", "yyyymm", "flag", "decimal", "implied_decimal_4", "int"}
#: Columns a layout must give (the membership fields and the payment period).
REQUIRED_COLUMNS = ("MemberID", "PaymentDate", "DOB", "Gender", "RAType", "OREC")
#: Status that must be the same in every counted month of a payment year.
STATUS_FIELDS = ("DOB", "Gender", "RAType", "OREC", "LTIMCAID", "NEMCAID")
#: Membership fields, as `ratype.normalize` reads them.
MEMBERSHIP_COLUMNS = MEMBERSHIP_FIELDS
ERROR_SCHEMA = {
    "MemberID": pl.String,
    "input_index": pl.UInt32,
    "field": pl.String,
    "message": pl.String,
}
StatusRule = Literal["error", "latest"]


class MmrError(Exception):
    """A fatal problem with the MMR file or its layout; the message names the file."""


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """One MMR record layout: `fields` has a row per field read (`column` set)."""

    path: Path
    record_length: int
    fields: pl.DataFrame

    @property
    def version(self) -> str:
        return self.path.stem.removeprefix("layout_")

    def spec(self, column: str) -> dict[str, Any] | None:
        rows = self.fields.filter(pl.col("column") == column)
        return rows.row(0, named=True) if rows.height else None

    def where(self, column: str) -> str:
        """`Risk Adjustment Factor Type Code, positions 189-190` for messages."""
        spec = self.spec(column)
        if spec is None:
            return column
        start, end = spec["start"], spec["start"] + spec["length"] - 1
        positions = f"position {start}" if start == end else f"positions {start}-{end}"
        return f"{spec['field']}, {positions}"


def layout_path(explicit: str | Path | None = None) -> Path:
    """The layout to use: the explicit one, `RAF_MMR_LAYOUT`, or the bundled PCUG layout."""
    chosen = explicit or os.environ.get("RAF_MMR_LAYOUT", "").strip() or DEFAULT_LAYOUT
    return Path(chosen)


def load_layout(path: str | Path | None = None) -> Layout:
    """Read and check a layout file; every problem names the file and the row."""
    path = layout_path(path)
    if not path.is_file():
        raise MmrError(f"{path}: MMR layout file not found")
    try:
        table = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise MmrError(f"{path}: cannot read MMR layout: {exc}") from exc
    missing = [c for c in LAYOUT_COLUMNS if c not in table.columns]
    if missing:
        raise MmrError(f"{path}: MMR layout has no column {missing[0]!r}")
    problems: list[str] = []
    try:
        table = table.with_columns(
            pl.col("start").str.strip_chars().cast(pl.Int64),
            pl.col("length").str.strip_chars().cast(pl.Int64),
            pl.col("column").str.strip_chars().replace("", None),
            pl.col("type").str.strip_chars(),
        )
    except pl.exceptions.PolarsError as exc:
        raise MmrError(f"{path}: `start` and `length` must be whole numbers ({exc})") from exc
    records = table.filter(pl.col("type") == "record")
    if records.height != 1:
        raise MmrError(
            f"{path}: MMR layout needs exactly one row of type `record` (the record length)"
        )
    record_length = int(records["length"][0])
    fields = table.filter((pl.col("type") != "record") & pl.col("column").is_not_null())
    for row_number, row in enumerate(table.iter_rows(named=True), start=2):
        if row["type"] not in FIELD_TYPES:
            problems.append(
                f"row {row_number}: type {row['type']!r} is not one of {sorted(FIELD_TYPES)}"
            )
        if row["start"] < 1 or row["length"] < 1:
            problems.append(f"row {row_number}: start and length must be at least 1")
        elif row["start"] + row["length"] - 1 > record_length:
            problems.append(
                f"row {row_number}: {row['field']!r} ends at {row['start'] + row['length'] - 1}, "
                f"past the record length {record_length}"
            )
    duplicates = fields.filter(pl.col("column").is_duplicated())["column"].unique().to_list()
    if duplicates:
        problems.append(f"column {duplicates[0]!r} is read from two fields")
    for column in REQUIRED_COLUMNS:
        if column not in fields["column"].to_list():
            problems.append(f"no field is read into column {column!r}")
    if problems:
        raise MmrError(f"{path}: MMR layout: " + "; ".join(problems))
    return Layout(path=path, record_length=record_length, fields=fields)


# --------------------------------------------------------------------------- records


def _lines(path: Path) -> pl.DataFrame:
    """`line` (1-based, as an editor numbers them) and `text` of every line of the file.

    Positions are the PCUG's byte positions, so a line must be one character per
    byte. The fast path reads the file as one-column CSV (no quoting, a separator
    that MMR text never holds; polars keeps blank lines as nulls, so line numbers
    hold); if any line is not plain ASCII the file is decoded as latin-1 instead,
    which maps each byte to one character and never fails. A final newline does
    not make an extra line; a trailing carriage return (CRLF files) is dropped.
    """
    if not path.is_file():
        raise MmrError(f"{path}: MMR file not found")
    if path.stat().st_size == 0:
        return pl.DataFrame(schema={"line": pl.UInt32, "text": pl.String})
    lines: pl.Series | None = None
    try:
        frame = pl.read_csv(
            path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            new_columns=["text"],
            schema={"text": pl.String},
            encoding="utf8-lossy",
            raise_if_empty=False,
        )
        if frame.width == 1:
            text = frame["text"].fill_null("")
            if (text.str.len_bytes() == text.str.len_chars()).all():
                lines = text
    except pl.exceptions.PolarsError:
        lines = None
    if lines is None:
        try:
            decoded = path.read_bytes().decode("latin-1")
        except OSError as exc:
            raise MmrError(f"{path}: cannot read MMR file: {exc}") from exc
        lines = pl.Series("text", decoded.removesuffix("\n").split("\n"))
    return (
        lines.alias("text")
        .to_frame()
        .with_row_index("line", offset=1)
        .with_columns(pl.col("text").str.strip_chars_end("\r"))
    )


def _slice(layout: Layout) -> list[pl.Expr]:
    return [
        pl.col("text").str.slice(start - 1, length).str.strip_chars().alias(column)
        for column, start, length in layout.fields.select("column", "start", "length").iter_rows()
    ]


def _problem(condition: pl.Expr, message: pl.Expr | str) -> tuple[pl.Expr, pl.Expr]:
    """A check: the condition that flags a record, and its message (built only for flagged ones)."""
    return condition, message if isinstance(message, pl.Expr) else pl.lit(message)


def _quoted(column: str) -> pl.Expr:
    return pl.lit("'") + pl.col(column).fill_null("") + pl.lit("'")


def _decimal_micro(column: str, implied: bool) -> pl.Expr:
    """A decimal field as Int64 millionths (exact: no float), null when blank or malformed."""
    text = pl.col(column)
    if implied:
        digits = text.str.extract(r"^(-?\d+)$", 1)
        return digits.cast(pl.Int64, strict=False) * 100
    parts = text.str.extract_groups(r"^(-?)(\d*)\.?(\d{0,6})$")
    whole = parts.struct.field("2").replace("", "0").cast(pl.Int64, strict=False)
    frac = parts.struct.field("3").str.pad_end(6, "0").cast(pl.Int64, strict=False)
    sign = pl.when(parts.struct.field("1") == "-").then(-1).otherwise(1)
    return pl.when(text.str.contains(r"^-?(\d+\.?\d*|\.\d+)$")).then(
        sign * (whole * 1_000_000 + frac)
    )


@dataclass
class MmrResult:
    """What one MMR file says for one payment year.

    * `memberships`: the membership fields as strings (`MEMBERSHIP_COLUMNS`),
      `input_index` (= line - 1 of the record that set the member's status, so
      `line = input_index + 1`), `Enrollment_Months` and `County`.
    * `members`: one row per member with counted months in the year, with CMS's
      side for reconciliation (`CMS_Score_micro`, `CMS_RAType`, `CMS_OREC`,
      `CMS_ESRD`, `Enrollment_Months`, `Payment_Months`, `Lines`, `Conflict`).
    * `errors`: `MemberID, input_index, field, message` (malformed records,
      conflicts, members with no counted month); `summary`: counts of everything.
    """

    memberships: pl.DataFrame
    members: pl.DataFrame
    errors: pl.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def parse_records(path: Path, layout: Layout) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Every non-blank line as typed fields, plus the record errors and the blank-line count.

    Records: `line`, `MemberID`, `PaymentDate` (YYYYMM), `start_month`,
    `end_month` (Date, first of month), `sign` (+1 pay, -1 recover, 0 neither),
    the membership fields (DOB as YYYY-MM-DD, flags as Y/N), `ESRD`, `County`,
    `RiskScore_micro`. A record with any problem is in the errors instead, once,
    with every problem in its message.
    """
    raw = _lines(path)
    is_blank = pl.col("text").str.contains(r"^\s*$")
    blank_lines = raw.select(is_blank.sum()).item()
    raw = raw.filter(~is_blank)
    columns = set(layout.fields["column"].to_list())
    n = layout.record_length
    # One lazy query: polars runs the slices and checks in parallel (eager selects
    # measured 3-4x slower on a 240k-record file).
    frame = raw.lazy().with_columns(
        pl.col("text").str.len_chars().alias("_length"), *_slice(layout)
    )

    length = pl.col("_length")
    fixed = length == n

    def where(column: str) -> str:
        return layout.where(column)

    def bad_value(condition: pl.Expr, column: str, what: str) -> tuple[pl.Expr, pl.Expr]:
        """`RAType: 'ZZ' is not an MMR RA factor type code (…, positions 189-190)`."""
        return _problem(
            fixed & condition,
            pl.lit(f"{column}: ") + _quoted(column) + pl.lit(f" is not {what} ({where(column)})"),
        )

    flag_columns = [c for c in layout.fields.filter(pl.col("type") == "flag")["column"].to_list()]
    date_columns = [c for c in layout.fields.filter(pl.col("type") == "date")["column"].to_list()]
    problems = [
        _problem(
            length < n,
            pl.format(
                f"short record: {{}} characters, the MMR layout {layout.version} expects {n}",
                length,
            ),
        ),
        _problem(
            length > n,
            pl.format(
                f"over-long record: {{}} characters, the MMR layout {layout.version} expects {n}",
                length,
            ),
        ),
    ]
    problems += [
        _problem(fixed & (pl.col("MemberID") == ""), f"MemberID: blank ({where('MemberID')})"),
        bad_value(
            ~pl.col("PaymentDate").str.contains(r"^\d{4}(0[1-9]|1[0-2])$"), "PaymentDate", "YYYYMM"
        ),
    ]
    typed: list[pl.Expr] = []
    for column in date_columns:
        parsed = pl.col(column).str.to_date("%Y%m%d", strict=False)
        # DOB is required; a blank Start/End Date means the Payment Date month
        bad = parsed.is_null() & ~((column != "DOB") & (pl.col(column) == ""))
        problems.append(bad_value(bad, column, "a YYYYMMDD date"))
        typed.append(parsed.alias(f"_{column}"))
    for column in flag_columns:
        problems.append(bad_value(~pl.col(column).is_in(["", "Y", "N"]), column, "Y, N or blank"))
    if "Months" in columns:
        months = pl.col("Months").cast(pl.Int64, strict=False)
        problems.append(
            bad_value(months.is_null() & (pl.col("Months") != ""), "Months", "a whole number")
        )
        typed.append(pl.when(pl.col("Months") == "").then(1).otherwise(months).sign().alias("sign"))
    else:
        typed.append(pl.lit(1, pl.Int64).alias("sign"))
    score_spec = layout.spec("RiskScore")
    if score_spec is not None:
        score = _decimal_micro("RiskScore", score_spec["type"] == "implied_decimal_4")
        problems.append(
            bad_value(score.is_null() & (pl.col("RiskScore") != ""), "RiskScore", "a decimal")
        )
        typed.append(score.alias("RiskScore_micro"))
    else:
        typed.append(pl.lit(None, pl.Int64).alias("RiskScore_micro"))
    known_codes = _known_ratype_codes()
    problems.append(
        bad_value(
            (pl.col("RAType") != "") & ~pl.col("RAType").str.to_uppercase().is_in(known_codes),
            "RAType",
            "an MMR RA factor type code",
        )
    )
    # Conditions for every record; messages only for the flagged few (a when/then message
    # would be formatted for every row of the file).
    frame = (
        frame.with_columns(*typed)
        .with_columns(
            pl.any_horizontal(condition for condition, _ in problems).fill_null(True).alias("_bad")
        )
        .collect()
    )
    bad = frame.filter(pl.col("_bad")).with_columns(
        pl.concat_str(
            [pl.when(condition).then(message) for condition, message in problems],
            separator="; ",
            ignore_nulls=True,
        ).alias("_problems")
    )
    errors = bad.select(
        pl.when(pl.col("_length") >= _end_of(layout, "MemberID"))
        .then(pl.col("MemberID").replace("", None))
        .alias("MemberID"),
        (pl.col("line") - 1).cast(pl.UInt32).alias("input_index"),
        _first_field(bad).alias("field"),
        pl.col("_problems").alias("message"),
    )
    good = frame.lazy().filter(~pl.col("_bad"))
    payment_month = pl.col("PaymentDate").str.to_date("%Y%m", strict=False)

    def month_of(column: str) -> pl.Expr:
        if f"_{column}" not in frame.columns:
            return payment_month
        return pl.coalesce(pl.col(f"_{column}").dt.month_start(), payment_month)

    optional = {
        "Hospice": pl.col("Hospice") if "Hospice" in columns else pl.lit(""),
        "ESRD": pl.col("ESRD") if "ESRD" in columns else pl.lit(""),
        "County": pl.col("County") if "County" in columns else pl.lit(None, pl.String),
        "NEMCAID_flag": pl.col("NEMCAID") if "NEMCAID" in columns else pl.lit(""),
        "Medicaid_flag": pl.col("Medicaid") if "Medicaid" in columns else pl.lit(""),
    }
    records = good.select(
        "line",
        "MemberID",
        payment_month.alias("payment_month"),
        month_of("StartDate").alias("start_month"),
        month_of("EndDate").alias("end_month"),
        "sign",
        pl.col("_DOB").dt.strftime("%Y-%m-%d").alias("DOB"),
        pl.col("Gender").str.to_uppercase().alias("Gender"),
        pl.col("RAType").str.to_uppercase().alias("RAType"),
        pl.col("OREC").alias("OREC"),
        *[
            pl.when(expr == "Y").then(pl.lit("Y")).otherwise(pl.lit("N")).alias(name)
            for name, expr in optional.items()
            if name != "County"
        ],
        optional["County"].alias("County"),
        "RiskScore_micro",
    ).collect()
    return records, errors, int(blank_lines)


def _end_of(layout: Layout, column: str) -> int:
    spec = layout.spec(column)
    assert spec is not None
    return int(spec["start"] + spec["length"] - 1)


def _first_field(frame: pl.DataFrame) -> pl.Expr:
    """The field an error is about: `record` for a wrong length, else the first field named."""
    return (
        pl.when(pl.col("_problems").str.contains("record:"))
        .then(pl.lit("record"))
        .otherwise(pl.col("_problems").str.extract(r"^([A-Za-z_]+):", 1))
    )


def _known_ratype_codes() -> list[str]:
    from ratype.tables import code_table

    return code_table()["code"].to_list()


def _applies(codes_column: str) -> list[str]:
    """RA factor type codes whose scoring reads LTIMCAID / NEMCAID (ratype/codes.csv)."""
    from ratype.tables import code_table

    table = code_table()
    return table.filter(pl.col(codes_column) == "yes")["code"].to_list()


# --------------------------------------------------------------------------- memberships


def read_mmr(
    path: str | Path,
    payment_year: int,
    layout: Layout | None = None,
    status_rule: StatusRule = "error",
) -> MmrResult:
    """Parse an MMR detail file into one membership per member for `payment_year`."""
    path = Path(path)
    if not path.is_file():
        raise MmrError(f"{path}: MMR file not found")
    layout = layout or load_layout()
    records, record_errors, blank_lines = parse_records(path, layout)
    records = records.with_columns(
        pl.when(pl.col("RAType").is_in(_applies("ltimcaid_applies")))
        .then(pl.col("Medicaid_flag"))
        .otherwise(pl.lit("N"))
        .alias("LTIMCAID"),
        pl.when(pl.col("RAType").is_in(_applies("nemcaid_applies")))
        .then(pl.col("NEMCAID_flag"))
        .otherwise(pl.lit("N"))
        .alias("NEMCAID"),
    )
    parsed_count = records.height
    bad_span = records.filter(pl.col("end_month") < pl.col("start_month"))
    span_errors = bad_span.select(
        "MemberID",
        (pl.col("line") - 1).cast(pl.UInt32).alias("input_index"),
        pl.lit("EndDate").alias("field"),
        pl.format(
            "EndDate {} is before StartDate {} ({})",
            "end_month",
            "start_month",
            pl.lit(layout.where("EndDate")),
        ).alias("message"),
    )
    records = records.filter(pl.col("end_month") >= pl.col("start_month"))
    rejected_ids = (
        pl.concat([record_errors["MemberID"], span_errors["MemberID"]]).drop_nulls().unique()
    )

    # one row per record per month it covers, kept to the payment year
    months = records.with_columns(
        pl.date_ranges("start_month", "end_month", interval="1mo").alias("month")
    ).explode("month", empty_as_null=True)
    in_year = months.filter(pl.col("month").dt.year() == payment_year)
    lines_in_year = in_year["line"].unique()
    clean = in_year.filter(~pl.col("MemberID").is_in(rejected_ids.implode()))

    # per member-month: net paid, and the latest paying record's status
    keys = ["MemberID", "month"]
    status_cols = list(STATUS_FIELDS)
    month_columns = ["line", *status_cols, "Hospice", "ESRD", "County", "RiskScore_micro"]
    paying = clean.filter(pl.col("sign") > 0)
    # Most member-months have one record (a prospective payment): they are their own
    # summary. Only months with several records (retroactive adjustments) are grouped.
    several = pl.struct(keys).is_duplicated()
    single = clean.filter(~several).select(
        *keys,
        pl.col("sign").alias("net"),
        *[pl.when(pl.col("sign") > 0).then(pl.col(c)).alias(c) for c in month_columns],
    )
    multiple = clean.filter(several)
    latest = (
        multiple.filter(pl.col("sign") > 0)
        .sort("payment_month", "line")
        .unique(subset=keys, keep="last")
    )
    per_month = pl.concat(
        [
            single,
            multiple.group_by(keys)
            .agg(pl.col("sign").sum().alias("net"))
            .join(latest.select(*keys, *month_columns), on=keys, how="left")
            .select(single.columns),
        ],
        how="vertical_relaxed",
    )
    counted = per_month.filter(pl.col("net") >= 1).sort("MemberID", "month")
    twice = counted.filter(pl.col("net") >= 2).select(*keys, "net")
    month_conflicts = _month_conflicts(paying.join(twice, on=keys), layout)
    # Status changing between counted months: few members, found by distinct status rows.
    changed_ids = (
        counted.select("MemberID", *status_cols)
        .unique()
        .group_by("MemberID")
        .len()
        .filter(pl.col("len") > 1)["MemberID"]
    )
    month_text = pl.col("month").dt.strftime("%Y-%m")
    members = (
        counted.group_by("MemberID", maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("Enrollment_Months"),
            month_text.alias("Payment_Months"),
            (pl.col("Hospice") == "Y").sum().cast(pl.Int64).alias("Hospice_Months"),
            pl.col("RiskScore_micro").drop_nulls().n_unique().alias("CMS_Scores_Distinct"),
        )
        .join(
            counted.unique(subset="MemberID", keep="last", maintain_order=True).select(
                "MemberID",
                pl.col("line").alias("status_line"),
                *status_cols,
                pl.col("ESRD").alias("CMS_ESRD"),
                "County",
                pl.col("RiskScore_micro").alias("CMS_Score_micro"),
                month_text.alias("CMS_Payment_Month"),
            ),
            on="MemberID",
        )
        .with_columns(
            pl.when(pl.col("Hospice_Months") > 0)
            .then(pl.lit("Y"))
            .otherwise(pl.lit("N"))
            .alias("Hospice"),
            pl.col("RAType").alias("CMS_RAType"),
            pl.col("OREC").alias("CMS_OREC"),
        )
    )
    members = members.join(
        clean.group_by("MemberID").agg(pl.col("line").unique().sort().alias("Lines")),
        on="MemberID",
        how="left",
    )
    status_conflicts = _status_conflicts(
        counted.filter(pl.col("MemberID").is_in(changed_ids.implode()))
    )
    conflict = pl.concat([month_conflicts, status_conflicts], how="vertical_relaxed")
    conflict_first = conflict.group_by("MemberID", maintain_order=True).agg(
        pl.col("field").first(), pl.col("message").str.join("; ")
    )
    members = members.join(
        conflict_first.rename({"field": "Conflict_Field", "message": "Conflict"}),
        on="MemberID",
        how="left",
    )
    month_conflict_ids = month_conflicts["MemberID"].unique().implode()
    status_conflict_ids = status_conflicts["MemberID"].unique().implode()
    reject = pl.col("MemberID").is_in(month_conflict_ids) | (
        pl.lit(status_rule == "error") & pl.col("MemberID").is_in(status_conflict_ids)
    )
    conflict_errors = members.filter(reject).select(
        "MemberID",
        (pl.col("status_line") - 1).cast(pl.UInt32).alias("input_index"),
        pl.col("Conflict_Field").alias("field"),
        pl.format("payment year {}: {}", pl.lit(payment_year), pl.col("Conflict")).alias("message"),
    )
    # members with records in the year but no month left standing
    with_months = members["MemberID"].implode()
    uncounted = (
        clean.filter(~pl.col("MemberID").is_in(with_months))
        .group_by("MemberID", maintain_order=True)
        .agg(
            pl.col("line").min(),
            pl.col("line").unique().sort().cast(pl.String).str.join(", ").alias("lines"),
        )
        .select(
            "MemberID",
            (pl.col("line") - 1).cast(pl.UInt32).alias("input_index"),
            pl.lit("Months").alias("field"),
            pl.format(
                "payment year {}: no month is left paid: every month these records pay is "
                "recovered by another record (lines {})",
                pl.lit(payment_year),
                "lines",
            ).alias("message"),
        )
    )
    scored = members.filter(~reject)
    memberships = scored.select(
        *MEMBERSHIP_COLUMNS,
        (pl.col("status_line") - 1).cast(pl.UInt32).alias("input_index"),
        pl.col("Enrollment_Months").cast(pl.String),
        "County",
    ).sort("input_index")
    errors = pl.concat(
        [e.cast(ERROR_SCHEMA) for e in (record_errors, span_errors, conflict_errors, uncounted)],
        how="vertical",
    ).sort("input_index")
    members = members.drop("status_line")
    all_members = pl.concat([records["MemberID"], record_errors["MemberID"].drop_nulls()]).unique()
    valid_records = records.height
    summary = {
        "file": str(path),
        "layout": layout.version,
        "payment_year": payment_year,
        "lines": int(blank_lines + parsed_count + record_errors.height),
        "blank_lines": int(blank_lines),
        "records": int(parsed_count + record_errors.height),
        "malformed_records": int(record_errors.height + span_errors.height),
        "records_in_payment_year": int(lines_in_year.len()),
        "records_other_years": int(valid_records - lines_in_year.len()),
        "members_in_file": int(all_members.len()),
        "memberships": int(memberships.height),
        "members_rejected": int(errors["MemberID"].drop_nulls().n_unique()),
        "months_counted": int(counted.height),
        "months_recovered": int(per_month.filter(pl.col("net") <= 0).height),
        "months_paid_twice": int(counted.filter(pl.col("net") >= 2).height),
        "status_rule": status_rule,
        "members_status_changed": int(status_conflicts["MemberID"].n_unique()),
    }
    return MmrResult(memberships=memberships, members=members, errors=errors, summary=summary)


def _month_conflicts(paying: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """A month paid more than once (no recovery in between) by records whose status differs.

    `paying`: the paying records of the months whose net payment is 2 or more."""
    empty = pl.DataFrame(schema={"MemberID": pl.String, "field": pl.String, "message": pl.String})
    if paying.height == 0:
        return empty
    per_month = (
        paying.sort("line")
        .group_by("MemberID", "month", maintain_order=True)
        .agg(
            pl.col("net").first(),
            pl.col("line").cast(pl.String).str.join(", ").alias("lines"),
            *[pl.col(c).n_unique().alias(f"_n_{c}") for c in STATUS_FIELDS],
            *[
                pl.col(c)
                .fill_null("blank")
                .unique(maintain_order=True)
                .str.join(" vs ")
                .alias(f"_v_{c}")
                for c in STATUS_FIELDS
            ],
        )
    )
    parts = [
        per_month.filter(pl.col(f"_n_{column}") > 1).select(
            "MemberID",
            "month",
            pl.lit(column).alias("field"),
            pl.format(
                "{} is paid by {} records (lines {}) with different {} ({}) and no recovery; "
                "which one stands is not guessed",
                pl.col("month").dt.strftime("%Y-%m"),
                pl.col("net"),
                pl.col("lines"),
                pl.lit(column),
                pl.col(f"_v_{column}"),
            ).alias("message"),
        )
        for column in STATUS_FIELDS
    ]
    return pl.concat(parts).sort("MemberID", "month", maintain_order=True).drop("month")


def _status_conflicts(counted: pl.DataFrame) -> pl.DataFrame:
    """Status that changes between counted months: `RAType differs ... (CN 2025-01..2025-06;
    I 2025-07..2025-12)`. `counted`: the counted months of members whose status changes."""
    parts = []
    for column in STATUS_FIELDS:
        runs = (
            counted.sort("MemberID", "month")
            .with_columns(
                (pl.col(column).fill_null("blank") != pl.col(column).fill_null("blank").shift())
                .over("MemberID")
                .fill_null(True)
                .cum_sum()
                .alias("_run")
            )
            .group_by("MemberID", "_run", maintain_order=True)
            .agg(
                pl.col(column).first().fill_null("blank").alias("value"),
                pl.col("month").first().dt.strftime("%Y-%m").alias("first"),
                pl.col("month").last().dt.strftime("%Y-%m").alias("last"),
            )
            .group_by("MemberID", maintain_order=True)
            .agg(
                pl.format("{} {}..{}", "value", "first", "last").str.join("; ").alias("runs"),
                pl.col("value").n_unique().alias("values"),
            )
            .filter(pl.col("values") > 1)
        )
        parts.append(
            runs.select(
                "MemberID",
                pl.lit(column).alias("field"),
                pl.format(
                    "{} differs between payment months ({}); one membership per payment year "
                    "needs one {} (correct the file, or score with the latest month's status)",
                    pl.lit(column),
                    "runs",
                    pl.lit(column),
                ).alias("message"),
            )
        )
    return pl.concat(parts)
