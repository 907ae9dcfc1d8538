"""`raf reconcile`: the report says exactly which members differ from CMS's scores, and why."""

from __future__ import annotations

import json
from decimal import Decimal

import polars as pl
import pytest

from app.cli import main
from tests.batch.conftest import run_score, write_roster
from tests.mmr import generate as gen
from tests.mmr.test_reader import MONTHS, member


def _active(scores_path) -> pl.DataFrame:
    return pl.read_parquet(scores_path).filter(pl.col("Active_Score") == 1)


def _reconcile(tmp_path, scores, cms, *extra: str) -> tuple[int, pl.DataFrame, dict]:
    out = tmp_path / "reconciliation.csv"
    code = main(["reconcile", str(scores), "--cms", str(cms), "--out", str(out), "--quiet", *extra])
    table = pl.read_csv(out, infer_schema=False) if out.exists() else pl.DataFrame()
    summary_path = tmp_path / "reconciliation.summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return code, table, summary


def test_all_equal_but_one_within_rounding_and_one_off_with_another_ratype(engine, tmp_path):
    members, dx = write_roster(tmp_path, 40)
    scores = tmp_path / "scores.parquet"
    assert run_score(members, scores, diagnoses=dx) == 0
    active = _active(scores).sort("Member_Id")
    ids = active["Member_Id"].to_list()
    shifted, other = ids[3], ids[7]
    our_ratype = dict(zip(ids, active["RAType_Org"].to_list(), strict=True))
    other_ratype = "CF" if our_ratype[other] != "CF" else "CN"
    rows = []
    for member_id, total in zip(ids, active["RAF_Total"].to_list(), strict=True):
        score = Decimal(str(total))  # CMS's figure, written as text: no float arithmetic
        ratype = our_ratype[member_id]
        if member_id == shifted:
            score += Decimal("0.0004")
        if member_id == other:
            score += Decimal("0.1")
            ratype = other_ratype
        rows.append({"MemberID": member_id, "RiskScore": str(score), "RAType": ratype})
    cms = tmp_path / "cms.csv"
    pl.DataFrame(rows).write_csv(cms)

    code, table, summary = _reconcile(tmp_path, scores, cms)
    assert code == 0
    n = len(ids)
    assert (summary["members"], summary["matched"]) == (n, n)
    assert (summary["exact"], summary["within_rounding"], summary["off_by_more"]) == (n - 2, 1, 1)
    assert (summary["missing_cms"], summary["missing_ours"], summary["cms_invalid"]) == (0, 0, 0)
    assert summary["causes"] == {"ratype_differs": 1, "within_rounding": 1}
    assert summary["mean_difference"] == pytest.approx(-0.1004 / n, abs=1e-6)
    differing = table.filter(pl.col("Match") != "exact").sort("MemberID").to_dicts()
    assert [(r["MemberID"], r["Match"], r["Likely_Cause"], r["Difference"]) for r in differing] == [
        (shifted, "within_rounding", "within_rounding", "-0.0004"),
        (other, "off", "ratype_differs", "-0.1"),
    ]
    assert (
        differing[1]["Cause_Detail"]
        == f"RAType differs: ours {our_ratype[other]}, CMS {other_ratype}"
    )
    assert table.filter(pl.col("Match") == "exact")["Difference"].unique().to_list() == ["0.0"]
    assert table.filter(pl.col("Match") == "exact")["Likely_Cause"].null_count() == n - 2

    # --fail-over: a plan's CI fails when a member is off by more than its threshold
    assert _reconcile(tmp_path, scores, cms, "--fail-over", "0.05")[0] == 4
    assert _reconcile(tmp_path, scores, cms, "--fail-over", "0.2")[0] == 0


