"""Refresh the vendored docs-page assets from the npm registry: `python -m app.docs_assets.vendor`.

The service serves Swagger UI and ReDoc from these files (`app.openapi`), so the
docs pages work on a closed network. Each package is fetched with `npm pack
NAME@VERSION` (the registry's tarball, checked by npm against its integrity
hash), and only the files listed in `PACKAGES` are copied, licences included.
`VENDORED.json` records package, version, licence, the tarball's integrity and
each copied file's SHA-256; `tests/api/test_docs_pages.py` rechecks the hashes,
so a hand-edited asset fails the suite. To upgrade: change a version here, run
this module, run the browser tests (`tests/browser`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "VENDORED.json"

# directory -> (npm package, version, licence, files copied from the package root)
PACKAGES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "swagger-ui": (
        "swagger-ui-dist",
        "5.35.0",
        "Apache-2.0",
        (
            "swagger-ui-bundle.js",
            "swagger-ui-bundle.js.LICENSE.txt",
            "swagger-ui-standalone-preset.js",
            "swagger-ui-standalone-preset.js.LICENSE.txt",
            "swagger-ui.css",
            "favicon-32x32.png",
            "LICENSE",
            "NOTICE",
        ),
    ),
    # ReDoc 2.x: the `Redoc.init(spec, options, element)` API Litestar's page calls.
    "redoc": (
        "redoc",
        "2.5.4",
        "MIT",
        ("bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt", "LICENSE"),
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(spec: str, workdir: Path) -> tuple[Path, str]:
    """`npm pack` into workdir; (tarball, integrity)."""
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)[0]
    return workdir / info["filename"], info["integrity"]


def vendor() -> dict[str, object]:
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for directory, (package, version, licence, files) in PACKAGES.items():
            tarball, integrity = _pack(f"{package}@{version}", workdir)
            target = HERE / directory
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            with tarfile.open(tarball) as archive:
                for name in files:
                    member = archive.extractfile(f"package/{name}")
                    if member is None:
                        raise SystemExit(f"{package}@{version} has no file {name}")
                    (target / Path(name).name).write_bytes(member.read())
            manifest[directory] = {
                "package": package,
                "version": version,
                "license": licence,
                "npm_integrity": integrity,
                "files": {Path(n).name: sha256(target / Path(n).name) for n in files},
            }
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    for directory, entry in vendor().items():
        print(directory, entry["package"], entry["version"], file=sys.stderr)  # type: ignore[index]
