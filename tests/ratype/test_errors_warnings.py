"""Every member error and every warning, one test each (docs/scoring.md "Segments from RAType", docs/api.md "Errors")."""

from __future__ import annotations

import pytest

from ratype import code_table
from tests.ratype.helpers import member, one_error, one_member, run

PACE_REASON = "PACE members are scored with the PACE models, which this service does not implement"
UNSUPPORTED = code_table().filter(code_table()["supported"] == "no")["code"].to_list()


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("member_id", [None, "", "   "])
def test_missing_member_id(member_id):
    error = one_error(MemberID=member_id)
    assert (error["field"], error["message"]) == ("MemberID", "MemberID is missing or blank")


@pytest.mark.parametrize("dob", ["1961-02-29", "1985-13-01", "13/10/1985", "1985-10-13T00:00:00",
                                 "19851013", "1985-1-3", "yesterday"])
def test_dob_not_a_date(dob):
    error = one_error(DOB=dob)
    assert error["field"] == "DOB"
    assert error["message"] == f"DOB '{dob}' is not a date (YYYY-MM-DD)"


@pytest.mark.parametrize("dob", [None, ""])
def test_dob_missing(dob):
    assert one_error(DOB=dob)["message"] == "DOB is missing"


@pytest.mark.parametrize(("dob", "payment_year"), [("2025-02-02", 2025), ("2030-01-01", 2025),
                                                    ("2024-02-02", 2024)])
def test_dob_after_february_first_of_payment_year(dob, payment_year):
    error = one_error(payment_year, DOB=dob)
    assert error["field"] == "DOB"
    assert f"is after February 1, {payment_year}" in error["message"]


@pytest.mark.parametrize("gender", ["X", "U", "0", "3", "Male", "MF"])
def test_gender_not_m_or_f(gender):
    error = one_error(Gender=gender)
    assert error["field"] == "Gender"
    assert f"'{gender}'" in error["message"]


def test_gender_missing():
    assert one_error(Gender=None)["message"] == "Gender is missing"


@pytest.mark.parametrize(("sent", "standard"), [("M", "M"), ("m", "M"), ("1", "M"), ("F", "F"),
                                                ("f", "F"), ("2", "F")])
def test_gender_accepted_forms(sent, standard):
    row = one_member(Gender=sent)
    assert (row["Gender_Org"], row["Gender"], row["sex"]) == (sent, standard, standard)


@pytest.mark.parametrize("code", UNSUPPORTED)
def test_unsupported_code_is_an_error_naming_code_and_reason(code):
    error = one_error(RAType=code)
    reason = code_table().filter(code_table()["code"] == code)["unsupported_reason"].item()
    assert error["field"] == "RAType"
    assert error["message"].startswith(f"RAType {code} (")
    assert error["message"].endswith(f"is not supported: {reason}")


@pytest.mark.parametrize("code", ["PI", "PK", "PJ", "PA", "PB", "PC", "PD", "PE", "PF", "PG", "PH",
                                  "PL", "PM"])
def test_pace_codes_say_pace(code):
    assert one_error(RAType=code)["message"].endswith(PACE_REASON)


@pytest.mark.parametrize("code", ["C1", "C2", "D", "I2"])
def test_pre_2023_esrd_codes_say_pre_2023(code):
    assert "pre-2023 ESRD" in one_error(RAType=code)["message"]


def test_snp_new_enrollee_says_not_supported():
    message = one_error(RAType="SE")["message"]
    assert "SNP new enrollee" in message and "not supported" in message


def test_unknown_code():
    error = one_error(RAType="ZZ")
    assert (error["field"], error["message"]) == (
        "RAType", "RAType 'ZZ' is not an MMR RA factor type code")


@pytest.mark.parametrize("code", [None, "", " "])
def test_blank_code(code):
    error = one_error(RAType=code)
    assert (error["field"], error["message"]) == ("RAType", "RAType is missing")


def test_lower_case_code_is_accepted_and_echoed():
    row = one_member(RAType="cf")
    assert (row["RAType_Org"], row["RAType"]) == ("cf", "CFA")


@pytest.mark.parametrize("orec", [None, ""])
def test_orec_missing(orec):
    error = one_error(OREC=orec)
    assert error["field"] == "OREC" and error["message"].startswith("OREC is missing")


@pytest.mark.parametrize("orec", ["4", "-1", "9", "01", "A", "1.0"])
def test_orec_not_0_to_3(orec):
    error = one_error(OREC=orec)
    assert (error["field"], error["message"]) == ("OREC", f"OREC '{orec}' is not 0, 1, 2 or 3")


@pytest.mark.parametrize("field", ["Hospice", "LTIMCAID", "NEMCAID"])
@pytest.mark.parametrize("value", ["X", "yes", "1", "T"])
def test_yes_no_flag_not_y_or_n(field, value):
    error = one_error(**{field: value})
    assert (error["field"], error["message"]) == (field, f"{field} '{value}' is not Y or N")


