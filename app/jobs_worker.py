"""Start-up of a spawned job worker process (`RAF_JOB_EXECUTOR=process`).

Kept free of polars imports on purpose: it runs before anything in the child
imports polars, which is the only moment polars' thread-pool size can be set.
The worker also lowers its own scheduling priority, so on a small machine the
API process keeps answering `/v1/risk-scores` while a large job runs.
"""

from __future__ import annotations

import os


def init_worker(polars_threads: int, niceness: int) -> None:
    if polars_threads > 0:
        os.environ["POLARS_MAX_THREADS"] = str(polars_threads)
    if niceness > 0:
        try:
            os.nice(niceness)
        except OSError:  # not permitted: run at normal priority
            pass
