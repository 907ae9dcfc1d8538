"""Age on February 1 of the payment year, and the band names the engine builds cells from.

CMS (V2419P1M / V2823T2M): AGEF = FLOOR((INTCK('MONTH',DOB,&DATE_ASOF)
- (DAY(&DATE_ASOF) < DAY(DOB)))/12), DATE_ASOF = February 1 of the payment year.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratype import normalize
from tests.ratype.helpers import one_error, one_member


def sas_agef(dob: dt.date, payment_year: int) -> int:
    """The SAS formula, written out independently of the implementation."""
    as_of = dt.date(payment_year, 2, 1)
    months = (as_of.year - dob.year) * 12 + (as_of.month - dob.month)  # INTCK('MONTH')
    return (months - (as_of.day < dob.day)) // 12


@pytest.mark.parametrize(
    ("dob", "payment_year", "age"),
    [
        ("1960-02-01", 2025, 65),  # birthday on Feb 1 counts
        ("1960-02-02", 2025, 64),
        ("1960-01-31", 2025, 65),
        ("1960-02-29", 2025, 64),  # 1960 is a leap year: a real date, after Feb 1
        ("1956-02-29", 2025, 68),
        ("1956-02-29", 2024, 67),
        ("1959-02-01", 2024, 65),
        ("2025-02-01", 2025, 0),  # born on the reference date
        ("1985-10-13", 2025, 39),
    ],
)
def test_age_on_february_first(dob: str, payment_year: int, age: int):
    row = one_member(payment_year, DOB=dob)
    assert row["Age"] == row["age"] == age
    assert age == sas_agef(dt.date.fromisoformat(dob), payment_year)


def test_invalid_leap_day_is_a_dob_error():
    error = one_error(DOB="1961-02-29")
    assert error["field"] == "DOB"
    assert "1961-02-29" in error["message"] and "not a date" in error["message"]


@given(
    st.lists(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 2, 1)), min_size=1,
             max_size=200),
    st.sampled_from([2024, 2025, 2026]),
)
@settings(max_examples=50, deadline=None)
def test_age_matches_sas_formula(dobs: list[dt.date], payment_year: int):
    frame = pl.DataFrame({
        "MemberID": [f"M{i}" for i in range(len(dobs))],
        "DOB": [d.isoformat() for d in dobs],
        "Gender": "F", "RAType": "CN", "OREC": "0",
    })
    members, errors = normalize(frame, payment_year)
    assert errors.is_empty()
    assert members["age"].to_list() == [sas_agef(d, payment_year) for d in dobs]


@pytest.mark.parametrize(
    ("age", "band"),
    [(0, "0_34"), (34, "0_34"), (35, "35_44"), (44, "35_44"), (45, "45_54"), (55, "55_59"),
     (60, "60_64"), (64, "60_64"), (65, "65_69"), (69, "65_69"), (70, "70_74"), (75, "75_79"),
     (80, "80_84"), (85, "85_89"), (90, "90_94"), (94, "90_94"), (95, "95_GT"), (130, "95_GT")],
)
def test_continuing_enrollee_bands(age: int, band: str):
    dob = f"{2025 - age - 1}-06-15"
    row = one_member(RAType="I", DOB=dob)
    assert (row["Age"], row["Age_Band"]) == (age, band)


@pytest.mark.parametrize(
    ("age", "orec", "band"),
    [(34, "1", "0_34"), (59, "1", "55_59"), (63, "0", "60_64"), (64, "1", "60_64"),
     (64, "0", "65"), (65, "0", "65"), (66, "1", "66"), (67, "0", "67"), (68, "0", "68"),
     (69, "0", "69"), (70, "0", "70_74"), (89, "0", "85_89"), (94, "0", "90_94"),
     (95, "0", "95_GT")],
)
def test_new_enrollee_bands(age: int, orec: str, band: str):
    row = one_member(RAType="E", DOB=f"{2025 - age - 1}-06-15", OREC=orec)
    assert (row["Age"], row["Age_Band"]) == (age, band)
    # The graft new enrollee (GNE) cells use the same 16 bands.
    assert one_member(RAType="E1", DOB=f"{2025 - age - 1}-06-15", OREC=orec)["Age_Band"] == band


def test_new_enrollee_64_with_orec_0_is_ne_aged_but_not_aged():
    row = one_member(RAType="E", DOB="1960-06-15", OREC="0")
    assert (row["Age"], row["Age_Band"], row["aged"], row["ne_aged"]) == (64, "65", False, True)
    assert one_member(RAType="E", DOB="1960-06-15", OREC="1")["Age_Band"] == "60_64"


@pytest.mark.parametrize(
    ("age", "orec", "band"),
    [(20, "2", "0_34"), (40, "2", "35_44"), (50, "2", "45_54"), (57, "2", "55_59"),
     (64, "2", "60_64"), (64, "0", "65_69"), (66, "0", "65_69"), (72, "0", "70_74"),
     (77, "0", "75_79"), (82, "0", "80_84"), (85, "0", "85_GT"), (99, "0", "85_GT")],
)
def test_dialysis_new_enrollee_bands(age: int, orec: str, band: str):
    # The ten bands of V24_NE_Dialysis_Relative_Factors.csv (..._NEF0_34 ... _NEF85_GT).
    row = one_member(RAType="ED", DOB=f"{2025 - age - 1}-06-15", OREC=orec)
    assert (row["Age"], row["Age_Band"]) == (age, band)


def test_seed_member_m00912():
    row = one_member(
        MemberID="M00912", DOB="1985-10-13", Gender="M", RAType="CP", Hospice="N",
        LTIMCAID="N", NEMCAID="N", OREC="0",
    )
    assert {k: row[k] for k in (
        "MemberID", "BirthDate_Org", "BirthDate", "Age", "Age_Band", "Gender_Org", "Gender",
        "RAType_Org", "RAType", "Hospice_Org", "Hospice", "LTIMCAID_Org", "LTIMCAID",
        "NEMCAID_Org", "NEMCAID", "OREC_Org", "OREC", "Originally_Disabled", "Originally_ESRD",
    )} == {
        "MemberID": "M00912", "BirthDate_Org": "1985-10-13", "BirthDate": "1985-10-13",
        "Age": 39, "Age_Band": "35_44", "Gender_Org": "M", "Gender": "M", "RAType_Org": "CP",
        "RAType": "CPD", "Hospice_Org": "N", "Hospice": "N", "LTIMCAID_Org": "N",
        "LTIMCAID": "N", "NEMCAID_Org": "N", "NEMCAID": "N", "OREC_Org": "0", "OREC": "1",
        "Originally_Disabled": "N", "Originally_ESRD": "0",
    }
    # Scoring keeps the OREC that was sent.
    assert (row["orec"], row["disabl"], row["segment"]) == (0, False, "CPD")


def test_seed_member_m00913():
    row = one_member(MemberID="M00913", DOB="1938-06-16", Gender="F", RAType="CN", OREC="0")
    assert (row["RAType"], row["Age"], row["Age_Band"], row["OREC"], row["Originally_Disabled"],
            row["Originally_ESRD"]) == ("CNA", 86, "85_89", "0", "N", "0")
