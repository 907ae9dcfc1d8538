"""Nothing lost silently in `raf score` and jobs: the cases of issue 12, each a test that
failed before the fix.

* a file without a column the scoring needs is one fatal error naming the file and
  the columns (exit 1; a job fails at submit with 400), not a run that drops every
  diagnosis as `invalid_dates` and exits 0;
* PY2026 on diagnoses dated 2024 warns, naming the years; `--strict` exits 3;
* identical duplicate membership rows are each named in the errors file;
* diagnoses of a rejected member count as `member_rejected`;
* the CLI prints the diagnoses summary and writes it beside the output, and its
  counts are the job record's.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from litestar.testing import TestClient

from app.jobs import JobService
from tests.batch.conftest import run_score
from tests.batch.test_jobs import make_app, settings, submit_files, wait_for

pytestmark = pytest.mark.usefixtures("engine")

MEMBERS = """MemberID,DOB,Gender,RAType,Hospice,LTIMCAID,NEMCAID,OREC
M00912,1985-10-13,M,CP,N,N,N,0
M00913,1938-06-16,F,CN,N,N,N,0
M00914,1950-01-01,X,CN,N,N,N,0
M00913,1938-06-16,F,CN,N,N,N,0
"""
DIAGNOSES = """MemberID,FromDOS,ThruDOS,DxCode
M00912,2024-08-18,2024-08-21,F13229
M00912,2024-01-06,2024-01-10,S62X5
M00913,2024-03-01,2024-03-02,E119
M00914,2024-03-01,2024-03-02,E119
"""


def write(directory: Path, members: str = MEMBERS, diagnoses: str = DIAGNOSES) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "members.csv").write_text(members)
    (directory / "dx.csv").write_text(diagnoses)
    return directory / "members.csv", directory / "dx.csv"


def drop_column(text: str, column: str) -> str:
    frame = pl.read_csv(text.encode(), infer_schema=False).drop(column)
    return frame.write_csv()


# ---- required columns


@pytest.mark.parametrize("column", ["ThruDOS", "FromDOS", "DxCode", "MemberID"])
def test_diagnoses_file_without_a_required_column_is_exit_1_naming_it(tmp_path, capsys, column):
    members, dx = write(tmp_path, diagnoses=drop_column(DIAGNOSES, column))
    out = tmp_path / "scores.csv"
    assert run_score(members, out, diagnoses=dx) == 1
    err = capsys.readouterr().err
    assert f"dx.csv: diagnoses file is missing required column {column}" in err, err
    found = ", ".join(c for c in ("MemberID", "FromDOS", "ThruDOS", "DxCode") if c != column)
    assert f"found: {found}" in err
    assert not out.exists()


def test_members_file_without_gender_fails_once_not_member_by_member(tmp_path, capsys):
    members, dx = write(tmp_path, members=drop_column(MEMBERS, "Gender"))
    assert run_score(members, tmp_path / "scores.csv", diagnoses=dx) == 1
    err = capsys.readouterr().err
    assert "members.csv: memberships file is missing required column Gender" in err, err
    assert err.count("\n") == 1  # one error line


def test_several_missing_columns_are_named_together(tmp_path, capsys):
    members, dx = write(tmp_path, members="MemberID,DOB\nA,1950-01-01\n")
    assert run_score(members, tmp_path / "scores.csv", diagnoses=dx) == 1
    assert "missing required columns Gender, RAType" in capsys.readouterr().err


def test_optional_member_columns_stay_optional(tmp_path):
    text = pl.read_csv(MEMBERS.encode(), infer_schema=False).select(
        "MemberID", "DOB", "Gender", "RAType", "OREC"
    )
    members, dx = write(tmp_path, members=text.write_csv())
    assert run_score(members, tmp_path / "scores.csv", diagnoses=dx) == 2  # Gender X, repeat


def test_json_request_missing_a_field_in_every_diagnosis_is_exit_1(tmp_path, capsys):
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "memberships": [
                    {
                        "MemberID": "A",
                        "DOB": "1950-01-01",
                        "Gender": "F",
                        "RAType": "CN",
                        "OREC": "0",
                    }
                ],
                "diagnoses": [{"MemberID": "A", "FromDOS": "2024-01-01", "DxCode": "E119"}],
            }
        )
    )
    assert run_score(request, tmp_path / "scores.csv") == 1
    assert "diagnoses file is missing required column ThruDOS" in capsys.readouterr().err


def test_job_missing_thrudos_is_400_at_submit_naming_file_and_columns(tmp_path):
    members, dx = write(tmp_path / "in", diagnoses=drop_column(DIAGNOSES, "ThruDOS"))
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        response = submit_files(client, members, dx)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["field"] == "diagnoses"
    assert body["message"].startswith(  # the submit-time header check names the line
        "diagnoses.csv: line 1: diagnoses file is missing required column ThruDOS"
    )
    assert "found: MemberID, FromDOS, DxCode" in body["message"]
    assert list(service.store.jobs_dir.iterdir()) == []  # nothing recorded


# ---- warnings and --strict


def test_py2026_on_2024_dates_warns_naming_the_years_and_strict_exits_3(tmp_path, capsys):
    members, dx = write(tmp_path)
    out = tmp_path / "scores.csv"
    assert run_score(members, out, diagnoses=dx, year=2026) == 2  # Gender X and the repeat
    err = capsys.readouterr().err  # warnings print even with --quiet
    assert "warning: [outside_collection_year]" in err
    assert "are dated 2024; PY2026 scores diagnoses from 2025" in err, err
    summary = json.loads((tmp_path / "scores.run.json").read_text())
    codes = [w["code"] for w in summary["warnings"]]
    assert codes == ["outside_collection_year", "no_diagnosis_used"]
    assert summary["warnings"][0]["count"] == 3  # the member_rejected one is not counted
    assert run_score(members, out, "--strict", diagnoses=dx, year=2026) == 3


def test_strict_exits_3_even_when_every_member_is_scored(tmp_path):
    members, dx = write(
        tmp_path,
        members="\n".join(MEMBERS.splitlines()[:3]) + "\n",
        diagnoses="\n".join(DIAGNOSES.splitlines()[:2] + DIAGNOSES.splitlines()[3:4]) + "\n",
    )
    out = tmp_path / "scores.csv"
    assert run_score(members, out, diagnoses=dx, year=2026) == 0
    assert run_score(members, out, "--strict", diagnoses=dx, year=2026) == 3
    assert run_score(members, out, "--strict", diagnoses=dx, year=2025) == 0  # no warning


@pytest.mark.parametrize("bad_rows, warns", [(1, False), (2, True)])  # 5% is not over 5%
def test_bad_dates_over_five_percent_warn_and_the_summary_counts_them(
    tmp_path, capsys, bad_rows, warns
):
    good = [f"M00913,2024-03-{day:02d},2024-03-{day:02d},E119" for day in range(1, 21 - bad_rows)]
    bad = ["M00913,2024-13-45,2024-13-45,E119", "M00913,2024-02-30,2024-03-01,E119"][:bad_rows]
    members, dx = write(
        tmp_path, diagnoses="MemberID,FromDOS,ThruDOS,DxCode\n" + "\n".join(good + bad) + "\n"
    )
    run_score(members, tmp_path / "scores.csv", diagnoses=dx, quiet=False)
    err = capsys.readouterr().err
    assert f"20 diagnosis rows: used {20 - bad_rows}, invalid_dates {bad_rows}\n" in err, err
    assert ("warning: [invalid_dates] 10% of diagnoses (2 of 20)" in err) is warns
    summary = json.loads((tmp_path / "scores.run.json").read_text())
    assert summary["diagnoses_summary"]["invalid_dates"] == bad_rows
    assert sum(summary["diagnoses_summary"].values()) == 20


def test_warning_thresholds_are_settings(tmp_path, capsys, monkeypatch):
    members, dx = write(tmp_path)
    monkeypatch.setenv("RAF_WARN_UNKNOWN_CODE_PCT", "30")  # 1 of 4 is unknown_code: 25%
    run_score(members, tmp_path / "scores.csv", diagnoses=dx)
    assert "[unknown_code]" not in capsys.readouterr().err
    monkeypatch.setenv("RAF_WARN_UNKNOWN_CODE_PCT", "20")
    run_score(members, tmp_path / "scores.csv", diagnoses=dx)
    assert "[unknown_code] 25% of diagnoses (1 of 4)" in capsys.readouterr().err


# ---- every row accounted for


def test_identical_duplicate_rows_are_named_and_member_rejected_is_counted(tmp_path, capsys):
    members, dx = write(tmp_path)
    out = tmp_path / "scores.csv"
    assert run_score(members, out, diagnoses=dx, quiet=False) == 2
    errors = pl.read_csv(tmp_path / "scores.errors.csv", infer_schema=False)
    assert errors.select("MemberID", "line", "field").rows() == [
        ("M00913", "5", "MemberID"),
        ("M00914", "4", "Gender"),
    ]
    repeat = errors.item(0, "message")
    assert repeat.startswith("identical duplicate of line 3 of members.csv"), repeat
    scored = pl.read_csv(out, infer_schema=False)
    assert scored["Member_Id"].unique().sort().to_list() == ["M00912", "M00913"]
    summary = json.loads((tmp_path / "scores.run.json").read_text())
    assert (summary["member_count"], summary["members_scored"]) == (4, 2)
    assert (summary["members_rejected"], summary["duplicate_rows"]) == (1, 1)
    assert summary["diagnoses_summary"]["member_rejected"] == 1
    assert summary["diagnoses_summary"]["unknown_member"] == 0
    err = capsys.readouterr().err
    assert "4 membership rows: 2 members scored, 1 rejected, 1 identical duplicate rows" in err
    assert "4 diagnosis rows: used 2, unknown_code 1, member_rejected 1" in err


def test_json_request_repeat_names_its_array_position(tmp_path):
    row = {"MemberID": "A", "DOB": "1950-01-01", "Gender": "F", "RAType": "CN", "OREC": "0"}
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"memberships": [row, dict(row)], "diagnoses": []}))
    assert run_score(request, tmp_path / "scores.json") == 2
    body = json.loads((tmp_path / "scores.json").read_text())
    assert [e["message"].split(" (")[0] for e in body["errors"]] == [
        "identical duplicate of memberships[0]"
    ]
    assert (body["member_count"], body["members_scored"]) == (2, 1)
    assert body["status"] == "partial" and body["warnings"][0]["code"] == "no_diagnosis_used"


def test_cli_summary_and_job_record_give_the_same_counts(tmp_path, capsys):
    members, dx = write(tmp_path / "in")
    assert run_score(members, tmp_path / "cli" / "scores.csv", diagnoses=dx, year=2026) == 2
    cli = json.loads((tmp_path / "cli" / "scores.run.json").read_text())
    service = JobService(settings(tmp_path))
    with TestClient(make_app(service)) as client:
        accepted = submit_files(client, members, dx, year="2026")
        assert accepted.status_code == 202, accepted.text
        url = accepted.json()["status_url"]
        job = wait_for(lambda: (s := client.get(url).json())["status"] == "completed" and s)
    for key in (
        "member_count",
        "members_scored",
        "members_rejected",
        "duplicate_rows",
        "count",
        "diagnoses_summary",
        "warnings",
    ):
        assert job[key] == cli[key], key
    assert job["errors_count"] == cli["members_rejected"] + cli["duplicate_rows"]
    assert [w["code"] for w in job["warnings"]] == ["outside_collection_year", "no_diagnosis_used"]
