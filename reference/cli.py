"""``raf reference [--verify]``: payment years, models, release ids, each parameter
with its value, status and source, and the file hashes of the bundled reference
data (with ``RAF_PARAMETER_OVERRIDES`` applied); ``--verify`` recomputes every
sha256 against ``reference/data/manifest.json`` and exits 1 on any mismatch."""

from __future__ import annotations

import argparse

from reference.store import ReferenceStore


def run(args: argparse.Namespace) -> int:
    store = ReferenceStore(getattr(args, "data_dir", None))
    manifest = store.manifest
    for year in store.supported_years:
        tables = store.year(year)
        info = manifest["payment_years"][str(year)]
        print(f"PY{year}  release {tables.release_id}  models {', '.join(tables.models_of_year)}")
        print(f"        sha256 {tables.sha256}")
        if info.get("mapping"):
            print(f"        mapping {info['mapping']}")
        for row in tables.parameters.rows:
            value = row.value if row.value is not None else "(missing)"
            print(f"        {row.parameter} {row.model} = {value}  [{row.status}]  {row.source}")
        for warning in tables.warnings:
            print(f"        WARNING {warning}")
    print()
    print("files:")
    for entry in manifest["files"]:
        sources = ", ".join(
            f"{s['package']}:{s['path'].rsplit('/', 1)[-1]}" for s in entry["sources"]
        )
        print(f"  {entry['sha256']}  {entry['path']}" + (f"  <- {sources}" if sources else ""))
    if not getattr(args, "verify", False):
        return 0
    problems = store.verify()
    print()
    if problems:
        for problem in problems:
            print(f"MISMATCH {problem}")
        print(f"verify: {len(problems)} of {len(manifest['files'])} files differ")
        return 1
    print(f"verify: all {len(manifest['files'])} files match the manifest")
    return 0
