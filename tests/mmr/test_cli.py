"""`raf score --mmr`: an MMR file scores exactly as the memberships it describes."""

from __future__ import annotations

import polars as pl

from app.cli import main
from tests.mmr import generate as gen
from tests.mmr.test_reader import MONTHS, member

DX = "MemberID,FromDOS,ThruDOS,DxCode\n1EG4TE5MK73,2024-03-01,2024-03-01,E1122\n3EG4TE5MK75,2024-05-02,2024-05-02,I5022\n"


def _files(tmp_path):
    rows = (
        gen.monthly_records(member("1EG4TE5MK73"), MONTHS)
        + gen.monthly_records(member("2EG4TE5MK74", RAType="CP", OREC="1", Gender="M"), MONTHS[:5])
        + gen.monthly_records(member("3EG4TE5MK75", RAType="I", Medicaid="Y"), MONTHS)
        + gen.monthly_records(
            member("4EG4TE5MK76", RAType="E", NEMCAID="Y", DOB="19600301"), MONTHS[8:]
        )
        + gen.monthly_records(member("5EG4TE5MK77", RAType="ZZ"), MONTHS[:1])
    )
    mmr_path = gen.write(tmp_path / "MONMEMD.txt", rows, extra=["short record"])
    dx = tmp_path / "dx.csv"
    dx.write_text(DX)
    return mmr_path, dx


def score(*args: str) -> int:
    """`raf score --payment-year 2025 ARGS --quiet` in-process."""
    return main(["score", "--payment-year", "2025", *args, "--quiet"])


def test_score_mmr_equals_scoring_the_memberships_it_describes(engine, tmp_path):
    mmr_path, dx = _files(tmp_path)
    out = tmp_path / "mmr" / "scores.csv"
    code = score("--mmr", str(mmr_path), "--diagnoses", str(dx), "--out", str(out))
    assert code == 2  # two records rejected: an unknown RA factor type code and a short record
    members_csv = tmp_path / "members.csv"
    audit = pl.read_csv(tmp_path / "mmr" / "scores.memberships.csv", infer_schema=False)
    # the membership fields, and the finance fields the MMR carries (months, county)
    audit.select(
        "MemberID",
        "DOB",
        "Gender",
        "RAType",
        "Hospice",
        "LTIMCAID",
        "NEMCAID",
        "OREC",
        "Enrollment_Months",
        "County",
    ).write_csv(members_csv)
    plain = tmp_path / "plain" / "scores.csv"
    assert score("--members", str(members_csv), "--diagnoses", str(dx), "--out", str(plain)) == 0
    assert out.read_text() == plain.read_text()
    errors = pl.read_csv(tmp_path / "mmr" / "scores.errors.csv", infer_schema=False)
    assert errors.select("line", "field").rows() == [("34", "RAType"), ("35", "record")]
    assert audit.filter(pl.col("MemberID") == "2EG4TE5MK74")["Enrollment_Months"].to_list() == ["5"]
    assert audit.filter(pl.col("MemberID") == "3EG4TE5MK75")["LTIMCAID"].to_list() == ["Y"]
    # the months counted feed plan finance's Enrollment_Months on the active row
    active = pl.read_csv(out, infer_schema=False).filter(pl.col("Active_Score") == "1")
    months = dict(zip(active["Member_Id"], active["Enrollment_Months"], strict=True))
    assert months == {
        "1EG4TE5MK73": "12",
        "2EG4TE5MK74": "5",
        "3EG4TE5MK75": "12",
        "4EG4TE5MK76": "4",
    }


def test_members_and_mmr_are_exclusive(engine, tmp_path, capsys):
    mmr_path, dx = _files(tmp_path)
    code = main(
        [
            "score",
            "--payment-year",
            "2025",
            "--mmr",
            str(mmr_path),
            "--members",
            str(dx),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 1
    assert "exactly one of --members and --mmr" in capsys.readouterr().err


def test_missing_mmr_file_is_fatal_naming_it(engine, tmp_path, capsys):
    code = main(
        [
            "score",
            "--payment-year",
            "2025",
            "--mmr",
            str(tmp_path / "nope.txt"),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 1
    assert "nope.txt: MMR file not found" in capsys.readouterr().err


def test_chunked_mmr_scoring_is_identical_to_one_chunk(engine, tmp_path):
    mmr_path, dx = _files(tmp_path)
    outputs = []
    for chunk in ("1", "250000"):
        out = tmp_path / chunk / "scores.csv"
        assert (
            score(
                "--mmr",
                str(mmr_path),
                "--diagnoses",
                str(dx),
                "--out",
                str(out),
                "--chunk-members",
                chunk,
            )
            == 2
        )
        outputs.append((out.read_text(), (out.parent / "scores.errors.csv").read_text()))
    assert outputs[0] == outputs[1]