@pytest.mark.parametrize("field", ["Hospice", "LTIMCAID", "NEMCAID"])
def test_yes_no_flags_accept_lower_case_and_default_to_n(field):
    code = {"Hospice": "CN", "LTIMCAID": "I", "NEMCAID": "E"}[field]
    assert one_member(RAType=code, **{field: "y"})[field] == "Y"
    assert one_member(RAType=code, **{field: "n"})[field] == "N"
    missing = one_member(RAType=code, **{field: None})
    assert (missing[f"{field}_Org"], missing[field]) == (None, "N")


def test_hospice_is_echoed_and_changes_nothing():
    hospice = one_member(Hospice="Y")
    plain = one_member(Hospice="N")
    assert (hospice["Hospice_Org"], hospice["Hospice"]) == ("Y", "Y")
    ignore = {"Hospice_Org", "Hospice"}
    assert {k: v for k, v in hospice.items() if k not in ignore} == {
        k: v for k, v in plain.items() if k not in ignore}


def test_duplicate_member_id_with_conflicting_fields_is_one_error_per_row():
    members, errors = run([
        member(MemberID="A", OREC="0"),
        member(MemberID="B"),
        member(MemberID="A", OREC="1", Gender="M"),
        member(MemberID="A", OREC="1"),
    ])
    assert members["MemberID"].to_list() == ["B"]
    assert errors.select("MemberID", "input_index", "field").rows() == [
        ("A", 0, "MemberID"), ("A", 2, "MemberID"), ("A", 3, "MemberID")]
    for message in errors["message"]:
        assert "3 different sets of values" in message
        assert "Gender, OREC" in message


def test_several_problems_give_one_error_naming_the_first_field_and_listing_all():
    error = one_error(DOB="1961-02-29", Gender="Q", RAType="PI", OREC="7", Hospice="x")
    assert error["field"] == "DOB"
    message = error["message"]
    for part in ("DOB '1961-02-29'", "Gender 'Q'", "RAType PI", "OREC '7'", "Hospice 'x'"):
        assert part in message
    assert message.index("DOB") < message.index("Gender") < message.index("RAType")


# ---- warnings -------------------------------------------------------------------------------

def test_age_over_100_warns():
    row = one_member(DOB="1920-06-15")
    assert row["Age"] == 104
    assert row["warnings"] == ["Age 104 is over 100: check DOB"]
    assert one_member(DOB="1925-02-01")["warnings"] == []  # exactly 100: no warning


@pytest.mark.parametrize("code", ["CN", "CF", "E", "D1", "I3", "I5", "C3", "G1"])
def test_ltimcaid_on_non_institutional_code_is_ignored_with_warning(code):
    row = one_member(RAType=code, LTIMCAID="Y")
    assert (row["LTIMCAID_Org"], row["LTIMCAID"], row["ltimcaid"]) == ("Y", "N", False)
    assert row["warnings"] == [
        f"LTIMCAID=Y ignored: LTIMCAID is used only for RAType I (institutional), not {code}"]


@pytest.mark.parametrize("code", ["CN", "CP", "I", "D1", "C4", "I7", "G2"])
def test_nemcaid_on_non_new_enrollee_code_is_ignored_with_warning(code):
    row = one_member(RAType=code, NEMCAID="Y")
    assert (row["NEMCAID_Org"], row["NEMCAID"], row["nemcaid"], row["fbd"]) == (
        "Y", "N", False, code == "D1")
    assert row["warnings"] == [(
        "NEMCAID=Y ignored: NEMCAID is used only for new-enrollee RATypes E, ED, E1, E2, "
        f"not {code}"
    )]


def test_i1_is_scored_as_i7_with_warning():
    i1 = one_member(RAType="I1")
    i7 = one_member(RAType="I7")
    assert len(i1["warnings"]) == 1 and "scored as I7" in i1["warnings"][0]
    same = ("model_family", "segment", "fbd", "pbd", "lti", "graft_duration", "normalization_group",
            "RAType", "Age_Band")
    assert {k: i1[k] for k in same} == {k: i7[k] for k in same}
    assert i7["warnings"] == []


def test_identical_duplicate_rows_collapse_with_warning_and_each_repeat_names_the_first():
    members, errors = run([member(MemberID="A"), member(MemberID="B"), member(MemberID="A"),
                           member(MemberID="A")])
    assert errors.select("input_index", "field", "duplicate_of").rows() == [
        (2, "MemberID", 0), (3, "MemberID", 0)]
    assert all(m.startswith("identical duplicate of memberships[0]") for m in errors["message"])
    assert members["MemberID"].to_list() == ["A", "B"]
    assert members["input_index"].to_list() == [0, 1]
    assert members["warnings"].to_list() == [
        ["2 identical duplicate membership row(s) ignored"], []]


def test_warnings_accumulate():
    row = one_member(RAType="I1", DOB="1910-06-15", LTIMCAID="Y")
    assert len(row["warnings"]) == 3
