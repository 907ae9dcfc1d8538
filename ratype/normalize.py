"""RAType normalizer: route every membership row to its model and segment.

Contract: ``docs/ARCHITECTURE.md`` "Members frame (ratype.normalize)"; rules:
``/work/shared/spec/ratype.md``; evidence: ``research/ratype_segments.md``.

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
reference API forces it to N). Missing or blank Y/N flags count as N.

Nothing here raises for a bad member: every input row ends up in ``members``
or, once per rejected MemberID, in ``errors``.
"""

from __future__ import annotations

import polars as pl

from ratype.tables import BAND_TABLE_MAX_AGE, age_band_lookup, code_table, supported_codes

MEMBERSHIP_FIELDS = ("MemberID", "DOB", "Gender", "RAType", "Hospice", "LTIMCAID", "NEMCAID",
                     "OREC")
YES_NO_FIELDS = ("Hospice", "LTIMCAID", "NEMCAID")
NEW_ENROLLEE_BAND_SCHEMES = ("ne", "dialysis_ne")
AGE_WARNING_ABOVE = 100
VALID_OREC = ("0", "1", "2", "3")

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

ERRORS_SCHEMA = {"MemberID": pl.Utf8, "input_index": pl.UInt32, "field": pl.Utf8,
                 "message": pl.Utf8}


