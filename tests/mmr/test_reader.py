"""MMR detail files generated from the documented layout, read back into memberships.

Round trip: memberships → one MMR record per member per payment month (the
generator places each field at its layout position) → `read_mmr` → the same
memberships, with the months counted. Retroactive adjustments, ESRD, hospice,
unknown RA factor type codes, short and over-long records each have a test.
"""

from __future__ import annotations

import polars as pl
import pytest

from app import mmr
from tests.mmr import generate as gen

YEAR = 2025
MONTHS = [f"2025{m:02d}" for m in range(1, 13)]


def member(member_id: str, **fields: str) -> dict[str, str]:
    base = {
        "ContractNumber": "H1234",
        "MemberID": member_id,
        "Gender": "F",
        "DOB": "19500312",
        "County": "05200",
        "RAType": "CN",
        "OREC": "0",
        "RiskScore": "01.0000",
    }
    return {**base, **fields}


def as_membership(row: dict[str, str], months: int, **derived: str) -> dict[str, str]:
    """What the reader should make of `row`: the membership fields, months counted."""
    dob = row["DOB"]
    return {
        "MemberID": row["MemberID"],
        "DOB": f"{dob[:4]}-{dob[4:6]}-{dob[6:]}",
        "Gender": row["Gender"],
        "RAType": row["RAType"],
        "Hospice": derived.get("Hospice", "N"),
        "LTIMCAID": derived.get("LTIMCAID", "N"),
        "NEMCAID": derived.get("NEMCAID", "N"),
        "OREC": row["OREC"],
        "Enrollment_Months": str(months),
        "County": row["County"],
    }


def read(tmp_path, rows, extra=(), **kwargs) -> mmr.MmrResult:
    path = gen.write(tmp_path / "MONMEMD.txt", rows, extra=list(extra))
    return mmr.read_mmr(path, YEAR, **kwargs)


def memberships(result: mmr.MmrResult) -> list[dict[str, str]]:
    return result.memberships.drop("input_index").sort("MemberID").to_dicts()


def test_round_trip_memberships_to_mmr_and_back(tmp_path):
    full = member("1EG4TE5MK73")
    partial = member("2EG4TE5MK74", Gender="M", DOB="19580704", OREC="1", RAType="CF")
    institutional = member("3EG4TE5MK75", RAType="I", Medicaid="Y", LTI="Y", Institutional="Y")
    new_enrollee = member("4EG4TE5MK76", RAType="E", NEMCAID="Y", DOB="19600115")
    esrd = member("5EG4TE5MK77", RAType="D1", ESRD="Y", OREC="2")
    hospice = member("6EG4TE5MK78")
    rows = (
        gen.monthly_records(full, MONTHS)
        + gen.monthly_records(partial, MONTHS[3:9])
        + gen.monthly_records(institutional, MONTHS)
        + gen.monthly_records(new_enrollee, MONTHS[6:])
        + gen.monthly_records(esrd, MONTHS)
        + gen.monthly_records(hospice, MONTHS[:8])
        + gen.monthly_records({**hospice, "Hospice": "Y"}, MONTHS[8:])
    )
    result = read(tmp_path, rows)
    assert result.errors.height == 0
    assert memberships(result) == [
        as_membership(full, 12),
        as_membership(partial, 6),
        as_membership(institutional, 12, LTIMCAID="Y"),
        as_membership(new_enrollee, 6, NEMCAID="Y"),
        as_membership(esrd, 12),
        as_membership(hospice, 12, Hospice="Y"),
    ]
    by_id = {row["MemberID"]: row for row in result.members.to_dicts()}
    assert by_id["6EG4TE5MK78"]["Hospice_Months"] == 4
    assert by_id["5EG4TE5MK77"]["CMS_ESRD"] == "Y"
    assert by_id["2EG4TE5MK74"]["Payment_Months"] == [f"2025-{m:02d}" for m in range(4, 10)]
    assert result.summary["records"] == len(rows) == result.summary["records_in_payment_year"]
    assert result.summary["months_counted"] == 12 + 6 + 12 + 6 + 12 + 12


