"""The roster summary against a polars computation written here, on a synthetic roster
with rates, partial years and rejected members, through the CLI, the API and a file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from app.cli import main
from app.summary import summary_of_file
from tests.batch.roster import roster

N = 3_000
HALF_UNIT = 5e-7  # the summary rounds to 6 decimals


def priced(members: pl.DataFrame) -> pl.DataFrame:
    """Every 3rd member a county (one county unpriced), every 4th its own rate, months vary."""
    i = pl.int_range(members.height, dtype=pl.Int64)
    return members.with_columns(
        Enrollment_Months=pl.when(i % 5 == 0).then(None).otherwise((i % 13).cast(pl.String)),
        County=pl.when(i % 3 == 0).then(pl.format("0100{}", (i % 4).cast(pl.String))),
        Monthly_Rate=pl.when(i % 4 == 1).then(pl.format("{}.{}", 900 + i % 300,
                                                         (i % 100).cast(pl.String).str.zfill(2))),
    )


RATES = ("payment_year,county,monthly_rate,source\n2025,01000,1000.00,bid\n"
         "2025,01001,1010.10,bid\n2025,01002,1020.55,bid\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("summary")
    members, diagnoses = roster(N, bad_every=97)
    priced(members).write_csv(directory / "members.csv")
    diagnoses.write_csv(directory / "dx.csv")
    (directory / "rates.csv").write_text(RATES)
    out = directory / "scores.parquet"
    code = main(["score", "--payment-year", "2025", "--members", str(directory / "members.csv"),
                 "--diagnoses", str(directory / "dx.csv"), "--rates", str(directory / "rates.csv"),
                 "--out", str(out), "--summary", str(directory / "summary.json"), "--quiet",
                 "--chunk-members", "1000"])
    assert code == 2  # the planted bad members
    return {"dir": directory, "rows": pl.read_parquet(out),
            "errors": pl.read_csv(directory / "scores.errors.csv", infer_schema=False),
            "summary": json.loads((directory / "summary.json").read_text())}


def expected_members(rows: pl.DataFrame) -> pl.DataFrame:
    """Independently of app.summary: one row per member from its rows."""
    raw = rows.filter(pl.col("Active_Score") == 0)
    pivot = raw.pivot(on="Clinical_Version", index="Member_Id", values="RAF_Total",
                      aggregate_function="first")
    segment = raw.group_by("Member_Id", maintain_order=True).agg(
        segment=pl.col("RA_Variable").first().str.split("_").list.first())
    active = rows.filter(pl.col("Active_Score") == 1).select(
        "Member_Id", "RAType", active="RAF_Total", months=pl.col("Enrollment_Months").fill_null(12),
        payment="MA_Payment")
    return active.join(pivot, on="Member_Id").join(segment, on="Member_Id")


def close(actual: float | None, wanted: float) -> bool:
    return actual is not None and abs(actual - wanted) <= HALF_UNIT + 1e-12


def test_counts(run) -> None:
    s, members, errors = run["summary"], expected_members(run["rows"]), run["errors"]
    assert s["members_received"] == N
    assert s["members_scored"] == members.height
    assert s["members_rejected"] == errors.height > 0
    assert s["members_scored"] + s["members_rejected"] <= N
    assert s["rejected"]["by_field"] == dict(errors.group_by("field").len().iter_rows())
    assert s["by_ratype"] == dict(members.group_by("RAType").len().iter_rows())
    assert sum(s["by_segment_family"].values()) == members.height
    dx = s["diagnoses"]
    assert dx["received"] == dx["used"] + dx["dropped"] == pl.read_csv(run["dir"] / "dx.csv").height


@pytest.mark.parametrize("name,column", [("active", "active"), ("raw_v28", "V28"),
                                         ("raw_v24", "V24")])
def test_score_statistics_overall_and_by_segment(run, name, column) -> None:
    members = expected_members(run["rows"])
    groups = [(run["summary"]["scores"], members)] + [
        (g["scores"], members.filter(pl.col("segment") == g["segment"]))
        for g in run["summary"]["by_segment"]
    ]
    assert len(groups) > 3
    for stats, frame in groups:
        values = frame.get_column(column).drop_nulls()
        got = stats[name]
        assert got["count"] == values.len()
        assert close(got["mean"], values.mean())
        assert close(got["median"], values.median())
        assert close(got["p10"], values.quantile(0.1, "linear"))
        assert close(got["p90"], values.quantile(0.9, "linear"))
        assert close(got["min"], values.min()) and close(got["max"], values.max())


def test_member_months_and_payment(run) -> None:
    s, members = run["summary"], expected_members(run["rows"])
    months = members.get_column("months").sum()
    assert s["member_months"] == months
    weighted = (members["active"] * members["months"]).sum() / months
    assert close(s["active_mean_member_month_weighted"], weighted)
    priced_members = members.filter(pl.col("payment").is_not_null())
    cents = int((priced_members["payment"] * 100).round().sum())
    payment = s["payment"]
    assert payment["members_priced"] == priced_members.height > 0
    assert payment["members_unpriced"] == members.height - priced_members.height > 0
    assert payment["total_cents"] == cents
    priced_months = int(priced_members["months"].sum())
    assert payment["member_months"] == priced_months
    assert abs(payment["pmpm_cents"] - cents / priced_months) <= 0.5
    by_segment = {g["segment"]: g.get("payment_cents") for g in s["by_segment"]}
    wanted = priced_members.group_by("segment").agg(
        (pl.col("payment") * 100).round().sum().cast(pl.Int64))
    assert {k: v for k, v in by_segment.items() if v is not None} == dict(wanted.iter_rows())


def test_transition_effect(run) -> None:
    members = expected_members(run["rows"]).drop_nulls(["V24", "V28"])
    wanted = members.group_by("segment").agg(
        (pl.col("V28").mean() - pl.col("V24").mean()).alias("effect"), pl.len())
    got = {t["segment"]: t for t in run["summary"]["transition"]}
    assert set(got) == set(wanted["segment"])
    for segment, effect, n in wanted.iter_rows():
        assert got[segment]["members"] == n and close(got[segment]["effect"], effect)
    overall = run["summary"]["transition_overall"]
    assert close(overall["effect"], (members["V28"] - members["V24"]).mean())


def test_histogram_counts_every_scored_member(run) -> None:
    bins = run["summary"]["active_histogram"]
    members = expected_members(run["rows"])
    assert sum(b["members"] for b in bins) == members.height
    first = bins[0]
    assert first["members"] == members.filter(pl.col("active") < first["upper"]).height


def test_summary_of_the_file_matches_the_run(run) -> None:
    from_file = json.loads(__import__("app.summary", fromlist=["encode"]).encode(
        summary_of_file(run["dir"] / "scores.parquet")))
    assert from_file == run["summary"]  # with the errors file and the run summary beside it


def test_raf_summary_command(run, tmp_path: Path, capsys) -> None:
    assert main(["summary", str(run["dir"] / "scores.parquet"), "-o",
                 str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["payment"] == run["summary"]["payment"]
    assert main(["summary", str(tmp_path / "missing.parquet")]) == 1
    assert "not found" in capsys.readouterr().err


def test_api_summary_equals_cli_summary(client, run) -> None:
    members = pl.read_csv(run["dir"] / "members.csv", infer_schema=False)
    diagnoses = pl.read_csv(run["dir"] / "dx.csv", infer_schema=False)
    request = {
        "payment_year": 2025,
        "memberships": [{k: v for k, v in m.items() if v is not None} for m in members.to_dicts()],
        "diagnoses": diagnoses.to_dicts(),
        "rates": [{"county": c, "monthly_rate": r, "source": "bid"}
                  for c, r in (("01000", "1000.00"), ("01001", "1010.10"), ("01002", "1020.55"))],
    }
    body = client.post("/v1/risk-scores?summary=true", json=request).json()
    api = body["summary"]
    for key in ("scores", "payment", "transition", "member_months", "members_scored",
                "members_rejected", "diagnoses", "by_segment_family"):
        assert api[key] == run["summary"][key], key


def test_rows_in_any_order_give_the_same_facts(run) -> None:
    """The member-by-member fast path and the MemberID grouping agree."""
    from app.summary import member_facts

    rows = run["rows"]
    laid_out = member_facts(rows).sort("Member_Id")
    shuffled = member_facts(rows.sample(fraction=1.0, shuffle=True, seed=7)).sort("Member_Id")
    assert laid_out.height == rows.filter(pl.col("Active_Score") == 1).height
    assert shuffled.equals(laid_out)


def test_data_quality_warnings_are_in_every_summary(client, tmp_path: Path) -> None:
    """PY2026 scored on 2024 dates of service: input-trust's top-level warning (#12) is in
    the summary of the CLI run, of its file, and of the same request through the API."""
    from app.summary import encode
    from tests.finance.roster import write_priced_roster

    members, diagnoses, rates = write_priced_roster(tmp_path)
    out, summary = tmp_path / "scores.parquet", tmp_path / "summary.json"
    main(["score", "--payment-year", "2026", "--members", str(members), "--diagnoses",
          str(diagnoses), "--rates", str(rates), "--out", str(out), "--summary", str(summary),
          "--quiet"])
    from_run = json.loads(summary.read_text())
    codes = {w["code"] for w in from_run["warnings"]} - {"member_warning"}
    assert codes, from_run["warnings"]
    assert json.loads(encode(summary_of_file(out))) == from_run

    request = {
        "payment_year": 2026,
        "memberships": [{k: v for k, v in m.items() if v not in (None, "")}
                        for m in pl.read_csv(members, infer_schema=False).to_dicts()],
        "diagnoses": pl.read_csv(diagnoses, infer_schema=False).to_dicts(),
    }
    api = client.post("/v1/risk-scores?summary=true", json=request).json()
    assert {w["code"] for w in api["warnings"]} <= {w["code"] for w in api["summary"]["warnings"]}
    assert codes <= {w["code"] for w in api["summary"]["warnings"]}
