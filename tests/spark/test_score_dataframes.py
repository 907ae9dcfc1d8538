"""`app.spark.score_dataframes` on Spark local[2] answers exactly as `score_batch`.

The same 20k-member roster (planted rejects, duplicates, blank IDs, strangers'
diagnoses, ~3% ESRD; `tests/spark/roster.py`) is scored once by
`engine.run.score_batch` in this process and once through Spark, split over
several input partitions and scored in several buckets; every field of every
row and error must be equal, and so must the diagnoses summary.
"""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from app import spark as spark_scoring
from engine.run import score_batch
from reference.store import ReferenceStore, UnsupportedPaymentYear
from tests.spark.roster import planted_roster, spark_frames

#: a member's rows, in a total order (raw V28, raw V24 or ESRD, active)
ROW_KEY = ["input_index", "Active_Score", "Clinical_Version"]


@pytest.fixture(scope="module")
def roster():
    return planted_roster(20_000, seed=21)


@pytest.fixture(scope="module")
def inputs(spark, roster):
    return spark_frames(spark, *roster)


def _collect(frame) -> pl.DataFrame:
    return pl.from_arrow(frame.toArrow())


def _expected(frame: pl.DataFrame, layout: spark_scoring.ScoredLayout, schema: dict) -> pl.DataFrame:
    return frame.cast({name: dtype for name, dtype in schema.items() if name in frame.columns})


def _assert_same_answer(
    scores, expected, payment_year: int, detail: bool = False, finance: bool = False
) -> None:
    layout = spark_scoring.ScoredLayout.of(payment_year, ReferenceStore.default(), detail, finance)
    rows, errors = scores
    assert rows.schema == spark_scoring.ScoredLayout.spark_schema(layout)[1 : 1 + len(layout.row_schema)]
    got_rows = _collect(rows)
    want_rows = _expected(expected.rows, layout, layout.row_schema)
    assert got_rows.select(ROW_KEY).is_unique().all()
    assert_frame_equal(got_rows.sort(ROW_KEY), want_rows.sort(ROW_KEY), check_exact=True)
    got_errors = _collect(errors)
    want_errors = _expected(expected.errors, layout, layout.error_schema)
    assert_frame_equal(
        got_errors.sort("input_index"), want_errors.sort("input_index"), check_exact=True
    )
    assert scores.dx_summary == expected.dx_summary
    assert scores.member_count == expected.member_count
    assert scores.members_scored == want_rows.filter(pl.col("Active_Score") == 1).height
    assert scores.members_rejected == want_errors.get_column("input_index").n_unique()


@pytest.fixture(scope="module")
def scored_2025(inputs):
    scores = spark_scoring.score_dataframes(*inputs, 2025, partitions=7)
    yield scores
    scores.unpersist()


@pytest.fixture(scope="module")
def expected_2025(roster):
    return score_batch(*roster, 2025, ReferenceStore.default())


