"""RAType normalizer: route every membership row to its model and segment.

Contract: ``docs/ARCHITECTURE.md`` "Members frame (ratype.normalize)"; rules:
``docs/scoring.md`` "Segments from RAType" (with the evidence for each rule).

CMS rules used here (SAS text in the hccpy 0.1.9 wheel, ``hccpy/data/``):

* Age: completed years on February 1 of the payment year
  (V2419P1M / V2823T2M ``AGEF = FLOOR((INTCK('MONTH',DOB,&DATE_ASOF) -
  (DAY(&DATE_ASOF) < DAY(DOB)))/12)`` with ``DATE_ASOF`` = Feb 1). That is
  ``year difference - 1 if (month, day) of birth is after (2, 1)``: a birthday
  on Feb 1 counts, a Feb 29 birthday behaves like any date after Feb 1.
* ``DISABL = (AGEF < 65 & OREC ne "0")`` and ``ORIGDS = (OREC = '1')*(DISABL = 0)``
  (AGESEXV2.TXT), i.e. ORIGDS only for OREC 1 and age >= 65 (not OREC 3).
* New-enrollee cells (AGESEXV2.TXT ``NE_AGESEX``): single years 65..69 and
  ``AGEF=64 & OREC='0'`` counted in the 65 cell. ESRD dialysis new enrollees
  (``DNE_``, ten bands) take the same recode: E2118P1M line 379 bumps AGEF 64
  with OREC 0 to 65 before building ``NEF65_69 = SUM(NEF65..NEF69)`` (line
  435); risk_compose's ESRD V24 port does the same.
* ``ne_aged`` (age >= 65, or 64 with OREC 0) is CMS's "NE_Aged" rule for the
  ESRD V24 new-enrollee graft duration term (ports of the CMS ESRD V24 package).
* ``NE_ORIGDS = (AGEF>=65)*(OREC='1')`` for CMS-HCC and graft new enrollees,
  ``NE_ORIGDS = (OREC='1')`` at any age for dialysis new enrollees (E2118P1M
  lines 459/471; the V24 dialysis-NE ORIGDIS cells exist for every age band).

Display rules (reference API, not CMS): OREC 0 under 65 is shown as "1" for
CN/CP/CF and as "2" for the ESRD codes (``codes.csv`` ``orec0_under65_shown``);
scoring keeps the given OREC, as CMS's programs do. Hospice is echoed: no CMS
program reads it. LTIMCAID is read only for RAType I, NEMCAID only for
E/ED/E1/E2; a Y elsewhere is shown as N and ignored with a warning (as the
reference API forces it to N). Missing or empty Y/N flags count as N.

Nothing here raises for a bad member: every input row ends up in ``members``
or, once per rejected MemberID, in ``errors``.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from ratype.tables import BAND_TABLE_MAX_AGE, age_band_array, routing_table

MEMBERSHIP_FIELDS = ("MemberID", "DOB", "Gender", "RAType", "Hospice", "LTIMCAID", "NEMCAID",
                     "OREC")
YES_NO_FIELDS = ("Hospice", "LTIMCAID", "NEMCAID")
NEW_ENROLLEE_BAND_SCHEMES = ("ne", "dialysis_ne")
AGE_WARNING_ABOVE = 100
OREC_VALUES = {"0": 0, "1": 1, "2": 2, "3": 3}
GENDER_VALUES = {"M": "M", "F": "F", "m": "M", "f": "F", "1": "M", "2": "F"}
YES_NO_VALUES = {"Y": "Y", "y": "Y", "N": "N", "n": "N", "": "N"}

MEMBERS_SCHEMA = {
    "MemberID": pl.Utf8,
    "BirthDate_Org": pl.Utf8,
    "BirthDate": pl.Utf8,
    "Age": pl.Int16,
    "Age_Band": pl.Utf8,
    "Gender_Org": pl.Utf8,
    "Gender": pl.Utf8,
    "RAType_Org": pl.Utf8,
    "RAType": pl.Utf8,
    "Hospice_Org": pl.Utf8,
    "Hospice": pl.Utf8,
    "LTIMCAID_Org": pl.Utf8,
    "LTIMCAID": pl.Utf8,
    "NEMCAID_Org": pl.Utf8,
    "NEMCAID": pl.Utf8,
    "OREC_Org": pl.Utf8,
    "OREC": pl.Utf8,
    "Originally_Disabled": pl.Utf8,
    "Originally_ESRD": pl.Utf8,
    "input_index": pl.UInt32,
    "age": pl.Int16,
    "sex": pl.Utf8,
    "orec": pl.Int8,
    "model_family": pl.Utf8,
    "segment": pl.Utf8,
    "disabl": pl.Boolean,
    "origds": pl.Boolean,
    "ne_origds": pl.Boolean,
    "ltimcaid": pl.Boolean,
    "nemcaid": pl.Boolean,
    "fbd": pl.Boolean,
    "pbd": pl.Boolean,
    "lti": pl.Boolean,
    "graft_duration": pl.Utf8,
    "transplant_month": pl.Int8,
    "aged": pl.Boolean,
    "ne_aged": pl.Boolean,
    "normalization_group": pl.Utf8,
    "warnings": pl.List(pl.Utf8),
}

#: ``duplicate_of``: for a row that repeats an earlier row exactly, that row's
#: ``input_index`` (the member is scored once, from it); null for every other error.
ERRORS_SCHEMA = {"MemberID": pl.Utf8, "input_index": pl.UInt32, "field": pl.Utf8,
                 "message": pl.Utf8, "duplicate_of": pl.UInt32}


def normalize(memberships: pl.DataFrame, payment_year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Standardize memberships and route each member to its model and segment.

    ``memberships``: string columns as sent (any of MEMBERSHIP_FIELDS may be
    missing or null), plus ``input_index`` (UInt32; added from row order if
    absent). Returns ``(members, errors)`` with MEMBERS_SCHEMA / ERRORS_SCHEMA,
    both ordered by ``input_index``. Each input row is in ``members`` or has an
    error of its own: a row identical to an earlier one is an error naming that
    row (``duplicate_of``; the member is scored once, from the earlier row, which
    carries a warning), and every row of a MemberID with conflicting rows is an
    error.
    """
    rows = _prepare(memberships)
    rows, duplicate_errors = _collapse_duplicates(rows)
    parsed = _parse(rows, payment_year)
    valid = parsed.get_column("_valid")
    if valid.all():  # the usual batch: no filtering, no error messages to build
        return _members(parsed), duplicate_errors
    members = _members(parsed.filter(valid))
    rejected = _member_errors(parsed.filter(~valid), payment_year)
    if duplicate_errors.height:
        rejected = pl.concat([duplicate_errors, rejected]).sort("input_index")
    return members, rejected


