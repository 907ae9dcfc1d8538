"""`raf score` end to end through `app.cli.main`: formats, chunking, errors file, exit codes."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.batch.conftest import read_table, run_score, write_roster
from tests.batch.roster import roster

score = run_score


def test_all_members_scored_exit_0_and_three_rows_per_member(engine, tmp_path):
    members, dx = write_roster(tmp_path, 120)
    out = tmp_path / "scores.parquet"
    assert score(members, out, diagnoses=dx) == 0
    rows = pl.read_parquet(out)
    assert rows.height == 3 * 120
    assert rows["Member_Id"].n_unique() == 120
    assert rows.columns[:3] == ["Payment_Year", "Member_Id", "BirthDate_Org"]
    assert "input_index" not in rows.columns
    assert (
        rows.group_by("Member_Id").agg(pl.col("Active_Score").sum())["Active_Score"].to_list()
        == [1] * 120
    )
    errors = read_table(tmp_path / "scores.errors.csv")
    assert errors.height == 0 and errors.columns == ["MemberID", "line", "field", "message"]


def test_rejected_members_exit_2_errors_name_the_csv_line(engine, tmp_path):
    members, dx = write_roster(tmp_path, 200, bad_every=50)
    out = tmp_path / "scores.csv"
    errors_path = tmp_path / "bad.csv"
    assert score(members, out, "--errors", str(errors_path), diagnoses=dx) == 2
    errors = pl.read_csv(errors_path, infer_schema=False)
    lines = members.read_text().splitlines()
    assert errors.height >= 4 * 3  # gender, DOB, RAType per 50 members, plus duplicates
    for member_id, line, field in errors.select("MemberID", "line", "field").iter_rows():
        text = lines[int(line) - 1]  # line numbers are 1-based and count the header
        assert text.startswith(member_id + ","), (line, text)
        assert field in {"MemberID", "DOB", "Gender", "RAType"}
    assert {"Gender", "DOB", "RAType"} <= set(errors["field"])
    scored = pl.read_csv(out, infer_schema=False)["Member_Id"].unique()
    assert not set(scored) & set(errors.filter(pl.col("field") != "MemberID")["MemberID"])
    # nothing lost: every input member is scored or rejected
    member_ids = pl.read_csv(members, infer_schema=False)["MemberID"]
    assert set(member_ids) == set(scored) | set(errors["MemberID"])


@pytest.mark.parametrize("n, chunk", [(45, 2), (300, 7), (300, 64)])
def test_chunked_output_is_identical_to_one_chunk(engine, tmp_path, n, chunk):
    members, dx = write_roster(tmp_path, n, bad_every=40)
    outputs = {}
    for size in (1_000_000, chunk):
        out = tmp_path / f"scores-{size}.csv"
        errors_path = tmp_path / f"errors-{size}.csv"
        assert (
            score(
                members,
                out,
                "--errors",
                str(errors_path),
                "--chunk-members",
                str(size),
                diagnoses=dx,
            )
            == 2
        )
        outputs[size] = (out.read_bytes(), errors_path.read_bytes())
    assert outputs[chunk][0] == outputs[1_000_000][0]
    assert outputs[chunk][1] == outputs[1_000_000][1]
    assert not list(tmp_path.glob(".raf-stage-*"))  # staged chunk files are cleaned up


def test_parquet_csv_and_json_request_inputs_agree(engine, tmp_path):
    members_csv, dx_csv = write_roster(tmp_path / "csv", 90, bad_every=30)
    members_pq, dx_pq = write_roster(tmp_path / "pq", 90, bad_every=30, fmt="parquet")
    m, d = roster(90, bad_every=30)
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"payment_year": 2025, "memberships": m.to_dicts(), "diagnoses": d.to_dicts()})
    )
    results = {}
    for name, (mem, dx) in {
        "csv": (members_csv, dx_csv),
        "pq": (members_pq, dx_pq),
        "json": (request, None),
    }.items():
        out = tmp_path / f"{name}.parquet"
        assert score(mem, out, diagnoses=dx) == 2
        results[name] = pl.read_parquet(out)
    assert results["csv"].equals(results["pq"])
    assert results["csv"].equals(results["json"])


def test_json_output_is_the_api_envelope(engine, tmp_path):
    members, dx = write_roster(tmp_path, 40, bad_every=20)
    out = tmp_path / "scores.json"
    assert score(members, out, "--chunk-members", "9", diagnoses=dx) == 2
    body = json.loads(out.read_text())
    assert body["status"] == "partial"
    assert body["count"] == len(body["results"])
    assert body["member_count"] == 40
    assert list(body["results"][0])[:2] == ["Payment_Year", "Member_Id"]
    assert body["diagnoses_summary"]
    errors = pl.read_csv(tmp_path / "scores.errors.csv")
    assert len(body["errors"]) == errors.height > 0
    assert {e["MemberID"] for e in body["errors"]} == set(errors["MemberID"])


def test_detail_writes_trail_beside_out(engine, tmp_path):
    members, dx = write_roster(tmp_path, 30)
    out = tmp_path / "scores.parquet"
    plain = tmp_path / "plain.parquet"
    assert score(members, plain, diagnoses=dx) == 0
    assert score(members, out, "--detail", diagnoses=dx) == 0
    assert pl.read_parquet(out).equals(pl.read_parquet(plain))  # --detail adds a file, not columns
    trail = pl.read_parquet(tmp_path / "scores.detail.parquet")
    assert trail.height > 0
    assert trail.columns[:4] == ["MemberID", "line", "Model", "Section"]
    assert set(trail["MemberID"]) <= set(pl.read_parquet(out)["Member_Id"])


def test_detail_lists_ignored_diagnoses_with_their_diagnoses_file_line(engine, tmp_path):
    members, dx = write_roster(tmp_path, 60, bad_every=20)
    out = tmp_path / "scores.csv"
    assert score(members, out, "--detail", "--chunk-members", "13", diagnoses=dx) == 2
    trail = pl.read_csv(tmp_path / "scores.detail.csv", infer_schema=False)
    dropped = trail.filter(pl.col("Section") == "dropped_dx")
    assert dropped.height > 0
    dx_lines = dx.read_text().splitlines()
    for member_id, code, dx_line in dropped.select("MemberID", "Code", "dx_line").iter_rows():
        assert dx_lines[int(dx_line) - 1].split(",")[0] == member_id
        assert dx_lines[int(dx_line) - 1].endswith("," + code)
    # the trail, too, does not depend on the chunk size
    assert score(members, tmp_path / "one.csv", "--detail", diagnoses=dx) == 2
    assert (tmp_path / "one.detail.csv").read_bytes() == (
        tmp_path / "scores.detail.csv"
    ).read_bytes()


def test_json_request_with_conflicting_year_is_fatal(engine, tmp_path, capsys):
    request = tmp_path / "r.json"
    request.write_text(json.dumps({"payment_year": 2024, "memberships": [], "diagnoses": []}))
    assert score(request, tmp_path / "o.csv") == 1
    assert "payment_year" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_file", "members.csv: memberships file not found"),
        ("missing_column", "dx.csv: diagnoses file is missing required column DxCode"),
        ("bad_year", "--payment-year 1999"),
        ("bad_out", "unsupported output type '.xlsx'"),
        ("json_with_dx", "--diagnoses must be omitted"),
    ],
)
def test_fatal_errors_exit_1_naming_the_file_or_field(engine, tmp_path, capsys, case, expected):
    members, dx = write_roster(tmp_path, 5)
    out = tmp_path / "scores.csv"
    year = 2025
    if case == "missing_file":
        members.unlink()
    elif case == "missing_column":
        pl.read_csv(dx).drop("DxCode").write_csv(dx)
    elif case == "bad_year":
        year = 1999
    elif case == "bad_out":
        out = tmp_path / "scores.xlsx"
    elif case == "json_with_dx":
        members = tmp_path / "request.json"
        members.write_text('{"memberships": []}')
    assert score(members, out, diagnoses=dx, year=year) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_progress_is_silent_when_piped(engine, tmp_path, capsys):
    members, dx = write_roster(tmp_path, 20)
    assert run_score(members, tmp_path / "o.csv", diagnoses=dx, quiet=False) == 0
    err = capsys.readouterr().err
    assert "\r[" not in err  # no bar: stderr is not a terminal under pytest
    assert "20 membership rows: 20 members scored" in err  # the one-line summary


def test_progress_bar_draws_members_done_and_rate():
    import io

    from app.batch import Progress

    stream = io.StringIO()
    bar = Progress(0, enabled=True, stream=stream)
    bar(0, 1000)
    bar(500, 1000)
    bar.finish()
    assert "500/1,000 members" in stream.getvalue()
    assert "/s" in stream.getvalue()


@pytest.mark.slow
def test_100k_member_roster_through_the_cli(engine, tmp_path):
    members, dx = write_roster(tmp_path, 100_000, bad_every=997)
    out = tmp_path / "scores.parquet"
    assert score(members, out, "--chunk-members", "25000", diagnoses=dx) == 2
    rows = pl.scan_parquet(out)
    errors = pl.read_csv(tmp_path / "scores.errors.csv", infer_schema=False)
    scored = rows.select(pl.col("Member_Id").n_unique()).collect().item()
    member_ids = (
        pl.scan_csv(members, infer_schema=False)
        .select(pl.col("MemberID").n_unique())
        .collect()
        .item()
    )
    assert scored + errors["MemberID"].n_unique() >= member_ids
    assert rows.select(pl.len()).collect().item() == 3 * scored


def test_header_spelling_is_lenient_but_ambiguity_is_fatal(engine, tmp_path, capsys):
    members, dx = write_roster(tmp_path, 25)
    exact = tmp_path / "exact.parquet"
    assert score(members, exact, diagnoses=dx) == 0
    lines = members.read_text().splitlines()
    members.write_text(
        "\n".join([lines[0].replace("MemberID", " memberid ").replace("DOB", "dob")] + lines[1:])
        + "\n"
    )
    relaxed = tmp_path / "relaxed.parquet"
    assert score(members, relaxed, diagnoses=dx) == 0
    assert pl.read_parquet(relaxed).equals(pl.read_parquet(exact))
    members.write_text(
        "\n".join([lines[0] + ",memberid"] + [line + ",x" for line in lines[1:]]) + "\n"
    )
    assert score(members, tmp_path / "o.csv", diagnoses=dx) == 1
    assert "both mean 'MemberID'" in capsys.readouterr().err


def test_unreadable_content_is_fatal_naming_the_file(engine, tmp_path, capsys):
    members, dx = write_roster(tmp_path, 10)
    dx.write_bytes(dx.read_bytes() + b"M0000001,2024-01-01,2024-01-01,\xff\xfe\n")
    for chunk in ("1000", "3"):  # the one-chunk and the staged paths
        assert score(members, tmp_path / "o.csv", "--chunk-members", chunk, diagnoses=dx) == 1
        err = capsys.readouterr().err
        assert f"{dx}: cannot read" in err, err
        assert not (tmp_path / "o.csv").exists()
        assert not list(tmp_path.glob(".raf-stage-*"))


def test_empty_roster_scores_nothing_and_exits_0(engine, tmp_path):
    members, dx = write_roster(tmp_path, 3)
    members.write_text(members.read_text().splitlines()[0] + "\n")
    dx.write_text(dx.read_text().splitlines()[0] + "\n")
    out = tmp_path / "scores.json"
    assert score(members, out, diagnoses=dx) == 0
    import json

    body = json.loads(out.read_text())
    assert body["results"] == [] and body["count"] == 0 and body["errors"] == []


def test_member_without_diagnoses_file_scores_demographics_only(engine, tmp_path):
    members, _ = write_roster(tmp_path, 12)
    out = tmp_path / "scores.csv"
    assert score(members, out) == 0
    assert pl.read_csv(out)["RAF_Disease"].sum() == 0
