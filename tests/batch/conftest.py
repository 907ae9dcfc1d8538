"""Fixtures for the batch and jobs tests.

`engine` is the real `engine.run.score_batch` + `ReferenceStore` once they exist
and load PY2025, otherwise the contract-shaped fake in `fake_engine.py`; either
way it is installed as `app.batch.default_engine`, the one seam the CLI and the
job worker use. Set RAF_TEST_FAKE_ENGINE=1 to force the fake.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from app import batch
from tests.batch.fake_engine import FakeStore, fake_score_batch
from tests.batch.roster import roster


def _real_engine() -> tuple[Callable[..., Any], Any] | None:
    if os.environ.get("RAF_TEST_FAKE_ENGINE") == "1":
        return None
    try:
        from engine.run import score_batch
        from reference.store import ReferenceStore

        store = ReferenceStore()
        store.year(2025)
    except Exception:  # engine or reference data not there yet  # noqa: BLE001
        return None
    return score_batch, store


_REAL = _real_engine()


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> tuple[Callable[..., Any], Any]:
    pair = _REAL or (fake_score_batch, FakeStore())
    monkeypatch.setattr(batch, "default_engine", lambda: pair)
    return pair


@pytest.fixture
def is_real_engine() -> bool:
    return _REAL is not None


def write_roster(
    directory: Path, n: int, bad_every: int | None = None, fmt: str = "csv"
) -> tuple[Path, Path]:
    members, diagnoses = roster(n, bad_every)
    directory.mkdir(parents=True, exist_ok=True)
    members_path = directory / f"members.{fmt}"
    diagnoses_path = directory / f"dx.{fmt}"
    if fmt == "csv":
        members.write_csv(members_path)
        diagnoses.write_csv(diagnoses_path)
    else:
        members.write_parquet(members_path)
        diagnoses.write_parquet(diagnoses_path)
    return members_path, diagnoses_path


def read_table(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


def run_score(
    members: Path,
    out: Path,
    *extra: str,
    diagnoses: Path | None = None,
    year: int = 2025,
    quiet: bool = True,
) -> int:
    """`raf score` in-process with the common flags; `extra` adds any others."""
    from app.cli import main

    argv = ["score", "--payment-year", str(year), "--members", str(members), "--out", str(out)]
    if quiet:
        argv.append("--quiet")
    if diagnoses is not None:
        argv += ["--diagnoses", str(diagnoses)]
    return main(argv + list(extra))
