"""Shared builders for the ratype tests."""

from __future__ import annotations

import polars as pl

from ratype import normalize

BASE_MEMBER = {
    "MemberID": "M1",
    "DOB": "1950-06-15",
    "Gender": "F",
    "RAType": "CN",
    "Hospice": "N",
    "LTIMCAID": "N",
    "NEMCAID": "N",
    "OREC": "0",
}


def member(**fields: str | None) -> dict[str, str | None]:
    return {**BASE_MEMBER, **fields}


def run(rows: list[dict[str, str | None]], payment_year: int = 2025) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = pl.DataFrame(rows, schema={name: pl.Utf8 for name in rows[0]})
    return normalize(frame, payment_year)


def one_member(payment_year: int = 2025, **fields: str | None) -> dict:
    members, errors = run([member(**fields)], payment_year)
    assert errors.is_empty(), errors.to_dicts()
    assert members.height == 1
    return members.row(0, named=True)


def one_error(payment_year: int = 2025, **fields: str | None) -> dict:
    members, errors = run([member(**fields)], payment_year)
    assert members.is_empty(), members.to_dicts()
    assert errors.height == 1
    return errors.row(0, named=True)
