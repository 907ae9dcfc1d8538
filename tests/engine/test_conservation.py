"""Nothing is dropped silently (`docs/api.md`): `engine.run`'s two nets.

`_unscored_members` reports a member that passed the normalizer but got no raw
row; `_account_for_every_member` reports an input row that ended in neither
`rows` nor `errors`. Both decide the usual case by counting distinct
`input_index` values; these tests break a stage on purpose so the slow path
has to find the lost member (and would fail if the count said "all present").
"""

from __future__ import annotations

import polars as pl

from engine import run
from reference.store import ReferenceStore

MEMBERSHIPS = pl.DataFrame(
    {
        "MemberID": ["A1", "B2", "C3"],
        "DOB": ["1950-03-01", "1948-07-15", "1955-11-30"],
        "Gender": ["F", "M", "F"],
        "RAType": ["CN", "CN", "CN"],
        "OREC": ["0", "0", "0"],
    }
)
DIAGNOSES = pl.DataFrame(
    {
        "MemberID": ["A1", "B2", "C3"],
        "FromDOS": ["2024-03-01"] * 3,
        "ThruDOS": ["2024-03-01"] * 3,
        "DxCode": ["E119", "I5022", "J449"],
    }
)


def _score(memberships: pl.DataFrame = MEMBERSHIPS) -> run.BatchResult:
    return run.score_batch(memberships, DIAGNOSES, 2025, ReferenceStore.default())


def test_every_member_scored_without_errors():
    result = _score()
    assert result.errors.is_empty()
    assert sorted(result.rows.get_column("Member_Id").unique().to_list()) == ["A1", "B2", "C3"]


def test_a_member_the_raw_engine_loses_becomes_a_member_error(monkeypatch):
    score_raw = run.score_raw

    def losing_b2(members, diagnoses, tables, detail=False):
        raw = score_raw(members, diagnoses, tables, detail=detail)
        object.__setattr__(raw, "rows", raw.rows.filter(pl.col("MemberID") != "B2"))
        return raw

    monkeypatch.setattr(run, "score_raw", losing_b2)
    result = _score()
    assert result.errors.select("MemberID", "field").rows() == [("B2", "RAType")]
    assert "no model of PY2025 produced a score" in result.errors.item(0, "message")
    assert "B2" not in result.rows.get_column("Member_Id").to_list()


def test_a_member_lost_after_scoring_becomes_an_internal_error(monkeypatch):
    build_rows = run.build_rows

    def losing_c3(*args, **kwargs):
        return build_rows(*args, **kwargs).filter(pl.col("Member_Id") != "C3")

    monkeypatch.setattr(run, "build_rows", losing_c3)
    result = _score()
    assert result.errors.select("MemberID", "field").rows() == [("C3", "MemberID")]
    assert "internal error" in result.errors.item(0, "message")


def test_a_repeated_identical_row_has_an_error_naming_the_first():
    # the second A1 row collapses into the first: it is scored once, and the
    # repeat has an error of its own naming the row it repeats
    repeated = pl.concat([MEMBERSHIPS, MEMBERSHIPS.head(1)])
    result = _score(repeated)
    assert result.errors.select("MemberID", "input_index", "field", "duplicate_of").rows() == [
        ("A1", MEMBERSHIPS.height, "MemberID", 0)]
    assert result.rows.get_column("Member_Id").n_unique() == 3