def _prepare(memberships: pl.DataFrame) -> pl.DataFrame:
    """Membership fields as strings (missing columns as nulls) plus ``input_index``."""
    if memberships.schema == _PREPARED_SCHEMA:  # as engine.run.with_string_columns shapes it
        prepared = memberships
    else:
        prepared = _shaped(memberships)
    # Everything downstream keeps row order, so ordering once here orders both outputs.
    if not prepared["input_index"].is_sorted():
        prepared = prepared.sort("input_index")
    return prepared


_PREPARED_SCHEMA = pl.Schema({"input_index": pl.UInt32, **dict.fromkeys(MEMBERSHIP_FIELDS, pl.Utf8)})


def _shaped(memberships: pl.DataFrame) -> pl.DataFrame:
    present = set(memberships.columns)
    if "input_index" not in present:
        memberships = memberships.with_row_index("input_index")
    return memberships.select(
        pl.col("input_index").cast(pl.UInt32),
        *[
            (pl.col(field).cast(pl.Utf8) if field in present else pl.lit(None, pl.Utf8)).alias(field)
            for field in MEMBERSHIP_FIELDS
        ],
    )


def _format(template: str, *values: str | pl.Expr) -> pl.Expr:
    """``pl.format`` built from concat_str with explicit casts.

    polars 1.44 ``pl.format`` panicked ("assertion failed: i < self.len()",
    binview/mod.rs:412) on an Int32 column of a filtered multi-chunk frame;
    concat_str over ``cast(pl.Utf8)`` does the same job without it. Like
    ``pl.format``, a null value gives a null message.
    """
    pieces = template.split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"{template!r} needs {len(pieces) - 1} values, got {len(values)}")
    parts: list[pl.Expr] = []
    for piece, value in zip(pieces, [*values, None]):
        if piece:
            parts.append(pl.lit(piece))
        if value is not None:
            parts.append((pl.col(value) if isinstance(value, str) else value).cast(pl.Utf8))
    return pl.concat_str(parts)


def _blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