def test_the_roster_exercises_every_case(roster, inputs, expected_2025):
    members, diagnoses = inputs
    assert members.rdd.getNumPartitions() >= 3 and diagnoses.rdd.getNumPartitions() >= 3
    # each input slice is its own input partition (`spark_frames`): most members have
    # diagnoses in a slice other than their membership row's
    member_slice, dx_slice = (
        frame.select("MemberID", (pl.int_range(pl.len()) // -(-frame.height // 3)).alias(name))
        for frame, name in zip(roster, ("m", "d"), strict=True)
    )
    elsewhere = member_slice.join(dx_slice, on="MemberID").filter(pl.col("m") != pl.col("d"))
    assert elsewhere.get_column("MemberID").n_unique() > 10_000

    errors = expected_2025.errors
    messages = errors.get_column("message")
    # conflicting rows: 12 MemberIDs listed twice with different values, an error per row
    assert messages.str.contains("different sets of values").sum() == 24
    assert errors.filter(pl.col("field") == "MemberID").height >= 4  # blank and null IDs
    assert errors.filter(pl.col("field") == "Gender").height >= 10
    assert errors.filter(pl.col("field") == "RAType").height >= 10
    # ESRD members (~3%): scored with ESRD V24 rows, or member errors naming ESRD
    esrd_scored = expected_2025.rows.filter(pl.col("Clinical_Version") == "ESRD V24")
    esrd_rejected = messages.str.contains("ESRD").sum()
    assert esrd_scored.get_column("Member_Id").n_unique() + esrd_rejected > 300
    # identical repeats: an error each, naming the earlier row by its global index
    repeats = errors.filter(pl.col("duplicate_of").is_not_null())
    assert repeats.height == 12
    assert messages.str.contains(r"identical duplicate of memberships\[\d+\]").sum() == 12
    assert expected_2025.dx_summary["unknown_member"] >= 65


def test_py2025_through_spark_equals_score_batch(scored_2025, expected_2025):
    assert scored_2025.partitions == 7
    _assert_same_answer(scored_2025, expected_2025, 2025)


def test_py2024_esrd_members_scored_through_spark_equal_score_batch(roster, inputs):
    expected = score_batch(*roster, 2024, ReferenceStore.default())
    with spark_scoring.score_dataframes(*inputs, 2024, members_per_partition=6_000) as scores:
        assert scores.partitions == 4
        assert scores.partition_stats["max_memberships"] < 6_500
        esrd = expected.rows.filter(pl.col("Clinical_Version") == "ESRD V24")
        assert esrd.height > 300
        _assert_same_answer(scores, expected, 2024)


def test_detail_fields_through_spark_equal_score_batch(spark, roster):
    members, diagnoses = roster
    members = members.head(2_000)
    expected = score_batch(members, diagnoses, 2024, ReferenceStore.default(), detail=True)
    assert "HCCs" in expected.rows.columns
    with spark_scoring.score_dataframes(
        *spark_frames(spark, members, diagnoses, partitions=2), 2024, detail=True, partitions=3
    ) as scores:
        _assert_same_answer(scores, expected, 2024, detail=True)


def test_rows_write_straight_to_parquet(scored_2025, tmp_path):
    target = str(tmp_path / "rows")
    scored_2025.rows.write.parquet(target)
    back = pl.read_parquet(f"{target}/*.parquet")
    layout = spark_scoring.ScoredLayout.of(2025, ReferenceStore.default(), False)
    assert dict(back.schema) == layout.row_schema


def test_a_missing_required_column_is_named_before_any_job(spark, inputs):
    members, diagnoses = inputs
    with pytest.raises(spark_scoring.SparkInputError, match="diagnoses: no column 'DxCode'"):
        spark_scoring.score_dataframes(members, diagnoses.drop("DxCode"), 2025)


def test_an_unsupported_year_fails_on_the_driver(inputs):
    with pytest.raises(UnsupportedPaymentYear, match="supported years"):
        spark_scoring.score_dataframes(*inputs, 1999)


def test_columns_match_case_insensitively_and_any_type(spark):
    members = spark.createDataFrame(
        [("M1", "1950-02-03", "F", "CN", "N", "N", "N", 0)],
        "memberid string, ` DOB ` string, GENDER string, RAType string, Hospice string, "
        "LTIMCAID string, NEMCAID string, OREC int",
    )
    diagnoses = spark.createDataFrame(
        [("M1", "2024-03-01", "2024-03-01", "E119")], "MemberID string, FromDOS string, ThruDOS string, dxcode string"
    )
    with spark_scoring.score_dataframes(members, diagnoses, 2025) as scores:
        rows = _collect(scores.rows)
        assert rows.height == 3 and scores.dx_summary["used"] == 1
        assert rows.get_column("OREC_Org").to_list() == ["0", "0", "0"]


# ------------------------------------------------------------ conservation, reference (no Spark job)


def test_conservation_failures_name_the_counts():
    counts = {
        "memberships_received": 10,
        "memberships_accounted": 9,
        "members_in": 10,
        "members_out": 9,
        "diagnoses_received": 20,
        "dx:used": 15,
        "dx:unknown_code": 4,
    }
    with pytest.raises(spark_scoring.ConservationError) as failure:
        spark_scoring.check_conservation(counts, member_count=11, diagnosis_count=20)
    message = str(failure.value)
    assert "11 membership rows in the input but 10 reached a scoring task" in message
    assert "10 membership rows scored but only 9 are in rows or errors" in message
    assert "10 distinct MemberIDs in but 9 in rows and errors" in message
    assert "20 diagnosis rows in the input but 19 in the diagnoses summary" in message


def test_a_bucket_accounts_for_every_row(roster):
    members, diagnoses = roster
    members = members.head(3_000).with_row_index("input_index", offset=1_000_000)
    diagnoses = diagnoses.with_row_index("input_index", offset=5_000_000)
    counts = dict(
        spark_scoring.score_bucket(members, diagnoses, 2025, ReferenceStore.default())[2]
        .select(spark_scoring.COUNT_KEY, spark_scoring.COUNT_VALUE)
        .iter_rows()
    )
    spark_scoring.check_conservation(counts, members.height, diagnoses.height)
    assert counts["memberships_received"] == counts["memberships_accounted"] == 3_000


class _Broadcast:
    def __init__(self, value):
        self.value = value


def test_a_worker_with_other_reference_tables_refuses_to_score(roster):
    import pyarrow as pa

    layout = spark_scoring.ScoredLayout.of(2025, ReferenceStore.default(), False)
    scorer = spark_scoring._BucketScorer(
        2025, False, layout, _Broadcast({"release_id": "PY2025-other", "sha256": "0" * 64})
    )
    members = pa.table({"input_index": pa.array([], pa.int64()), "MemberID": pa.array([], pa.string())})
    with pytest.raises(spark_scoring.ReferenceMismatch, match="PY2025-other"):
        scorer(members, members)


def test_finance_fields_pass_through_spark(spark, roster):
    members, diagnoses = roster
    members = members.head(500).with_columns(
        Enrollment_Months=pl.Series([str(1 + i % 12) for i in range(500)]),
        Monthly_Rate=pl.Series(["1000.00", "1234.56", None, "bad"] * 125),
    )
    expected = score_batch(members, diagnoses, 2025, ReferenceStore.default())
    assert "MA_Payment" in expected.rows.columns
    with spark_scoring.score_dataframes(
        *spark_frames(spark, members, diagnoses, partitions=2), 2025, partitions=2
    ) as scores:
        _assert_same_answer(scores, expected, 2025, finance=True)
