"""Fixtures for the ESRD tests: the real reference data and a one-call scorer.

Members are written as (MemberID, RAType, sex, age on Feb 1, OREC, NEMCAID,
codes); the DOB is June 1 of the year that gives that age on February 1 of the
payment year, and every diagnosis is dated in the collection year (payment
year - 1), so the tests go through ``engine.run.score_batch`` end to end
(ratype.normalize -> score_raw -> blend -> rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
import pytest

from engine.run import score_batch
from reference.store import ReferenceStore

CODING_ADJUSTMENT = Decimal("0.059")  # parameters.csv coding_adjustment ALL (PY2024-2026)


@dataclass(frozen=True)
class Member:
    member_id: str
    ratype: str
    sex: str
    age: int
    orec: str = "0"
    nemcaid: str = "N"
    codes: tuple[str, ...] = field(default_factory=tuple)


@pytest.fixture(scope="session")
def store() -> ReferenceStore:
    return ReferenceStore()


def dob_for(age: int, payment_year: int) -> str:
    return f"{payment_year - age - 1}-06-01"


def score(store: ReferenceStore, members: list[Member], payment_year: int, detail: bool = False):
    memberships = pl.DataFrame(
        {
            "MemberID": [m.member_id for m in members],
            "DOB": [dob_for(m.age, payment_year) for m in members],
            "Gender": [m.sex for m in members],
            "RAType": [m.ratype for m in members],
            "Hospice": ["N"] * len(members),
            "LTIMCAID": ["N"] * len(members),
            "NEMCAID": [m.nemcaid for m in members],
            "OREC": [m.orec for m in members],
        }
    )
    dx = [(m.member_id, code) for m in members for code in m.codes]
    day = f"{payment_year - 1}-03-01"
    diagnoses = pl.DataFrame(
        {
            "MemberID": [d[0] for d in dx],
            "FromDOS": [day] * len(dx),
            "ThruDOS": [day] * len(dx),
            "DxCode": [d[1] for d in dx],
        },
        schema={f: pl.String for f in ("MemberID", "FromDOS", "ThruDOS", "DxCode")},
    )
    return score_batch(memberships, diagnoses, payment_year, store, detail=detail)


def rows_of(result, member_id: str) -> tuple[dict, dict]:
    """(raw ESRD row, active row) of one member; fails unless there are exactly those two."""
    rows = result.rows.filter(pl.col("Member_Id") == member_id)
    assert rows["Active_Score"].to_list() == [0, 1], rows
    return rows.row(0, named=True), rows.row(1, named=True)


def active_value(raw: str, factor: str) -> float:
    """round6(raw / factor * (1 - coding adjustment)), by hand in decimals (scoring.md)."""
    value = Decimal(raw) / Decimal(factor) * (1 - CODING_ADJUSTMENT)
    return float(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))
