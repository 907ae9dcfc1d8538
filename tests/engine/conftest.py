"""Fixtures for the engine tests: real reference data, hand-built members frames.

``make_members`` builds a members frame per ``docs/ARCHITECTURE.md`` "Members
frame" from a few fields, deriving the CMS flags exactly as AGESEXV2.TXT does
(DISABL = age < 65 and OREC != 0; ORIGDS = OREC 1 and not DISABL;
NE_ORIGDS = age >= 65 and OREC 1), so the engine tests do not depend on the
normalizer's state.
"""

from __future__ import annotations

import polars as pl
import pytest

from ratype import MEMBERS_SCHEMA
from reference.store import ReferenceStore

ESRD_SEGMENTS = {"DI", "DNE", "GFA", "GFN", "GNPA", "GNPN", "GI", "GNE", "TRANSPLANT"}


@pytest.fixture(scope="session")
def store() -> ReferenceStore:
    return ReferenceStore()


@pytest.fixture(scope="session")
def tables_2025(store):
    return store.year(2025)


@pytest.fixture(scope="session")
def tables_2024(store):
    return store.year(2024)


@pytest.fixture(scope="session")
def tables_2026(store):
    return store.year(2026)


def make_members(rows: list[dict]) -> pl.DataFrame:
    """rows: MemberID, segment, age, sex; optional orec (0), ltimcaid, nemcaid, fbd, pbd, lti,
    graft_duration, transplant_month (ESRD inputs per the members-frame contract)."""
    records = []
    for position, row in enumerate(rows):
        age = int(row["age"])
        orec = int(row.get("orec", 0))
        disabl = age < 65 and orec != 0
        records.append(
            {
                "input_index": row.get("input_index", position),
                "MemberID": row["MemberID"],
                "age": age,
                "sex": row["sex"],
                "orec": orec,
                "model_family": "ESRD" if row["segment"] in ESRD_SEGMENTS else "CMS-HCC",
                "segment": row["segment"],
                "disabl": disabl,
                "origds": orec == 1 and not disabl,
                "ne_origds": age >= 65 and orec == 1,
                "ltimcaid": bool(row.get("ltimcaid", False)),
                "nemcaid": bool(row.get("nemcaid", False)),
                "aged": age >= 65,
                "ne_aged": age >= 65 or (age == 64 and orec == 0),
                "fbd": bool(row.get("fbd", False)),
                "pbd": bool(row.get("pbd", False)),
                "lti": bool(row.get("lti", False)),
                "graft_duration": row.get("graft_duration"),
                "transplant_month": row.get("transplant_month"),
            }
        )
    # dtypes are the normalizer's own, so hand-built members cannot drift from ratype's
    return pl.DataFrame(records, schema={name: MEMBERS_SCHEMA[name] for name in records[0]})


def make_diagnoses(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """rows: (MemberID, DxCode, FromDOS, ThruDOS)."""
    return pl.DataFrame(
        {
            "MemberID": [r[0] for r in rows],
            "DxCode": [r[1] for r in rows],
            "FromDOS": [r[2] for r in rows],
            "ThruDOS": [r[3] for r in rows],
        },
        schema={"MemberID": pl.Utf8, "DxCode": pl.Utf8, "FromDOS": pl.Utf8, "ThruDOS": pl.Utf8},
    ).with_row_index("input_index")


def dx_in(member_id: str, *codes: str, year: int = 2024) -> list[tuple[str, str, str, str]]:
    return [(member_id, code, f"{year}-03-01", f"{year}-03-02") for code in codes]


def row_of(result, member_id: str, model: str) -> dict:
    rows = result.rows.filter((pl.col("MemberID") == member_id) & (pl.col("model") == model))
    assert rows.height == 1, rows
    return rows.row(0, named=True)