def test_input_index_points_at_the_record_that_set_the_status(tmp_path):
    row = member("1EG4TE5MK73")
    result = read(tmp_path, gen.monthly_records(row, MONTHS[:3]))
    # line = input_index + 1: the March record, the latest month
    assert result.memberships["input_index"].to_list() == [2]


def test_retroactive_adjustments_count_months_once_and_take_the_new_score(tmp_path):
    row = member("1EG4TE5MK73", RiskScore="01.0000")
    prospective = gen.monthly_records(row, MONTHS[:3])
    # April's MMR: a retro enrollment for December's omission is out of year; a risk score
    # change for Jan-Mar comes as a recovery at the old score and a payment at the new one.
    retro = [
        {
            **row,
            "PaymentDate": "202504",
            "ARC": "25",
            "Months": "-3",
            "StartDate": "20250101",
            "EndDate": "20250331",
        },
        {
            **row,
            "PaymentDate": "202504",
            "ARC": "25",
            "Months": "3",
            "StartDate": "20250101",
            "EndDate": "20250331",
            "RiskScore": "01.2500",
        },
        {
            **row,
            "PaymentDate": "202504",
            "Months": "1",
            "StartDate": "20250401",
            "EndDate": "20250430",
            "RiskScore": "01.2500",
        },
    ]
    late = member("2EG4TE5MK74")
    # a retroactive enrollment: April's MMR pays January to March at once, then April
    late_rows = [
        {
            **late,
            "PaymentDate": "202504",
            "ARC": "01",
            "Months": "3",
            "StartDate": "20250101",
            "EndDate": "20250331",
        },
        {
            **late,
            "PaymentDate": "202504",
            "Months": "1",
            "StartDate": "20250401",
            "EndDate": "20250430",
        },
    ]
    # a retroactive disenrollment: March recovered, nothing paid again
    leaver = member("3EG4TE5MK75")
    leaver_rows = gen.monthly_records(leaver, MONTHS[:3]) + [
        {
            **leaver,
            "PaymentDate": "202504",
            "ARC": "07",
            "Months": "-1",
            "StartDate": "20250301",
            "EndDate": "20250331",
        },
    ]
    result = read(tmp_path, prospective + retro + late_rows + leaver_rows)
    assert result.errors.height == 0
    members = {r["MemberID"]: r for r in result.members.to_dicts()}
    assert members["1EG4TE5MK73"]["Enrollment_Months"] == 4
    assert members["1EG4TE5MK73"]["CMS_Score_micro"] == 1_250_000
    assert members["2EG4TE5MK74"]["Enrollment_Months"] == 4
    assert members["3EG4TE5MK75"]["Enrollment_Months"] == 2
    assert members["3EG4TE5MK75"]["Payment_Months"] == ["2025-01", "2025-02"]
    assert result.summary["months_recovered"] == 1
    assert result.summary["months_paid_twice"] == 0


def test_a_month_paid_twice_with_different_status_is_reported_not_guessed(tmp_path):
    row = member("1EG4TE5MK73", RAType="CN")
    rows = gen.monthly_records(row, MONTHS[:3]) + [
        {
            **row,
            "RAType": "CF",
            "PaymentDate": "202503",
            "Months": "1",
            "StartDate": "20250201",
            "EndDate": "20250228",
            "ARC": "26",
        },
    ]
    ok = member("2EG4TE5MK74")
    result = read(tmp_path, rows + gen.monthly_records(ok, MONTHS[:3]))
    assert result.memberships["MemberID"].to_list() == ["2EG4TE5MK74"]
    error = result.errors.row(0, named=True)
    assert error["MemberID"] == "1EG4TE5MK73" and error["field"] == "RAType"
    assert "2025-02 is paid by 2 records (lines 2, 4)" in error["message"]
    assert "CN vs CF" in error["message"] and "not guessed" in error["message"]


