"""A batch above `engine.run.CHUNK_MEMBERS` answers exactly as one pass.

Chunks are scored two at a time on threads, and diagnoses are routed to their
member's chunk by a 64-bit hash of MemberID (`engine.run._diagnosis_chunks`).
These tests compare a chunked run with an unchunked one, frame for frame,
including with hashes forced to collide: between two members (the string join
must take over) and between an unknown member and a member (its diagnoses
land in that member's chunk and must still be reported as `unknown_member`).
"""

from __future__ import annotations

import polars as pl
import pytest

from benchmarks.roster import make_roster
from engine import run
from reference.store import ReferenceStore


@pytest.fixture(scope="module")
def roster():
    memberships, diagnoses = make_roster(1_200, seed=7)
    # diagnoses of members the batch does not have, spread over the file
    strangers = diagnoses.head(40).with_columns(
        pl.format("Z{}", pl.col("MemberID").str.slice(1)).alias("MemberID")
    )
    return memberships, pl.concat([strangers, diagnoses, strangers.head(5)])


def _frames(result: run.BatchResult) -> dict[str, pl.DataFrame]:
    return {
        "rows": result.rows,
        "errors": result.errors,
        "dx_counts": result.dx_counts.sort(result.dx_counts.columns),
    }


def _score(roster, chunk_members: int, monkeypatch) -> run.BatchResult:
    monkeypatch.setattr(run, "CHUNK_MEMBERS", chunk_members)
    memberships, diagnoses = roster
    return run.score_batch(memberships, diagnoses, 2025, ReferenceStore.default())


def _assert_same(chunked: run.BatchResult, whole: run.BatchResult) -> None:
    assert chunked.dx_summary == whole.dx_summary
    assert chunked.dx_summary["unknown_member"] >= 40  # the 5 repeats count as duplicates
    for name, frame in _frames(whole).items():
        assert _frames(chunked)[name].equals(frame, null_equal=True), name


@pytest.fixture(scope="module")
def whole(roster):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _score(roster, 10_000, monkeypatch)


def test_chunked_equals_one_pass(roster, whole, monkeypatch):
    _assert_same(_score(roster, 250, monkeypatch), whole)


def test_members_sharing_a_hash_fall_back_to_the_string_join(roster, whole, monkeypatch):
    # every ID of the same length shares a hash: members collide with each other
    monkeypatch.setattr(
        run, "_member_hash", lambda ids: ids.str.len_bytes().cast(pl.UInt64).alias("_member_hash")
    )
    _assert_same(_score(roster, 250, monkeypatch), whole)


def test_an_unknown_member_sharing_a_members_hash_is_still_unknown(roster, whole, monkeypatch):
    # "Z000123" hashes like member "M000123"; members stay distinct
    monkeypatch.setattr(
        run,
        "_member_hash",
        lambda ids: ids.str.slice(1).hash().alias("_member_hash"),
    )
    _assert_same(_score(roster, 250, monkeypatch), whole)
