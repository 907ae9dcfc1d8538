"""`raf serve`: run the API under uvicorn (host, port, workers from `app.cli`).

With more than one worker uvicorn needs an import string, so the app is built
by the `create_app` factory in each worker (each loads the reference data once
in its lifespan and has its own cache).
"""

from __future__ import annotations

import argparse

import uvicorn


def run(args: argparse.Namespace) -> int:
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # app.logs writes one structured access line per request
        log_level="warning",
    )
    return 0