def test_status_changing_between_months_is_an_error_unless_latest_is_asked_for(tmp_path):
    row = member("1EG4TE5MK73", RAType="CN")
    rows = gen.monthly_records(row, MONTHS[:6]) + gen.monthly_records(
        {**row, "RAType": "I"}, MONTHS[6:]
    )
    strict = read(tmp_path, rows)
    assert strict.memberships.height == 0
    error = strict.errors.row(0, named=True)
    assert error["field"] == "RAType"
    assert "CN 2025-01..2025-06; I 2025-07..2025-12" in error["message"]
    latest = read(tmp_path, rows, status_rule="latest")
    assert latest.errors.height == 0
    assert latest.memberships.row(0, named=True)["RAType"] == "I"
    assert latest.memberships.row(0, named=True)["Enrollment_Months"] == "12"
    assert latest.summary["members_status_changed"] == 1


def test_unknown_ratype_code_is_a_member_error_naming_the_field_and_line(tmp_path):
    good = member("1EG4TE5MK73")
    bad = member("2EG4TE5MK74", RAType="ZZ")
    result = read(
        tmp_path, gen.monthly_records(good, MONTHS[:2]) + gen.monthly_records(bad, MONTHS[:1])
    )
    assert result.memberships["MemberID"].to_list() == ["1EG4TE5MK73"]
    error = result.errors.row(0, named=True)
    assert (error["MemberID"], error["input_index"] + 1, error["field"]) == (
        "2EG4TE5MK74",
        3,
        "RAType",
    )
    assert "'ZZ' is not an MMR RA factor type code" in error["message"]
    assert "positions 189-190" in error["message"]


def test_short_and_over_long_records_are_errors_with_line_numbers(tmp_path):
    good = member("1EG4TE5MK73")
    other = gen.record(member("2EG4TE5MK74", PaymentDate="202501"))
    short, long = other[:480], other + "EXTRA"
    result = read(tmp_path, gen.monthly_records(good, MONTHS[:2]), extra=[short, "", long])
    assert result.memberships["MemberID"].to_list() == ["1EG4TE5MK73"]
    errors = result.errors.sort("input_index").to_dicts()
    assert [(e["input_index"] + 1, e["field"]) for e in errors] == [(3, "record"), (5, "record")]
    assert errors[0]["message"].startswith("short record: 480 characters")
    assert "expects 495" in errors[0]["message"]
    assert errors[1]["message"].startswith("over-long record: 500 characters")
    assert result.summary["blank_lines"] == 1
    assert result.summary["malformed_records"] == 2
    assert result.summary["lines"] == 5


def test_unreadable_fields_name_the_field_and_its_positions(tmp_path):
    rows = [
        {**member("1EG4TE5MK73", DOB="19501345"), "PaymentDate": "202501"},
        {**member("2EG4TE5MK74", Hospice="X"), "PaymentDate": "202501"},
        {**member("3EG4TE5MK75", RiskScore="ABC"), "PaymentDate": "2025AB"},
    ]
    result = read(tmp_path, rows)
    fields = dict(zip(result.errors["MemberID"], result.errors["field"], strict=True))
    assert fields == {"1EG4TE5MK73": "DOB", "2EG4TE5MK74": "Hospice", "3EG4TE5MK75": "PaymentDate"}
    messages = dict(zip(result.errors["MemberID"], result.errors["message"], strict=True))
    assert "Date of Birth, positions 41-48" in messages["1EG4TE5MK73"]
    assert "Hospice, position 61" in messages["2EG4TE5MK74"]
    assert "RiskScore: 'ABC' is not a decimal" in messages["3EG4TE5MK75"]  # every problem listed


