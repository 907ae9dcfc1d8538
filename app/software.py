"""What built this answer: the package version and the git commit, read once at start-up.

An audited score is reproduced from three things: the request, the reference
release (`reference` in every answer) and the software (`software` beside it).
The commit comes from `RAF_GIT_COMMIT` when set (an image built outside a
checkout), else `git rev-parse HEAD` in the package's own checkout, else
"unknown"; reading it never fails start-up.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Annotated

import msgspec

from app.fielddoc import doc

PACKAGE = "raf-service"
COMMIT_ENV = "RAF_GIT_COMMIT"
UNKNOWN = "unknown"


class SoftwareInfo(msgspec.Struct, frozen=True):
    """`software` of every answer: `version` (package metadata) and `commit` (git)."""

    version: Annotated[str, doc("raf-service package version.", "0.1.0")]
    commit: Annotated[str, doc(
        "Git commit the service was built from (`unknown` when not known).",
        "03a2913e6f1c0a6f0d1a2b3c4d5e6f708192a3b4")]


def _version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def _commit() -> str:
    configured = os.environ.get(COMMIT_ENV, "").strip()
    if configured:
        return configured
    checkout = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else UNKNOWN


@cache
def software() -> SoftwareInfo:
    """Read once per process (the first answer, or start-up: `app.main` calls it)."""
    return SoftwareInfo(version=_version(), commit=_commit())


def software_dict() -> dict[str, str]:
    """`software()` as a plain dict (run summaries, job records)."""
    return msgspec.to_builtins(software())