#: How the error of a row identical to an earlier row starts: such a row is a repeat of a
#: member, not a rejected one (readers of an errors file tell them apart by it).
DUPLICATE_ROW_PREFIX = "identical duplicate of "


def duplicate_row_message(earlier_row: pl.Expr) -> pl.Expr:
    """Error message of a row identical to an earlier row; ``earlier_row`` names that row
    as the caller's user knows it (``memberships[3]`` in a request, ``line 5`` in a file)."""
    return _format(
        DUPLICATE_ROW_PREFIX + "{} (MemberID {}, every field the same); that row answers "
        "for this one, so the member counts once", earlier_row, "MemberID",
    )


def _collapse_duplicates(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first of identical rows; give every other row of a shared MemberID an error.

    Identical rows (every field as sent) collapse into the first, which carries
    the count in ``_copies`` for its warning; each later copy is an error naming
    the first (``memberships[<input_index>]``; ``duplicate_of`` holds the index so
    a file reader can name its line instead). Different rows for one MemberID
    reject that MemberID: every one of its rows gets the same error naming the
    fields that differ. Rows with a blank MemberID are left alone: each gets its
    own MemberID error later.
    """
    no_errors = pl.DataFrame(schema=ERRORS_SCHEMA)
    # Fast path: all MemberIDs distinct (the usual roster) means no duplicates at all
    # (`_parse` then counts every row as one copy).
    if rows["MemberID"].n_unique() == rows.height:
        return rows, no_errors

    has_id = ~_blank("MemberID")
    shared_id = has_id & pl.col("MemberID").is_duplicated()
    rows = rows.with_columns(shared_id.alias("_shared_id"))
    single = rows.filter(~pl.col("_shared_id")).with_columns(pl.lit(1, pl.UInt32).alias("_copies"))
    shared = rows.filter(pl.col("_shared_id")).with_columns(
        pl.len().over(MEMBERSHIP_FIELDS).cast(pl.UInt32).alias("_copies"),
        pl.col("input_index").min().over(MEMBERSHIP_FIELDS).alias("_first"),
        (pl.struct(MEMBERSHIP_FIELDS).n_unique().over("MemberID") > 1).alias("_conflict"),
    )
    conflicting = shared.filter("_conflict")
    conflict_errors = conflicting.select(
        "MemberID",
        "input_index",
        pl.lit("MemberID").alias("field"),
        _format(
            "MemberID {} is listed with {} different sets of values (conflicting {}); "
            "the member is not scored",
            "MemberID",
            pl.struct(MEMBERSHIP_FIELDS).n_unique().over("MemberID"),
            pl.concat_str(
                [
                    pl.when(pl.col(field).n_unique().over("MemberID") > 1).then(pl.lit(field))
                    for field in MEMBERSHIP_FIELDS[1:]
                ],
                separator=", ",
                ignore_nulls=True,
            ),
        ).alias("message"),
        pl.lit(None, pl.UInt32).alias("duplicate_of"),
    )
    agreeing = shared.filter(~pl.col("_conflict"))
    is_first = pl.col("input_index") == pl.col("_first")
    repeat_errors = agreeing.filter(~is_first).select(
        "MemberID",
        "input_index",
        pl.lit("MemberID").alias("field"),
        duplicate_row_message(_format("memberships[{}]", "_first")).alias("message"),
        pl.col("_first").alias("duplicate_of"),
    )
    errors = pl.concat([conflict_errors, repeat_errors]).cast(ERRORS_SCHEMA).sort("input_index")
    kept = pl.concat([single, agreeing.filter(is_first)], how="diagonal")
    return kept.drop("_shared_id", "_conflict", "_first").sort("input_index"), errors


def _parse(rows: pl.DataFrame, payment_year: int) -> pl.DataFrame:
    """Parse every field, find the code's row in codes.csv, and flag rows with no problem.

    Values are matched exactly against small maps (case-insensitive where the
    spec allows lower case; no whitespace trimming), which is what keeps a
    million rows well under a second. Also flags rows with a warning
    (``_has_warning``). The expressions are built once per payment year
    (``_parse_steps``): building them per call cost about as much as running
    them on a one-member batch.
    """
    parsed = rows.lazy()
    if "_copies" not in rows.columns:  # no duplicate MemberIDs: one copy of each row
        parsed = parsed.with_columns(pl.lit(1, pl.UInt32).alias("_copies"))
    for step in _parse_steps(payment_year):
        parsed = parsed.with_columns(step)
    return parsed.collect()


@lru_cache(maxsize=32)
def _parse_steps(payment_year: int) -> tuple[tuple[pl.Expr, ...], ...]:
    """The ``with_columns`` steps of ``_parse`` (each reads the columns of the one before)."""
    codes = routing_table()["code"].to_list()
    # Lower-case codes are accepted: the code table keys are upper case.
    code_index = {code: position for position, code in enumerate(codes)}
    code_index.update({code.lower(): position for code, position in list(code_index.items())})
    fields = (
        pl.when(pl.col("DOB").str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(pl.col("DOB").str.to_date("%Y-%m-%d", strict=False))
        .alias("_dob"),
        pl.col("RAType").replace_strict(code_index, default=None, return_dtype=pl.UInt32)
        .alias("_code_index"),
        pl.col("Gender").replace_strict(GENDER_VALUES, default=None, return_dtype=pl.Utf8)
        .alias("sex"),
        pl.col("OREC").replace_strict(OREC_VALUES, default=None, return_dtype=pl.Int8)
        .alias("orec"),
        *[
            # Missing or empty flags count as N (the reference API defaults Hospice to N).
            pl.col(field).fill_null("")
            .replace_strict(YES_NO_VALUES, default=None, return_dtype=pl.Utf8)
            .alias(f"_{field}")
            for field in YES_NO_FIELDS
        ],
    )
    age_and_support = (
        # CMS AGEF: completed years on Feb 1 of the payment year (module docstring).
        (
            pl.lit(payment_year, pl.Int32)
            - pl.col("_dob").dt.year().cast(pl.Int32)
            - (pl.col("_dob").dt.month().cast(pl.Int32) * 100 + pl.col("_dob").dt.day() > 201)
            .cast(pl.Int32)
        ).alias("_age"),
        pl.lit(routing_table()["supported"]).gather(pl.col("_code_index")).fill_null(False)
        .alias("supported"),
    )
    flags = (
        pl.all_horizontal([ok for _, ok, _ in _field_checks(payment_year)]).fill_null(False)
        .alias("_valid"),
        pl.any_horizontal(_warning_conditions().values()).fill_null(False).alias("_has_warning"),
    )
    return fields, age_and_support, flags


def _quoted(column: str) -> pl.Expr:
    return _format("'{}'", pl.col(column).fill_null(""))


@lru_cache(maxsize=32)
def _field_checks(payment_year: int) -> tuple[tuple[str, pl.Expr, pl.Expr], ...]:
    """(field, value is acceptable, message when not), in the order fields are reported."""
    as_of = f"February 1, {payment_year}"
    checks = [
        ("MemberID", ~_blank("MemberID"), pl.lit("MemberID is missing or blank")),
        (
            "DOB",
            pl.col("_age") >= 0,
            pl.when(_blank("DOB")).then(pl.lit("DOB is missing"))
            .when(pl.col("_dob").is_null())
            .then(_format("DOB {} is not a date (YYYY-MM-DD)", _quoted("DOB")))
            .otherwise(_format(
                "DOB {} is after " + as_of + ", the date ages are computed on for payment year "
                + str(payment_year), _quoted("DOB"),
            )),
        ),
        (
            "Gender",
            pl.col("sex").is_not_null(),
            pl.when(_blank("Gender")).then(pl.lit("Gender is missing"))
            .otherwise(_format("Gender {} is not M or F (1/2 and lower case accepted)",
                                 _quoted("Gender"))),
        ),
        (
            "RAType",
            pl.col("supported"),
            pl.when(_blank("RAType")).then(pl.lit("RAType is missing"))
            .when(pl.col("_code_index").is_null())
            .then(_format("RAType {} is not an MMR RA factor type code", _quoted("RAType")))
            .otherwise(_format("RAType {} ({}) is not supported: {}", _code_column("code"),
                                 _code_column("description"), _code_column("unsupported_reason"))),
        ),
        (
            "OREC",
            pl.col("orec").is_not_null(),
            pl.when(_blank("OREC"))
            .then(pl.lit("OREC is missing (0 aged, 1 disability, 2 ESRD, 3 disability and ESRD)"))
            .otherwise(_format("OREC {} is not 0, 1, 2 or 3", _quoted("OREC"))),
        ),
    ]
    for field in YES_NO_FIELDS:
        checks.append((
            field,
            pl.col(f"_{field}").is_in(["Y", "N"]),
            _format(f"{field} {{}} is not Y or N", _quoted(field)),
        ))
    return tuple(checks)


def _member_errors(rejected: pl.DataFrame, payment_year: int) -> pl.DataFrame:
    """One error per rejected row: the first bad field, and every problem in the message."""
    checks = _field_checks(payment_year)
    failed = [~ok.fill_null(False) for _, ok, _ in checks]
    return rejected.select(
        "MemberID",
        "input_index",
        pl.coalesce([pl.when(bad).then(pl.lit(field)) for (field, _, _), bad in zip(checks, failed)])
        .alias("field"),
        pl.concat_str(
            [pl.when(bad).then(message) for (_, _, message), bad in zip(checks, failed)],
            separator="; ",
            ignore_nulls=True,
        ).alias("message"),
        pl.lit(None, pl.UInt32).alias("duplicate_of"),
    ).cast(ERRORS_SCHEMA)


def _code_column(column: str) -> pl.Expr:
    """``column`` of routing_table() for each member's code (a gather: cheaper than a join)."""
    return pl.lit(routing_table()[column]).gather(pl.col("_code_index"))


def _segment() -> pl.Expr:
    """segment_aged / segment_nonaged of the member's code, picked by age >= 65 in one gather."""
    table = routing_table()
    by_code_and_age = pl.Series(
        [segment for pair in zip(table["segment_nonaged"], table["segment_aged"]) for segment in pair],
        dtype=pl.Utf8,
    )
    return pl.lit(by_code_and_age).gather(
        pl.col("_code_index") * 2 + (pl.col("_age") >= 65).cast(pl.UInt32)
    )


def _members(valid: pl.DataFrame) -> pl.DataFrame:
    """Engine inputs and standardized response fields for rows with no problem."""
    return (
        valid.lazy()
        .with_columns(_warnings(valid))
        .select(_member_columns())
        .cast(MEMBERS_SCHEMA)
        .collect()
    )


@lru_cache(maxsize=1)
def _member_columns() -> tuple[pl.Expr, ...]:
    """The ``_members`` select, built once: building ~40 expressions per call cost
    about as much as running them on a one-member batch."""
    age = pl.col("_age")
    orec = pl.col("orec")
    aged = age >= 65
    # CMS "NE_Aged": 64 with OREC 0 counts as 65 in new-enrollee cells (AGESEXV2).
    ne_aged = aged | ((age == 64) & (orec == 0))
    dual = routing_table()["dual"]
    is_ne_scheme = routing_table()["age_band_scheme"].is_in(NEW_ENROLLEE_BAND_SCHEMES)
    # Band age: new-enrollee schemes put 64 with OREC 0 in the 65 cell; ages past
    # the band array share its open-ended last band.
    band_age = (
        pl.when(pl.lit(is_ne_scheme).gather(pl.col("_code_index")) & ne_aged)
        .then(pl.max_horizontal(age, pl.lit(65)))
        .otherwise(age)
        .clip(upper_bound=BAND_TABLE_MAX_AGE)
        .cast(pl.UInt32)
    )
    ltimcaid = (pl.col("_LTIMCAID") == "Y") & _code_column("ltimcaid_applies")
    nemcaid = (pl.col("_NEMCAID") == "Y") & _code_column("nemcaid_applies")
    fbd_always = pl.lit((dual == "full").fill_null(False)).gather(pl.col("_code_index"))
    fbd_if_nemcaid = pl.lit((dual == "from_nemcaid").fill_null(False)).gather(pl.col("_code_index"))
    pbd = pl.lit((dual == "partial").fill_null(False)).gather(pl.col("_code_index"))
    orec_any_age_origds = pl.lit(routing_table()["ne_origds_rule"] == "orec1_any_age").gather(
        pl.col("_code_index")
    )
    orec_shown_under65 = _code_column("orec0_under65_shown")
    segment = _segment()
    return (
        "MemberID",
        pl.col("DOB").alias("BirthDate_Org"),
        # DOB matched YYYY-MM-DD exactly and parsed: it is already the standard form.
        pl.col("DOB").alias("BirthDate"),
        age.alias("Age"),
        pl.lit(age_band_array()).gather(_code_column("band_offset") + band_age)
        .alias("Age_Band"),
        pl.col("Gender").alias("Gender_Org"),
        pl.col("sex").alias("Gender"),
        pl.col("RAType").alias("RAType_Org"),
        segment.alias("RAType"),
        pl.col("Hospice").alias("Hospice_Org"),
        pl.col("_Hospice").alias("Hospice"),
        pl.col("LTIMCAID").alias("LTIMCAID_Org"),
        _yes_no(ltimcaid).alias("LTIMCAID"),
        pl.col("NEMCAID").alias("NEMCAID_Org"),
        _yes_no(nemcaid).alias("NEMCAID"),
        pl.col("OREC").alias("OREC_Org"),
        pl.when((age < 65) & (orec == 0) & orec_shown_under65.is_not_null())
        .then(orec_shown_under65)
        .otherwise("OREC")
        .alias("OREC"),
        _yes_no((orec == 1) & aged).alias("Originally_Disabled"),
        pl.when(orec.is_in([2, 3]) & aged).then(pl.lit("1")).otherwise(pl.lit("0"))
        .alias("Originally_ESRD"),
        "input_index",
        age.alias("age"),
        "sex",
        "orec",
        _code_column("model_family").alias("model_family"),
        segment.alias("segment"),
        ((age < 65) & (orec != 0)).alias("disabl"),
        ((orec == 1) & aged).alias("origds"),
        ((orec == 1) & (aged | orec_any_age_origds)).alias("ne_origds"),
        ltimcaid.alias("ltimcaid"),
        nemcaid.alias("nemcaid"),
        (fbd_always | (fbd_if_nemcaid & nemcaid)).alias("fbd"),
        pbd.alias("pbd"),
        _code_column("lti").alias("lti"),
        _code_column("graft_duration").alias("graft_duration"),
        _code_column("transplant_month").alias("transplant_month"),
        aged.alias("aged"),
        ne_aged.alias("ne_aged"),
        _code_column("normalization_group").alias("normalization_group"),
        "warnings",
    )


_WARNING_SEPARATOR = "\x1f"


def _warning_conditions() -> dict[str, pl.Expr]:
    return {
        "age_over_100": pl.col("_age") > AGE_WARNING_ABOVE,
        "ignored_ltimcaid": (pl.col("_LTIMCAID") == "Y") & ~_code_column("ltimcaid_applies"),
        "ignored_nemcaid": (pl.col("_NEMCAID") == "Y") & ~_code_column("nemcaid_applies"),
        "code_warning": _code_column("warning").is_not_null(),
        "duplicate": pl.col("_copies") > 1,
    }


def _warning_lists(rows: pl.DataFrame) -> pl.Expr:
    """Messages for rows that have at least one warning, as a list per row."""
    conditions = _warning_conditions()
    code = _code_column("code")
    messages = [
        pl.when(conditions["age_over_100"]).then(_format(
            "Age {} is over " + str(AGE_WARNING_ABOVE) + ": check DOB", pl.col("_age"))),
        pl.when(conditions["ignored_ltimcaid"]).then(_format(
            "LTIMCAID=Y ignored: LTIMCAID is used only for RAType I (institutional), not {}",
            code,
        )),
        pl.when(conditions["ignored_nemcaid"]).then(_format(
            "NEMCAID=Y ignored: NEMCAID is used only for new-enrollee RATypes E, ED, E1, E2, "
            "not {}",
            code,
        )),
        _code_column("warning"),
        pl.when(conditions["duplicate"]).then(_format(
            "{} identical duplicate membership row(s) ignored", pl.col("_copies") - 1
        )),
    ]
    # One joined string split again: far cheaper in polars than concat_list of optionals.
    return (
        pl.concat_str(messages, separator=_WARNING_SEPARATOR, ignore_nulls=True)
        .str.split(_WARNING_SEPARATOR)
        .alias("warnings")
    )


def _warnings(valid: pl.DataFrame) -> pl.Expr | pl.Series:
    """``warnings`` (List[Str]) of each row; messages are built only for the rows that
    have one (``_has_warning``, from ``_parse``)."""
    has_warning = valid.get_column("_has_warning")
    if not has_warning.any():
        return pl.repeat(pl.lit([], dtype=pl.List(pl.Utf8)), pl.len()).alias("warnings")
    warned = valid.filter(has_warning).select("input_index", _warning_lists(valid))
    # Join on the index column alone (not the wide frame), then attach the aligned column.
    aligned = valid.select("input_index").join(
        warned, on="input_index", how="left", maintain_order="left"
    )
    return aligned["warnings"].fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))


def _yes_no(flag: pl.Expr) -> pl.Expr:
    return pl.when(flag).then(pl.lit("Y")).otherwise(pl.lit("N"))