def test_every_record_is_a_membership_month_an_error_or_counted(tmp_path):
    rows = (
        gen.monthly_records(member("1EG4TE5MK73"), MONTHS[:3])
        + gen.monthly_records(member("2EG4TE5MK74"), ["202412"])
        + gen.monthly_records(member("3EG4TE5MK75", RAType="ZZ"), MONTHS[:1])
    )
    result = read(tmp_path, rows, extra=["short"])
    s = result.summary
    assert s["records"] == 6
    assert (
        s["records"]
        == s["records_in_payment_year"] + s["records_other_years"] + s["malformed_records"]
    )
    assert s["records_in_payment_year"] == 3  # Jan-Mar of member 1 (member 3's is malformed)
    assert s["records_other_years"] == 1
    assert s["malformed_records"] == 2
    assert s["memberships"] == 1


def _set(column: str, attribute: str, value: str):
    """A layout edit: `attribute` of the row reading `column` set to `value`."""
    return lambda t: t.with_columns(
        pl.when(pl.col("column") == column)
        .then(pl.lit(value))
        .otherwise(pl.col(attribute))
        .alias(attribute)
    )


def test_a_corrected_layout_file_is_used_as_given(tmp_path):
    layout = pl.read_csv(mmr.DEFAULT_LAYOUT, infer_schema=False)
    # a plan whose PCUG puts OREC one position later moves it in its copy of the layout
    moved = _set("OREC", "start", "193")(layout)
    path = tmp_path / "layout_plan.csv"
    moved.write_csv(path)
    plan_layout = mmr.load_layout(path)
    rows = gen.monthly_records(member("1EG4TE5MK73", OREC="1"), MONTHS[:1])
    result = mmr.read_mmr(
        gen.write(tmp_path / "mmr.txt", rows, layout=plan_layout), YEAR, plan_layout
    )
    assert result.memberships["OREC"].to_list() == ["1"]
    assert plan_layout.version == "plan"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.filter(pl.col("column") != "RAType"), "no field is read into column 'RAType'"),
        (_set("OREC", "start", "600"), "past the record length 495"),
        (_set("OREC", "type", "bool"), "type 'bool' is not one of"),
    ],
)
def test_a_broken_layout_is_fatal_naming_the_row(tmp_path, edit, expected):
    path = tmp_path / "layout_bad.csv"
    edit(pl.read_csv(mmr.DEFAULT_LAYOUT, infer_schema=False)).write_csv(path)
    with pytest.raises(mmr.MmrError, match=expected):
        mmr.load_layout(path)


def test_the_bundled_layout_says_where_each_position_comes_from():
    layout = pl.read_csv(mmr.DEFAULT_LAYOUT, infer_schema=False)
    assert set(layout["confirmed"]) <= {"yes", "no"}
    assert set(layout["source"]) <= {"pcug-excerpt", "public-parser", "secondary", "derived"}
    # confirmed means a PCUG excerpt or a public implementation citing the PCUG
    assert set(layout.filter(pl.col("confirmed") == "yes")["source"]) <= {
        "pcug-excerpt",
        "public-parser",
    }
    spans = (
        layout.filter(pl.col("number").is_not_null())
        .select(pl.col("start").cast(pl.Int64), pl.col("length").cast(pl.Int64))
        .sort("start")
    )
    ends = (spans["start"] + spans["length"] - 1).to_list()
    assert spans["start"].to_list()[1:48] == [e + 1 for e in ends[:47]]  # fields 1-48 abut
    assert mmr.load_layout().record_length == 495


def test_unconfirmed_positions_read_are_listed_in_the_docs():
    from pathlib import Path

    doc = (Path(mmr.__file__).resolve().parent.parent / "docs" / "mmr.md").read_text()
    layout = mmr.load_layout().fields.filter(pl.col("confirmed") == "no")
    for name in layout["field"].to_list():
        assert name in doc, f"docs/mmr.md does not mention unconfirmed field {name!r}"
