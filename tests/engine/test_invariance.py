"""Order independence, duplicates, and one code path for one member or many."""

from __future__ import annotations

import random

import polars as pl

from engine import score_raw
from tests.engine.conftest import make_diagnoses, make_members

CODES = ["F13229", "I509", "E119", "J449", "N184", "Z95811", "C771", "C450", "G800", "G801",
         "I470", "F200", "L89004", "D66", "C50911", "S62X5", "C58", "B20"]
SEGMENTS = [("CNA", 70), ("CND", 50), ("CFA", 80), ("CFD", 40), ("CPA", 90), ("CPD", 30),
            ("INS", 60), ("INS", 85), ("NE", 66), ("SNPNE", 64)]


def _population(n: int = 60, seed: int = 7):
    rng = random.Random(seed)
    members, dx = [], []
    for i in range(n):
        segment, age = SEGMENTS[i % len(SEGMENTS)]
        member_id = f"M{i:03d}"
        members.append(
            {"MemberID": member_id, "segment": segment, "age": age + rng.randint(0, 4) * (age >= 65),
             "sex": rng.choice("FM"), "orec": rng.choice([0, 0, 1, 2, 3]),
             "ltimcaid": segment == "INS" and rng.random() < 0.5,
             "nemcaid": segment in ("NE", "SNPNE") and rng.random() < 0.5}
        )
        for code in rng.sample(CODES, rng.randint(0, 8)):
            year = rng.choice([2024, 2024, 2024, 2023])
            dx.append((member_id, code, f"{year}-05-01", f"{year}-05-03"))
    dx.append(("NOBODY", "I509", "2024-05-01", "2024-05-03"))
    return make_members(members), make_diagnoses(dx)


def _canonical(result):
    trail = {
        name: frame.drop("dx_index", strict=False).sort(frame.drop("dx_index", strict=False).columns)
        for name, frame in result.trail.items()
        if name != "dropped_dx"
    }
    dropped = result.trail["dropped_dx"].filter(pl.col("reason") != "duplicate")
    dropped = dropped.drop("dx_index").sort(dropped.drop("dx_index").columns)
    return result.rows, trail, dropped


def _assert_same(a, b):
    rows_a, trail_a, dropped_a = _canonical(a)
    rows_b, trail_b, dropped_b = _canonical(b)
    assert rows_a.equals(rows_b)
    for name in trail_a:
        assert trail_a[name].equals(trail_b[name]), name
    assert dropped_a.equals(dropped_b)


def test_shuffling_members_and_diagnoses_changes_nothing(tables_2025):
    members, dx = _population()
    baseline = score_raw(members, dx, tables_2025, detail=True)
    shuffled = score_raw(
        members.sample(fraction=1.0, shuffle=True, seed=1),
        dx.sample(fraction=1.0, shuffle=True, seed=2),
        tables_2025,
        detail=True,
    )
    _assert_same(baseline, shuffled)
    assert baseline.dx_summary == shuffled.dx_summary


def test_duplicate_diagnosis_rows_change_nothing(tables_2025):
    members, dx = _population()
    baseline = score_raw(members, dx, tables_2025, detail=True)
    doubled = pl.concat([dx, dx.with_columns(pl.col("input_index") + dx.height)])
    again = score_raw(members, doubled, tables_2025, detail=True)
    _assert_same(baseline, again)
    summary = dict(again.dx_summary)
    assert summary.pop("duplicate") == dx.height
    assert summary == {k: v for k, v in baseline.dx_summary.items() if k != "duplicate"}


def test_summary_accounts_for_every_diagnosis_row(tables_2025):
    members, dx = _population()
    result = score_raw(members, dx, tables_2025, detail=True)
    assert sum(result.dx_summary.values()) == dx.height
    assert result.dx_summary["unknown_member"] == 1
    assert result.trail["dropped_dx"].height == dx.height - result.dx_summary["used"]


def test_one_member_batches_equal_the_whole_batch(tables_2025):
    members, dx = _population(n=20)
    whole = score_raw(members, dx, tables_2025).rows
    singles = pl.concat(
        [
            score_raw(members.filter(pl.col("MemberID") == m), dx, tables_2025).rows
            for m in members["MemberID"]
        ]
    )
    assert whole.equals(singles.sort("input_index", pl.col("model") == "V24"))


def test_every_member_gets_one_row_per_model(tables_2025, tables_2026):
    members, dx = _population()
    rows_2025 = score_raw(members, dx, tables_2025).rows
    assert rows_2025.height == 2 * members.height
    assert rows_2025.group_by("input_index").agg(pl.col("model")).filter(
        pl.col("model") != ["V28", "V24"]
    ).height == 0
    rows_2026 = score_raw(members, dx.with_columns(
        pl.col("FromDOS").str.replace("2024", "2025"), pl.col("ThruDOS").str.replace("2024", "2025")
    ), tables_2026).rows
    assert rows_2026["model"].unique().to_list() == ["V28"]
    assert rows_2026.height == members.height


def test_totals_are_the_sum_of_the_six_buckets(tables_2025):
    members, dx = _population()
    rows = score_raw(members, dx, tables_2025).rows
    buckets = ["demographic", "demographic_interaction", "disease", "disease_count",
               "disease_interaction", "disability_interaction"]
    assert rows.schema["total"] == pl.Int64
    assert rows.filter(pl.sum_horizontal(buckets) != pl.col("total")).height == 0


def test_dropped_dx_is_available_without_detail(tables_2025):
    members, dx = _population()
    plain = score_raw(members, dx, tables_2025)
    detailed = score_raw(members, dx, tables_2025, detail=True)
    assert plain.trail == {}
    assert plain.dropped_dx.equals(detailed.trail["dropped_dx"])
    assert plain.dropped_dx.height == dx.height - plain.dx_summary["used"]


def test_no_variable_is_counted_twice(tables_2025):
    members, dx = _population()
    scored = score_raw(members, dx, tables_2025, detail=True).trail["variables"]
    keys = ["input_index", "model", "coef_segment", "variable"]
    assert scored.height == scored.select(keys).unique().height
