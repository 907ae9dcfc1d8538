"""`raf score` with finance columns and rates, `raf compare`, `raf report`: files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from app.cli import main
from tests.finance.roster import write_priced_roster


def score(tmp_path: Path, year: int, out: str, *extra: str) -> int:
    members, diagnoses, rates = write_priced_roster(tmp_path)
    return main(["score", "--payment-year", str(year), "--members", str(members), "--diagnoses",
                 str(diagnoses), "--rates", str(rates), "--out", str(tmp_path / out), "--quiet",
                 *extra])


def test_csv_output_and_detail_file_carry_the_dollars(tmp_path: Path) -> None:
    assert score(tmp_path, 2025, "scores.csv", "--detail") == 2
    rows = pl.read_csv(tmp_path / "scores.csv", infer_schema=False)
    active = rows.filter(pl.col("Active_Score") == "1")
    a03 = active.filter(pl.col("Member_Id") == "A03").row(0, named=True)
    assert (a03["Enrollment_Months"], a03["Monthly_Rate"], a03["Rate_Source"]) == (
        "6", "1000.0", "Monthly_Rate")
    assert a03["MA_Payment_Monthly"] == "517.44" and a03["MA_Payment"] == "3104.64"
    assert rows.filter(pl.col("Active_Score") == "0")["MA_Payment"].null_count() == (
        rows.height - active.height)
    errors = pl.read_csv(tmp_path / "scores.errors.csv", infer_schema=False)
    assert sorted(zip(errors["MemberID"], errors["field"])) == [
        ("A09", "Enrollment_Months"), ("A10", "Monthly_Rate")]
    detail = pl.read_csv(tmp_path / "scores.detail.csv", infer_schema=False)
    lines = detail.filter((pl.col("Section") == "payment_lines") & (pl.col("MemberID") == "A03"))
    assert set(lines["kind"]) == {"bucket", "hcc"}
    assert "RAF_Demographic" in set(lines["code"])


def test_without_finance_columns_the_output_is_unchanged(tmp_path: Path) -> None:
    members, diagnoses, _ = write_priced_roster(tmp_path)
    plain = tmp_path / "plain.csv"
    pl.read_csv(members, infer_schema=False).drop(
        "Enrollment_Months", "Enrollment_Start", "Enrollment_End", "County", "Monthly_Rate"
    ).write_csv(plain)
    assert main(["score", "--payment-year", "2025", "--members", str(plain), "--diagnoses",
                 str(diagnoses), "--out", str(tmp_path / "s.parquet"), "--quiet"]) == 0
    assert "MA_Payment" not in pl.read_parquet(tmp_path / "s.parquet").columns


def test_bad_rate_file_is_fatal_naming_the_line(tmp_path: Path, capsys) -> None:
    members, _diagnoses, rates = write_priced_roster(tmp_path)
    rates.write_text("payment_year,county,monthly_rate\n2025,01001,100\n2025,01001,200\n")
    code = main(["score", "--payment-year", "2025", "--members", str(members), "--rates",
                 str(rates), "--out", str(tmp_path / "s.parquet"), "--quiet"])
    assert code == 1
    assert "line 3: a second rate for county 01001" in capsys.readouterr().err


def test_compare_two_years(tmp_path: Path, capsys) -> None:
    assert score(tmp_path, 2025, "py2025.parquet") == 2
    assert score(tmp_path, 2026, "py2026.parquet") == 2
    # B without one member of A
    b = pl.read_parquet(tmp_path / "py2026.parquet")
    b = b.filter(pl.col("Member_Id") != "A01")
    b.write_parquet(tmp_path / "b.parquet")
    code = main(["compare", str(tmp_path / "py2025.parquet"), str(tmp_path / "b.parquet"),
                 "-o", str(tmp_path / "deltas.csv")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    deltas = pl.read_csv(tmp_path / "deltas.csv", infer_schema=False)
    assert deltas.columns == ["MemberID", "In", "Segment_A", "Segment_B", "Active_A", "Active_B",
                              "Delta", "HCCs_Gained", "HCCs_Lost"]
    assert summary["members_a_only"] == 1 and deltas.filter(pl.col("In") == "a_only")[
        "MemberID"].to_list() == ["A01"]
    both = deltas.filter(pl.col("In") == "both")
    assert summary["members_both"] == both.height == summary["delta"]["count"]
    assert summary["up"] + summary["down"] + summary["unchanged"] == both.height
    a03 = both.filter(pl.col("MemberID") == "A03").row(0, named=True)
    # 2024 dates count for PY2025, not for PY2026 (collection year 2025): HCC137 is lost
    assert a03["HCCs_Lost"] == "V28 HCC137" and a03["HCCs_Gained"] == ""
    assert float(a03["Delta"]) == round(float(a03["Active_B"]) - float(a03["Active_A"]), 6)
    assert summary["payment_year_a"] == 2025 and summary["payment_year_b"] == 2026


def test_report_refuses_what_is_not_a_summary(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"members_scored": "many"}')
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 1
    assert "not a roster summary" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none.json"), "-o", str(tmp_path / "r.html")]) == 1


def test_a_json_request_carries_its_own_rates(tmp_path: Path) -> None:
    from tests.api.conftest import SEED_REQUEST

    request = json.loads(json.dumps(SEED_REQUEST))
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    assert main(["score", "--payment-year", "2025", "--members", str(path), "--out",
                 str(tmp_path / "seed.parquet"), "--quiet"]) == 0
    assert "MA_Payment" not in pl.read_parquet(tmp_path / "seed.parquet").columns

    request["memberships"][1]["County"] = "01001"
    request["rates"] = [{"county": "01001", "monthly_rate": "1100.50", "source": "bid"}]
    path.write_text(json.dumps(request))
    assert main(["score", "--payment-year", "2025", "--members", str(path), "--out",
                 str(tmp_path / "priced.parquet"), "--quiet"]) == 0
    rows = pl.read_parquet(tmp_path / "priced.parquet").filter(pl.col("Active_Score") == 1)
    m00913 = rows.filter(pl.col("Member_Id") == "M00913").row(0, named=True)
    assert (m00913["Rate_Source"], m00913["MA_Payment"]) == ("bid", 7251.48)  # 604.29 x 12

    request["rates"][0]["monthly_rate"] = "a lot"
    path.write_text(json.dumps(request))
    assert main(["score", "--payment-year", "2025", "--members", str(path), "--out",
                 str(tmp_path / "bad.parquet"), "--quiet"]) == 1
