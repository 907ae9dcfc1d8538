"""The repository is self-contained: what its docs, docstrings and reference data cite
is in the repository (a clone has no `../shared/...` beside it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared|/work/shared|shared/spec|(?<![\w/])(?:spec/)?research/\w+\.md"
                     r"|seeds/0\d\d_|(?<![\w/])spec/(?:api|scoring|ratype|pitfalls)\.md")
# a path of this repository written in backticks: `docs/api.md`, `reference/PARAMETERS.md`
REPO_PATH = re.compile(r"`((?:docs|app|engine|ratype|reference|tests|benchmarks)/[\w./-]+\.\w+)`")
TEXT_SUFFIXES = {".py", ".md", ".csv", ".json", ".toml", ".txt", ".cfg", ""}




def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        REPO / name for name in names
        if not name.startswith("app/docs_assets/") and Path(name).suffix in TEXT_SUFFIXES
        and (REPO / name).is_file()
    ]


def test_nothing_cites_a_file_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not offenders, "\n".join(offenders)


def test_repository_paths_in_the_docs_exist() -> None:
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
            *sorted((REPO / "reference").glob("*.md")), REPO / "ratype" / "README.md"]
    missing = []
    for doc in docs:
        for cited in REPO_PATH.findall(doc.read_text()):
            if "*" not in cited and "<" not in cited and not (REPO / cited).exists():
                missing.append(f"{doc.relative_to(REPO)} cites {cited}")
    assert not missing, "\n".join(missing)