def _scores_file(tmp_path, members: list[tuple[str, str, str, str]]):
    """A `raf score`-shaped output: raw rows (Active_Score 0) and the active row per member;
    `members` = (MemberID, RAType code, segment, active score as text)."""
    rows = []
    for member_id, code, segment, total in members:
        for model, active in (("V28", 0), ("V24", 0), ("V28 / V24", 1)):
            rows.append(
                {
                    "Payment_Year": 2025,
                    "Member_Id": member_id,
                    "RAType_Org": code,
                    "RAType": segment,
                    "OREC_Org": "0",
                    "RA_Variable": f"{segment}_F70_74",
                    "RAF_Disease": 0.0,
                    "RAF_Total": float(total) + (0.0 if active else 0.25),
                    "Clinical_Version": model,
                    "Active_Score": active,
                }
            )
    path = tmp_path / "scores.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


def test_mmr_side_reports_exact_rounding_and_ratype_cases(tmp_path):
    ids = [f"{i}EG4TE5MK7{i}" for i in range(1, 9)]
    scores = _scores_file(tmp_path, [(m, "CN", "CNA", "0.8710") for m in ids])
    rows = []
    for member_id in ids:
        fields = {"RiskScore": "00.8710", "RAType": "CN"}
        if member_id == ids[2]:
            fields = {"RiskScore": "00.8714", "RAType": "CN"}
        if member_id == ids[5]:
            fields = {"RiskScore": "00.9710", "RAType": "CF"}
        rows += gen.monthly_records(member(member_id, **fields), MONTHS)
    cms = gen.write(tmp_path / "MONMEMD.txt", rows)
    code, table, summary = _reconcile(tmp_path, scores, cms)
    assert code == 0
    assert (summary["exact"], summary["within_rounding"], summary["off_by_more"]) == (6, 1, 1)
    assert summary["causes"] == {"ratype_differs": 1, "within_rounding": 1}
    assert summary["cms"]["format"] == "mmr" and summary["cms"]["months_counted"] == 8 * 12
    off = table.filter(pl.col("Match") == "off").row(0, named=True)
    assert (off["MemberID"], off["Difference"], off["CMS_RAType"], off["CMS_Months"]) == (
        ids[5],
        "-0.1",
        "CF",
        "12",
    )


def test_members_on_one_side_say_so_and_a_rejection_says_why(tmp_path):
    scores = _scores_file(tmp_path, [("A1", "CN", "CNA", "1.0"), ("B2", "CN", "CNA", "1.0")])
    (tmp_path / "scores.errors.csv").write_text(
        "MemberID,line,field,message\nC3,4,DOB,DOB '1950-13-01' is not a date\n"
    )
    cms = tmp_path / "cms.csv"
    cms.write_text("MemberID,RiskScore\nA1,1.0\nC3,0.9\nD4,abc\n")
    code, table, summary = _reconcile(tmp_path, scores, cms)
    assert code == 0
    by_id = {r["MemberID"]: r for r in table.to_dicts()}
    assert by_id["A1"]["Match"] == "exact"
    assert (by_id["B2"]["Match"], by_id["B2"]["Likely_Cause"]) == ("missing_cms", "missing_cms")
    assert by_id["C3"]["Match"] == "missing_ours"
    assert by_id["C3"]["Cause_Detail"] == "we rejected the member: DOB '1950-13-01' is not a date"
    assert by_id["D4"]["Match"] == "missing_ours"  # unreadable on CMS's side, absent on ours
    assert (summary["missing_cms"], summary["missing_ours"]) == (1, 2)
    assert summary["cms"]["rows_unreadable"] == 1
    # --fail-on-missing makes one-sided members fail the threshold too
    assert _reconcile(tmp_path, scores, cms, "--fail-over", "1", "--fail-on-missing")[0] == 4


