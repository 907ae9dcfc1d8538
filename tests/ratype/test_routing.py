"""Every supported RAType x aged/disabled x OREC 0-3 lands where docs/scoring.md says.

The expectations below are written by hand from docs/scoring.md
"Segments from RAType" (its CMS-HCC and ESRD tables and the rules below them); they are deliberately not read from codes.csv, so
a wrong row in codes.csv fails here. The parametrization is over the union of
the codes in codes.csv and the codes below: a code missing from either fails.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from ratype import code_table
from tests.ratype.helpers import one_member


class Route(NamedTuple):
    family: str
    segment_aged: str
    segment_nonaged: str
    fbd: bool  # with NEMCAID = N
    pbd: bool
    lti: bool
    graft_duration: str | None
    transplant_month: int | None
    normalization_group: str
    band_scheme: str  # ce / ne / dialysis_ne
    orec0_under65_shown: str | None


def _graft(aged: str, nonaged: str, fbd: bool, pbd: bool, lti: bool, duration: str) -> Route:
    return Route("ESRD", aged, nonaged, fbd, pbd, lti, duration, None, "graft", "ce", "2")


EXPECTED: dict[str, Route] = {
    "CN": Route("CMS-HCC", "CNA", "CND", False, False, False, None, None, "cms_hcc", "ce", "1"),
    "CP": Route("CMS-HCC", "CPA", "CPD", False, True, False, None, None, "cms_hcc", "ce", "1"),
    "CF": Route("CMS-HCC", "CFA", "CFD", True, False, False, None, None, "cms_hcc", "ce", "1"),
    "I": Route("CMS-HCC", "INS", "INS", False, False, True, None, None, "cms_hcc", "ce", None),
    "E": Route("CMS-HCC", "NE", "NE", False, False, False, None, None, "cms_hcc", "ne", None),
    "D1": Route("ESRD", "DI", "DI", True, False, False, None, None, "dialysis", "ce", "2"),
    "D2": Route("ESRD", "DI", "DI", False, False, False, None, None, "dialysis", "ce", "2"),
    "I3": Route("ESRD", "DI", "DI", True, False, True, None, None, "dialysis", "ce", "2"),
    "I4": Route("ESRD", "DI", "DI", False, False, True, None, None, "dialysis", "ce", "2"),
    "ED": Route("ESRD", "DNE", "DNE", False, False, False, None, None, "dialysis", "dialysis_ne",
                "2"),
    "C3": _graft("GFA", "GFN", True, False, False, "4_9"),
    "C4": _graft("GNPA", "GNPN", False, True, False, "4_9"),
    "C5": _graft("GNPA", "GNPN", False, False, False, "4_9"),
    "C6": _graft("GFA", "GFN", True, False, False, "10PL"),
    "C7": _graft("GNPA", "GNPN", False, True, False, "10PL"),
    "C8": _graft("GNPA", "GNPN", False, False, False, "10PL"),
    "I5": _graft("GI", "GI", True, False, True, "4_9"),
    "I6": _graft("GI", "GI", False, True, True, "4_9"),
    "I7": _graft("GI", "GI", False, False, True, "4_9"),
    "I8": _graft("GI", "GI", True, False, True, "10PL"),
    "I9": _graft("GI", "GI", False, True, True, "10PL"),
    "IA": _graft("GI", "GI", False, False, True, "10PL"),
    "I1": _graft("GI", "GI", False, False, True, "4_9"),  # treated as I7
    "E1": Route("ESRD", "GNE", "GNE", False, False, False, "4_9", None, "graft", "ne", "2"),
    "E2": Route("ESRD", "GNE", "GNE", False, False, False, "10PL", None, "graft", "ne", "2"),
    "G1": Route("ESRD", "TRANSPLANT", "TRANSPLANT", False, False, False, None, 1, "dialysis", "ce",
                "2"),
    "G2": Route("ESRD", "TRANSPLANT", "TRANSPLANT", False, False, False, None, 2, "dialysis", "ce",
                "2"),
}

# Ages chosen so the three band schemes name different bands (PY2025, Feb 1 2025).
AGED_DOB, AGED_AGE = "1958-06-15", 66
DISABLED_DOB, DISABLED_AGE = "1960-06-15", 64
BANDS = {
    ("ce", AGED_AGE, False): "65_69",
    ("ne", AGED_AGE, False): "66",
    ("dialysis_ne", AGED_AGE, False): "65_69",
    ("ce", DISABLED_AGE, False): "60_64",
    ("ce", DISABLED_AGE, True): "60_64",  # CE cells use the plain age: no 64 -> 65 recode
    ("ne", DISABLED_AGE, False): "60_64",
    ("ne", DISABLED_AGE, True): "65",  # AGESEXV2: AGEF=64 & OREC='0' -> NEF65
    ("dialysis_ne", DISABLED_AGE, False): "60_64",
    ("dialysis_ne", DISABLED_AGE, True): "65_69",  # E2118P1M: 64/OREC 0 recode, NEF65_69 sum
}

CSV_SUPPORTED = set(code_table().filter(code_table()["supported"] == "yes")["code"].to_list())
ALL_CODES = sorted(CSV_SUPPORTED | set(EXPECTED))


def test_supported_codes_match_hand_written_list():
    assert CSV_SUPPORTED == set(EXPECTED)


@pytest.mark.parametrize("orec", [0, 1, 2, 3])
@pytest.mark.parametrize("aged", [True, False], ids=["aged", "disabled"])
@pytest.mark.parametrize("code", ALL_CODES)
def test_route(code: str, aged: bool, orec: int):
    assert code in CSV_SUPPORTED, f"{code} is expected but not supported in codes.csv"
    assert code in EXPECTED, f"{code} is supported in codes.csv but has no hand-written expectation"
    route = EXPECTED[code]
    dob, age = (AGED_DOB, AGED_AGE) if aged else (DISABLED_DOB, DISABLED_AGE)
    row = one_member(RAType=code, DOB=dob, OREC=str(orec))

    assert row["model_family"] == route.family
    assert row["segment"] == (route.segment_aged if aged else route.segment_nonaged)
    assert row["RAType"] == row["segment"]
    assert row["RAType_Org"] == code
    assert row["Age"] == row["age"] == age
    assert row["aged"] is aged
    assert row["ne_aged"] is (aged or orec == 0)  # 64 with OREC 0 is NE-aged
    assert row["Age_Band"] == BANDS[(route.band_scheme, age, orec == 0 and not aged)]
    assert row["orec"] == orec
    assert row["OREC_Org"] == str(orec)
    shown = route.orec0_under65_shown if (not aged and orec == 0) else None
    assert row["OREC"] == (shown or str(orec))
    assert row["disabl"] is (not aged and orec != 0)
    assert row["origds"] is (aged and orec == 1)
    assert row["Originally_Disabled"] == ("Y" if aged and orec == 1 else "N")
    assert row["Originally_ESRD"] == ("1" if aged and orec in (2, 3) else "0")
    expected_ne_origds = orec == 1 if code == "ED" else (aged and orec == 1)
    assert row["ne_origds"] is expected_ne_origds
    assert row["fbd"] is route.fbd
    assert row["pbd"] is route.pbd
    assert row["lti"] is route.lti
    assert row["graft_duration"] == route.graft_duration
    assert row["transplant_month"] == route.transplant_month
    assert row["normalization_group"] == route.normalization_group
    assert row["ltimcaid"] is False and row["nemcaid"] is False
    assert row["warnings"] == ([] if code != "I1" else row["warnings"])


@pytest.mark.parametrize("code", ["ED", "E1", "E2"])
def test_esrd_new_enrollee_dual_status_comes_from_nemcaid(code: str):
    with_medicaid = one_member(RAType=code, NEMCAID="Y")
    without = one_member(RAType=code, NEMCAID="N")
    assert (with_medicaid["fbd"], with_medicaid["pbd"], with_medicaid["nemcaid"]) == (True, False, True)
    assert (without["fbd"], without["pbd"], without["nemcaid"]) == (False, False, False)
    assert with_medicaid["NEMCAID"] == "Y" and with_medicaid["warnings"] == []


def test_new_enrollee_nemcaid_is_its_own_input_not_a_dual_code():
    row = one_member(RAType="E", NEMCAID="Y")
    assert (row["nemcaid"], row["fbd"], row["pbd"], row["segment"]) == (True, False, False, "NE")


def test_institutional_ltimcaid():
    row = one_member(RAType="I", LTIMCAID="Y")
    assert (row["ltimcaid"], row["LTIMCAID"], row["warnings"]) == (True, "Y", [])


def test_dialysis_new_enrollee_originally_disabled_at_any_age():
    # E2118P1M line 459: dialysis NE_ORIGDS = (OREC='1') with no age condition.
    young = one_member(RAType="ED", DOB="1990-06-15", OREC="1")
    assert young["ne_origds"] is True and young["origds"] is False
    # Graft NE (E1) and CMS-HCC NE (E) need age >= 65 (NE_ORIGDS_G, V2823T2M).
    assert one_member(RAType="E1", DOB="1990-06-15", OREC="1")["ne_origds"] is False
    assert one_member(RAType="E", DOB="1990-06-15", OREC="1")["ne_origds"] is False
    assert one_member(RAType="E", DOB="1950-06-15", OREC="1")["ne_origds"] is True


def test_orec_3_is_not_originally_disabled():
    row = one_member(RAType="CN", DOB="1950-06-15", OREC="3")
    assert (row["origds"], row["Originally_Disabled"], row["Originally_ESRD"]) == (False, "N", "1")


def test_orec_2_member_with_cms_hcc_code_gets_cms_hcc_route():
    row = one_member(RAType="CN", DOB="1970-06-15", OREC="2")
    assert (row["model_family"], row["segment"], row["disabl"]) == ("CMS-HCC", "CND", True)
