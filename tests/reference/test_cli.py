"""`raf reference [--verify]` (reference.cli.run)."""

from __future__ import annotations

import argparse
import shutil

from reference import ReferenceStore
from reference.cli import run


def test_lists_years_and_verifies(capsys):
    assert run(argparse.Namespace(verify=True)) == 0
    out = capsys.readouterr().out
    for year in (2024, 2025, 2026, 2027):
        assert f"PY{year}  release PY{year}." in out
    assert "normalization_factor ESRD_V24_dialysis = 1.072  [single-source]" in out
    assert "normalization_factor V28 = 1.079  [corroborated]" in out
    assert "normalization_factor ESRD_V24_graft = (missing)  [missing]" in out
    assert "verify: all" in out


def test_verify_fails_on_changed_file(tmp_path, capsys):
    copy = tmp_path / "data"
    shutil.copytree(ReferenceStore().data_dir, copy)
    target = copy / "models" / "cms_hcc_v28" / "coefficients.csv"
    target.write_text(target.read_text().replace("0.348", "0.349", 1))
    assert run(argparse.Namespace(verify=True, data_dir=copy)) == 1
    assert "MISMATCH models/cms_hcc_v28/coefficients.csv" in capsys.readouterr().out


def test_without_verify_does_not_check(tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(ReferenceStore().data_dir, copy)
    (copy / "crosscheck.json").write_text("tampered\n")
    assert run(argparse.Namespace(verify=False, data_dir=copy)) == 0


def test_refused_overrides_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from app.cli import main

    path = tmp_path / "overrides.csv"
    path.write_text("payment_year,parameter,model,value,source,status\n"
                    "2025,normalization_factor,V28,1.05,my figure,\n")
    monkeypatch.setenv("RAF_PARAMETER_OVERRIDES", str(path))
    assert main(["reference"]) == 1
    err = capsys.readouterr().err
    assert "line 2: PY2025 normalization_factor V28 is corroborated" in err


def test_operator_override_is_listed_with_its_status(tmp_path, monkeypatch, capsys):
    path = tmp_path / "overrides.csv"
    path.write_text("payment_year,parameter,model,value,source,status\n"
                    "2025,normalization_factor,ESRD_V24_dialysis,1.044,CMS CY2025 RA copy,\n")
    monkeypatch.setenv("RAF_PARAMETER_OVERRIDES", str(path))
    assert run(argparse.Namespace(verify=False)) == 0
    out = capsys.readouterr().out
    assert "normalization_factor ESRD_V24_dialysis = 1.044  [operator]  operator: CMS CY2025 RA copy" in out
