"""`software` (package version and git commit) beside `reference` in every answer (issue 22)."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from app import software as software_module

REPO = Path(__file__).resolve().parents[2]


def _head() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def test_scores_and_reference_name_the_version_and_commit(make_client, seed_request):
    software_module.software.cache_clear()  # read at this app's start-up, not an earlier one's
    expected = {"version": metadata.version("raf-service"), "commit": _head()}
    client = make_client()
    scored = client.post("/v1/risk-scores", json=seed_request)
    assert scored.status_code == 200, scored.text
    body = scored.json()
    assert body["software"] == expected
    assert list(body).index("software") == list(body).index("reference") + 1
    reference = client.get("/v1/reference")
    assert reference.json()["software"] == expected


def test_commit_from_the_environment_or_unknown_never_fails(monkeypatch, tmp_path):
    monkeypatch.setenv(software_module.COMMIT_ENV, "abc123")
    assert software_module._commit() == "abc123"
    monkeypatch.delenv(software_module.COMMIT_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    assert software_module._commit() == "unknown"


def test_cli_run_summary_names_the_software(tmp_path, seed_request):
    from app.cli import main

    members = tmp_path / "members.json"
    members.write_text(json.dumps(seed_request))
    out = tmp_path / "scores.csv"
    code = main(["score", "--payment-year", "2025", "--members", str(members), "--out", str(out)])
    assert code in (0, 2)
    run = json.loads((tmp_path / "scores.run.json").read_text())
    assert run["software"] == software_module.software_dict()


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
