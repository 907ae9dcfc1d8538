"""`raf spark-score` writes what `raf score` writes for the same files.

Run in-process on the test session's Spark (the command reuses an active
session and leaves it running, as under spark-submit it uses spark-submit's).
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from app.cli import main
from engine.run import score_batch
from reference.store import ReferenceStore
from tests.spark.roster import planted_roster

ROW_ORDER = ["Member_Id", "Active_Score", "Clinical_Version"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("roster")
    members, diagnoses = planted_roster(4_000, seed=5)
    members.write_csv(folder / "members.csv")
    diagnoses.write_parquet(folder / "diagnoses.parquet")
    return folder


def _dataset(path) -> pl.DataFrame:
    return pl.read_parquet(f"{path}/*.parquet")


def test_spark_score_writes_what_raf_score_writes(spark, files, tmp_path, capsys):
    common = ["--payment-year", "2025", "--members", str(files / "members.csv"),
              "--diagnoses", str(files / "diagnoses.parquet")]
    assert main(["score", *common, "--out", str(tmp_path / "batch.parquet"), "--quiet"]) == 2
    capsys.readouterr()
    code = main(["spark-score", *common, "--out", str(tmp_path / "spark"), "--partitions", "3"])
    assert code == 2  # some members rejected, as raf score says
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    batch_rows = pl.read_parquet(tmp_path / "batch.parquet")
    spark_rows = _dataset(tmp_path / "spark")
    assert spark_rows.columns == batch_rows.columns
    assert_frame_equal(spark_rows.sort(ROW_ORDER), batch_rows.sort(ROW_ORDER), check_exact=True)

    batch_errors = pl.read_csv(tmp_path / "batch.errors.csv", infer_schema=False)
    spark_errors = _dataset(tmp_path / "spark_errors").cast(pl.String)
    assert spark_errors.height > 30
    by_line = pl.col("line").cast(pl.Int64)
    assert_frame_equal(spark_errors.sort(by_line), batch_errors.sort(by_line), check_exact=True)

    assert summary["member_count"] == 4_000 + 30 + 12 + 12 + 4
    assert summary["members_rejected"] == spark_errors.get_column("line").n_unique()
    assert sum(summary["diagnoses_summary"].values()) == summary["diagnosis_count"]
    expected = score_batch(
        pl.read_csv(files / "members.csv", infer_schema=False),
        pl.read_parquet(files / "diagnoses.parquet"),
        2025,
        ReferenceStore.default(),
    )
    assert summary["diagnoses_summary"] == expected.dx_summary


def test_spark_score_refuses_a_missing_column_and_a_json_request(spark, tmp_path, capsys):
    members = tmp_path / "members.csv"
    members.write_text("Member,DOB\nM1,1950-01-01\n")
    code = main(["spark-score", "--payment-year", "2025", "--members", str(members),
                 "--out", str(tmp_path / "out")])
    assert code == 1
    assert "memberships: no column 'MemberID'" in capsys.readouterr().err
    code = main(["spark-score", "--payment-year", "2025", "--members", str(tmp_path / "r.json"),
                 "--out", str(tmp_path / "out")])
    assert code == 1
    assert "score it with `raf score`" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