def test_dollar_effect_is_difference_times_rate_times_months_in_cents(tmp_path):
    scores = _scores_file(tmp_path, [("A1", "CN", "CNA", "1.012345"), ("B2", "CN", "CNA", "0.5")])
    cms = tmp_path / "cms.csv"
    cms.write_text(
        "MemberID,RiskScore,PaymentMonth\n"
        "A1,1.0,202501\nA1,1.0,202502\nA1,1.0,202503\n"  # three months, latest 1.0
        "B2,0.4,2024-12\nB2,0.6,2025-06\n"  # 2024 is another payment year
    )
    code, table, summary = _reconcile(tmp_path, scores, cms, "--monthly-rate", "1234.56")
    assert code == 0
    by_id = {r["MemberID"]: r for r in table.to_dicts()}
    # A1: 0.012345 x $1,234.56 x 3 months = $45.7214...; B2: -0.1 x $1,234.56 x 1 = -$123.456
    expected_a = (Decimal("0.012345") * Decimal(123456) * 3).quantize(Decimal(1)) / 100
    assert Decimal(by_id["A1"]["Dollar_Effect"]) == expected_a == Decimal("45.72")
    assert Decimal(by_id["B2"]["Dollar_Effect"]) == Decimal("-123.46")
    assert by_id["B2"]["CMS_Payment_Month"] == "2025-06"
    assert summary["dollar_effect"]["total"] == pytest.approx(45.72 - 123.46)
    assert summary["cms"]["rows_other_years"] == 1


def test_duplicate_cms_rows_without_a_month_are_not_guessed(tmp_path):
    scores = _scores_file(tmp_path, [("A1", "CN", "CNA", "1.0")])
    cms = tmp_path / "cms.csv"
    cms.write_text("MemberID,RiskScore\nA1,1.0\nA1,1.1\n")
    _, table, summary = _reconcile(tmp_path, scores, cms)
    row = table.row(0, named=True)
    assert row["Match"] == "cms_invalid"
    assert "different RiskScore for one member and no PaymentMonth" in row["Cause_Detail"]
    assert summary["cms_invalid"] == 1


def test_unusable_inputs_are_fatal_naming_the_file(tmp_path, capsys):
    scores = _scores_file(tmp_path, [("A1", "CN", "CNA", "1.0")])
    cms = tmp_path / "cms.csv"
    cms.write_text("Member,Score\nA1,1.0\n")
    assert _reconcile(tmp_path, scores, cms)[0] == 1
    assert "cms.csv: CMS scores have no column 'MemberID'" in capsys.readouterr().err
    assert _reconcile(tmp_path, tmp_path / "nope.parquet", cms)[0] == 1
    assert "nope.parquet: scores file not found" in capsys.readouterr().err


def test_scores_with_no_member_reconcile_as_all_missing_ours(tmp_path):
    scores = tmp_path / "scores.parquet"
    pl.DataFrame().write_parquet(scores)  # what a run that rejected every member publishes
    cms = tmp_path / "cms.csv"
    cms.write_text("MemberID,RiskScore\nA1,1.0\n")
    code, table, summary = _reconcile(tmp_path, scores, cms, "--payment-year", "2025")
    assert code == 0
    assert table["Match"].to_list() == ["missing_ours"] and summary["missing_ours"] == 1


def test_county_rates_from_scoring_an_mmr_price_the_reconciliation(engine, tmp_path):
    rows = gen.monthly_records(member("1EG4TE5MK73", County="01001"), MONTHS[:6])
    mmr_path = gen.write(tmp_path / "MONMEND.txt", rows)
    rates = tmp_path / "rates.csv"
    rates.write_text("payment_year,county,monthly_rate,source\n2025,01001,1000.00,plan bid\n")
    scores = tmp_path / "scores.parquet"
    assert (
        main(
            [
                "score",
                "--payment-year",
                "2025",
                "--mmr",
                str(mmr_path),
                "--rates",
                str(rates),
                "--out",
                str(scores),
                "--quiet",
            ]
        )
        == 0
    )
    ours = _active(scores).row(0, named=True)
    assert (ours["Enrollment_Months"], ours["Monthly_Rate"]) == (6, 1000.0)
    cms = tmp_path / "cms.csv"
    cms.write_text(
        f"MemberID,RiskScore\n1EG4TE5MK73,{Decimal(str(ours['RAF_Total'])) - Decimal('0.01')}\n"
    )
    _, table, summary = _reconcile(tmp_path, scores, cms)
    # 0.01 x $1,000.00 x 6 months (the MMR's months, the county's rate) = $60.00
    assert table.row(0, named=True)["Dollar_Effect"] == "60.0"
    assert summary["dollar_effect"]["total"] == 60.0