def normalize(memberships: pl.DataFrame, payment_year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Standardize memberships and route each member to its model and segment.

    ``memberships``: string columns as sent (any of MEMBERSHIP_FIELDS may be
    missing or null), plus ``input_index`` (UInt32; added from row order if
    absent). Returns ``(members, errors)`` with MEMBERS_SCHEMA / ERRORS_SCHEMA,
    both ordered by ``input_index``.
    """
    rows = _prepare(memberships)
    rows, duplicate_errors = _collapse_duplicates(rows)
    checked = _standardize(rows, payment_year)
    problem_found = pl.col("_problem_count") > 0
    members = _members(checked.filter(~problem_found))
    errors = pl.concat([duplicate_errors, _member_errors(checked.filter(problem_found))])
    return members, errors.sort("input_index")


def _prepare(memberships: pl.DataFrame) -> pl.DataFrame:
    """Membership fields as strings (missing columns as nulls) plus ``input_index``."""
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


def _blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def _collapse_duplicates(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop rows identical to an earlier row; reject MemberIDs whose rows conflict.

    Identical rows (every field as sent) collapse into the first with a warning
    count. Different rows for one MemberID reject that MemberID with one error
    (first input_index) naming the fields that differ. Rows with a blank
    MemberID are left alone: each gets its own MemberID error later.
    """
    has_id = ~_blank("MemberID")
    rows = rows.with_columns(
        pl.when(has_id).then(pl.len().over(MEMBERSHIP_FIELDS)).otherwise(1)
        .cast(pl.UInt32).alias("_copies"),
        (~has_id | pl.struct(MEMBERSHIP_FIELDS).is_first_distinct()).alias("_first_copy"),
    ).filter("_first_copy")
    rows = rows.with_columns(
        (has_id & (pl.len().over("MemberID") > 1)).alias("_conflict"),
    )
    conflicts = rows.filter("_conflict")
    conflict_errors = (
        conflicts.group_by("MemberID")
        .agg(
            pl.col("input_index").min(),
            pl.len().alias("_versions"),
            pl.concat_list(
                [
                    pl.when(pl.col(field).n_unique() > 1).then(pl.lit(field))
                    for field in MEMBERSHIP_FIELDS[1:]
                ]
            ).first().list.drop_nulls().list.join(", ").alias("_fields"),
        )
        .select(
            "MemberID",
            "input_index",
            pl.lit("MemberID").alias("field"),
            pl.format(
                "MemberID {} is listed {} times with conflicting {}; the member is not scored",
                "MemberID", "_versions", "_fields",
            ).alias("message"),
        )
    )
    return rows.filter(~pl.col("_conflict")), conflict_errors.cast(ERRORS_SCHEMA)


def _standardize(rows: pl.DataFrame, payment_year: int) -> pl.DataFrame:
    """Parse every field; join the code table; list each row's problems in field order."""
    dob_text = pl.col("DOB").str.strip_chars()
    dob = (
        pl.when(dob_text.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(dob_text.str.to_date("%Y-%m-%d", strict=False))
    )
    code = pl.col("RAType").str.strip_chars().str.to_uppercase()
    orec_text = pl.col("OREC").str.strip_chars()
    standardized = rows.with_columns(
        dob.alias("_dob"),
        code.alias("_code"),
        pl.col("Gender").str.strip_chars().str.to_uppercase()
        .replace_strict({"M": "M", "F": "F", "1": "M", "2": "F"}, default=None,
                        return_dtype=pl.Utf8)
        .alias("sex"),
        pl.when(orec_text.is_in(VALID_OREC)).then(orec_text.cast(pl.Int8)).alias("orec"),
        *[
            pl.when(_blank(field)).then(pl.lit("N"))
            .otherwise(pl.col(field).str.strip_chars().str.to_uppercase())
            .alias(f"_{field}")
            for field in YES_NO_FIELDS
        ],
    ).with_columns(
        # CMS AGEF: completed years on Feb 1 of the payment year (module docstring).
        (
            pl.lit(payment_year, pl.Int32)
            - pl.col("_dob").dt.year().cast(pl.Int32)
            - (pl.col("_dob").dt.month().cast(pl.Int32) * 100 + pl.col("_dob").dt.day() > 201)
            .cast(pl.Int32)
        ).alias("_age"),
    )
    all_codes = code_table().select(
        pl.col("code").alias("_code"),
        pl.col("supported").alias("_supported"),
        pl.col("description").alias("_description"),
        pl.col("unsupported_reason").alias("_unsupported_reason"),
    )
    standardized = standardized.join(all_codes, on="_code", how="left").join(
        supported_codes().rename({"code": "_code"}), on="_code", how="left"
    )
    problems = _problem_checks(payment_year)
    return standardized.with_columns(
        pl.sum_horizontal([bad.cast(pl.UInt8) for _, bad, _ in problems]).alias("_problem_count"),
        pl.concat_list([pl.when(bad).then(pl.lit(field)) for field, bad, _ in problems])
        .alias("_problem_fields"),
        pl.concat_list([pl.when(bad).then(message) for _, bad, message in problems])
        .alias("_problem_messages"),
    )


def _quoted(column: str) -> pl.Expr:
    return pl.format("'{}'", pl.col(column).fill_null(""))


def _problem_checks(payment_year: int) -> list[tuple[str, pl.Expr, pl.Expr]]:
    """(field, row is bad, message) in the order fields are reported."""
    as_of = f"February 1, {payment_year}"
    checks = [
        ("MemberID", _blank("MemberID"), pl.lit("MemberID is missing or blank")),
        (
            "DOB",
            pl.col("_dob").is_null() | (pl.col("_age") < 0),
            pl.when(_blank("DOB")).then(pl.lit("DOB is missing"))
            .when(pl.col("_dob").is_null())
            .then(pl.format("DOB {} is not a date (YYYY-MM-DD)", _quoted("DOB")))
            .otherwise(pl.format(
                "DOB {} is after " + as_of + ", the date ages are computed on for payment year "
                + str(payment_year), _quoted("DOB"),
            )),
        ),
        (
            "Gender",
            pl.col("sex").is_null(),
            pl.when(_blank("Gender")).then(pl.lit("Gender is missing"))
            .otherwise(pl.format("Gender {} is not M or F (1/2 and lower case accepted)",
                                 _quoted("Gender"))),
        ),
        (
            "RAType",
            pl.col("_supported").fill_null("no") != "yes",
            pl.when(_blank("RAType")).then(pl.lit("RAType is missing"))
            .when(pl.col("_supported").is_null())
            .then(pl.format("RAType {} is not an MMR RA factor type code", _quoted("RAType")))
            .otherwise(pl.format("RAType {} ({}) is not supported: {}", "_code", "_description",
                                 "_unsupported_reason")),
        ),
        (
            "OREC",
            pl.col("orec").is_null(),
            pl.when(_blank("OREC"))
            .then(pl.lit("OREC is missing (0 aged, 1 disability, 2 ESRD, 3 disability and ESRD)"))
            .otherwise(pl.format("OREC {} is not 0, 1, 2 or 3", _quoted("OREC"))),
        ),
    ]
    for field in YES_NO_FIELDS:
        checks.append((
            field,
            ~pl.col(f"_{field}").is_in(["Y", "N"]),
            pl.format(f"{field} {{}} is not Y or N", _quoted(field)),
        ))
    return checks


def _member_errors(rejected: pl.DataFrame) -> pl.DataFrame:
    """One error per rejected row: the first bad field, and every problem in the message."""
    return rejected.select(
        "MemberID",
        "input_index",
        pl.col("_problem_fields").list.drop_nulls().list.first().alias("field"),
        pl.col("_problem_messages").list.drop_nulls().list.join("; ").alias("message"),
    ).cast(ERRORS_SCHEMA)


def _members(valid: pl.DataFrame) -> pl.DataFrame:
    """Engine inputs and standardized response fields for rows with no problem."""
    age = pl.col("_age")
    orec = pl.col("orec")
    aged = age >= 65
    # CMS "NE_Aged": 64 with OREC 0 is treated as 65 for new-enrollee cells (AGESEXV2).
    ne_aged = aged | ((age == 64) & (orec == 0))
    ltimcaid_sent = pl.col("_LTIMCAID") == "Y"
    nemcaid_sent = pl.col("_NEMCAID") == "Y"
    ltimcaid = ltimcaid_sent & pl.col("ltimcaid_applies")
    nemcaid = nemcaid_sent & pl.col("nemcaid_applies")
    dual = pl.col("dual")
    yes_no = {True: "Y", False: "N"}

    routed = valid.with_columns(
        age.cast(pl.Int16).alias("age"),
        aged.alias("aged"),
        ne_aged.alias("ne_aged"),
        pl.when(aged).then("segment_aged").otherwise("segment_nonaged").alias("segment"),
        # Band age: new-enrollee schemes put 64 with OREC 0 in the 65 cell; ages past the
        # table's end share its open-ended last band.
        pl.when(pl.col("age_band_scheme").is_in(NEW_ENROLLEE_BAND_SCHEMES) & ne_aged)
        .then(pl.max_horizontal(age, pl.lit(65)))
        .otherwise(age)
        .clip(upper_bound=BAND_TABLE_MAX_AGE)
        .cast(pl.Int16)
        .alias("band_age"),
        ltimcaid.alias("ltimcaid"),
        nemcaid.alias("nemcaid"),
        ((dual == "full") | ((dual == "from_nemcaid") & nemcaid)).fill_null(False).alias("fbd"),
        (dual == "partial").fill_null(False).alias("pbd"),
        pl.col("code_lti").alias("lti"),
    )
    routed = routed.join(age_band_lookup(), on=["age_band_scheme", "band_age"], how="left")

    warnings = [
        pl.when(age > AGE_WARNING_ABOVE).then(
            pl.format("Age {} is over " + str(AGE_WARNING_ABOVE) + ": check DOB", age)
        ),
        pl.when(ltimcaid_sent & ~pl.col("ltimcaid_applies")).then(pl.format(
            "LTIMCAID=Y ignored: LTIMCAID is used only for RAType I (institutional), not {}",
            "_code",
        )),
        pl.when(nemcaid_sent & ~pl.col("nemcaid_applies")).then(pl.format(
            "NEMCAID=Y ignored: NEMCAID is used only for new-enrollee RATypes E, ED, E1, E2, not {}",
            "_code",
        )),
        pl.col("code_warning"),
        pl.when(pl.col("_copies") > 1).then(pl.format(
            "{} identical duplicate membership row(s) ignored", pl.col("_copies") - 1
        )),
    ]
    return routed.select(
        "MemberID",
        pl.col("DOB").alias("BirthDate_Org"),
        pl.col("_dob").dt.strftime("%Y-%m-%d").alias("BirthDate"),
        pl.col("age").alias("Age"),
        "Age_Band",
        pl.col("Gender").alias("Gender_Org"),
        pl.col("sex").alias("Gender"),
        pl.col("RAType").alias("RAType_Org"),
        pl.col("segment").alias("RAType"),
        pl.col("Hospice").alias("Hospice_Org"),
        pl.col("_Hospice").alias("Hospice"),
        pl.col("LTIMCAID").alias("LTIMCAID_Org"),
        pl.col("ltimcaid").replace_strict(yes_no, return_dtype=pl.Utf8).alias("LTIMCAID"),
        pl.col("NEMCAID").alias("NEMCAID_Org"),
        pl.col("nemcaid").replace_strict(yes_no, return_dtype=pl.Utf8).alias("NEMCAID"),
        pl.col("OREC").alias("OREC_Org"),
        pl.when((age < 65) & (orec == 0) & pl.col("orec0_under65_shown").is_not_null())
        .then("orec0_under65_shown")
        .otherwise(pl.col("OREC").str.strip_chars())
        .alias("OREC"),
        pl.when((orec == 1) & aged).then(pl.lit("Y")).otherwise(pl.lit("N"))
        .alias("Originally_Disabled"),
        pl.when(orec.is_in([2, 3]) & aged).then(pl.lit("1")).otherwise(pl.lit("0"))
        .alias("Originally_ESRD"),
        "input_index",
        "age",
        "sex",
        "orec",
        "model_family",
        "segment",
        ((age < 65) & (orec != 0)).alias("disabl"),
        ((orec == 1) & aged).alias("origds"),
        pl.when(pl.col("ne_origds_rule") == "orec1_any_age").then(orec == 1)
        .otherwise((orec == 1) & aged).alias("ne_origds"),
        "ltimcaid",
        "nemcaid",
        "fbd",
        "pbd",
        "lti",
        "graft_duration",
        "transplant_month",
        "aged",
        "ne_aged",
        "normalization_group",
        pl.concat_list(warnings).list.drop_nulls().alias("warnings"),
    ).cast(MEMBERS_SCHEMA).sort("input_index")
