"""The seed's two members (app/examples/seed_request.json), PY2025, real reference data."""

from __future__ import annotations

from engine import score_raw
from tests.engine.conftest import make_diagnoses, make_members, row_of

SEED_MEMBERS = [
    {"MemberID": "M00912", "segment": "CPD", "age": 39, "sex": "M", "orec": 0},
    {"MemberID": "M00913", "segment": "CNA", "age": 86, "sex": "F", "orec": 0},
]
SEED_DIAGNOSES = [
    ("M00912", "F13229", "2024-08-18", "2024-08-21"),
    ("M00912", "S62X5", "2024-01-06", "2024-01-10"),
]


def _score(tables, detail=False):
    return score_raw(make_members(SEED_MEMBERS), make_diagnoses(SEED_DIAGNOSES), tables, detail)


def test_seed_m00912_v28_row(tables_2025):
    row = row_of(_score(tables_2025), "M00912", "V28")
    assert (row["demographic"], row["disease"], row["total"]) == (261, 348, 609)
    assert row["demographic_interaction"] == row["disease_count"] == 0
    assert row["disease_interaction"] == row["disability_interaction"] == 0
    assert row["ra_variable"] == "CPD_M35_44, HCC137"


def test_seed_m00912_v24_row(tables_2025):
    row = row_of(_score(tables_2025), "M00912", "V24")
    assert (row["demographic"], row["disease"], row["total"]) == (282, 275, 557)
    assert row["ra_variable"] == "CPD_M35_44, HCC55"


def test_seed_m00913_demographic_only(tables_2025):
    result = _score(tables_2025)
    v28, v24 = row_of(result, "M00913", "V28"), row_of(result, "M00913", "V24")
    assert (v28["demographic"], v28["total"], v28["ra_variable"]) == (624, 624, "CNA_F85_89")
    assert (v24["demographic"], v24["total"], v24["ra_variable"]) == (641, 641, "CNA_F85_89")


def test_seed_rows_are_v28_then_v24_in_member_order(tables_2025):
    rows = _score(tables_2025).rows
    assert rows.select("MemberID", "model").rows() == [
        ("M00912", "V28"),
        ("M00912", "V24"),
        ("M00913", "V28"),
        ("M00913", "V24"),
    ]
    assert rows.columns == [
        "input_index", "MemberID", "model", "demographic", "demographic_interaction",
        "disease", "disease_count", "disease_interaction", "disability_interaction",
        "total", "ra_variable",
    ]


def test_seed_s62x5_is_unknown_code(tables_2025):
    result = _score(tables_2025, detail=True)
    assert result.dx_summary["used"] == 1
    assert result.dx_summary["unknown_code"] == 1
    dropped = result.trail["dropped_dx"]
    assert dropped.select("DxCode", "reason").rows() == [("S62X5", "unknown_code")]


def test_seed_trail_names_the_code_behind_each_hcc(tables_2025):
    hccs = _score(tables_2025, detail=True).trail["hccs"]
    assert hccs.select("model", "hcc", "coefficient_milli", "dx_codes").sort("model").rows() == [
        ("V24", 55, 275, ["F13229"]),
        ("V28", 137, 348, ["F13229"]),
    ]
