"""engine.run.score_batch on the real reference data: the seed, conservation, errors."""

from __future__ import annotations

import polars as pl
import pytest

from engine.run import score_batch
from reference.store import ReferenceStore, UnsupportedPaymentYear

SEED_MEMBERS = pl.DataFrame(
    {
        "MemberID": ["M00912", "M00913"], "DOB": ["1985-10-13", "1938-06-16"],
        "Gender": ["M", "F"], "RAType": ["CP", "CN"], "Hospice": ["N", "N"],
        "LTIMCAID": ["N", "N"], "NEMCAID": ["N", "N"], "OREC": ["0", "0"],
    }
)
SEED_DIAGNOSES = pl.DataFrame(
    {
        "MemberID": ["M00912", "M00912"], "FromDOS": ["2024-08-18", "2024-01-06"],
        "ThruDOS": ["2024-08-21", "2024-01-10"], "DxCode": ["F13229", "S62X5"],
    }
)


@pytest.fixture(scope="module")
def store() -> ReferenceStore:
    return ReferenceStore()


def test_seed_batch(store) -> None:
    result = score_batch(SEED_MEMBERS, SEED_DIAGNOSES, 2025, store)
    assert result.errors.is_empty()
    assert result.rows["RAF_Total"].to_list() == [0.609, 0.557, 0.517435, 0.624, 0.641, 0.549109]
    assert result.rows["input_index"].to_list() == [0, 0, 0, 1, 1, 1]
    assert result.rows.columns[0] == "input_index" and result.rows.columns[-1] == "Warnings"
    assert result.member_count == 2
    assert result.dx_summary["used"] == 1 and result.dx_summary["unknown_code"] == 1
    assert result.reference["release_id"].startswith("PY2025")
    assert result.trail == {}


def test_detail_returns_the_trail_and_per_member_dx_counts(store) -> None:
    result = score_batch(SEED_MEMBERS, SEED_DIAGNOSES, 2025, store, detail=True)
    assert {"hccs", "dropped_dx"} <= set(result.trail)
    counts = {(m, r): c for m, r, c in result.dx_counts.iter_rows()}
    assert counts == {("M00912", "used"): 1, ("M00912", "unknown_code"): 1}


def test_optional_columns_may_be_missing(store) -> None:
    result = score_batch(SEED_MEMBERS.drop("Hospice", "LTIMCAID", "NEMCAID"),
                         SEED_DIAGNOSES, 2025, store)
    assert result.rows.height == 6


def test_every_member_is_in_rows_or_errors(store) -> None:
    members = pl.DataFrame(
        {
            "MemberID": ["A", "B", "C", "D", "E", "A2", "A2"],
            "DOB": ["1950-01-01", "1950-01-01", "nope", "1950-01-01", "1950-01-01",
                    "1960-05-05", "1960-05-05"],
            "Gender": ["F", "M", "F", "F", "F", "M", "M"],
            "RAType": ["CN", "PK", "CN", "D1", "C3", "CF", "CF"],  # PACE, ESRD dialysis, graft
            "OREC": ["0", "0", "0", "2", "2", "1", "1"],
        }
    )
    result = score_batch(members, SEED_DIAGNOSES.head(0), 2025, store)
    scored = set(result.rows["Member_Id"].to_list())
    rejected = set(result.errors["MemberID"].to_list())
    assert scored | rejected == {"A", "B", "C", "D", "E", "A2"}
    assert not scored & set(result.errors.filter(pl.col("duplicate_of").is_null())["MemberID"])
    assert result.errors.filter(pl.col("duplicate_of").is_not_null())["MemberID"].to_list() == [
        "A2"]  # the identical repeat names the row it repeats
    assert {"B", "C"} <= rejected
    assert result.rows.filter(pl.col("Member_Id") == "A2").height == 3  # identical repeat: once
    # PY2025 ESRD: no published factor -> the raw row only, and a warning naming it
    esrd = result.rows.filter(pl.col("Member_Id").is_in(["D", "E"]))
    assert esrd["Active_Score"].to_list() == [0, 0]
    assert all("PY2025" in w[0] for w in esrd["Warnings"].to_list())
    assert sum(w["count"] for w in result.warnings) == 2


def test_unsupported_year_raises(store) -> None:
    with pytest.raises(UnsupportedPaymentYear, match="2031"):
        score_batch(SEED_MEMBERS, SEED_DIAGNOSES, 2031, store)
