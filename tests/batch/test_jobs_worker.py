"""A job worker never outlives its parent: the parent-death signal on Linux, and the
parent-pid watchdog wherever that signal is not available (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The middle process starts a grandchild that arms `die_with_parent`, prints its pid, and
# sleeps; the test then SIGKILLs the middle process, as the OOM killer would a server.
MIDDLE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=sys.stdout)
time.sleep(60)
"""
GRANDCHILD = """
import os, sys, time
import app.jobs_worker as worker
if {platform!r} == "linux":
    worker.PARENT_CHECK_SECONDS = 3600  # only the parent-death signal can end it in time
else:
    sys.platform = "other"  # no prctl: only the watchdog can end it
worker.die_with_parent(os.getppid())
print(os.getpid(), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("platform", ["linux", "other"])
def test_the_worker_dies_with_its_parent(platform):
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, GRANDCHILD.format(platform=platform)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        worker = int(middle.stdout.readline())
        assert _alive(worker)
        os.kill(middle.pid, signal.SIGKILL)
        middle.wait(5)
        deadline = time.monotonic() + 5
        while _alive(worker):
            assert time.monotonic() < deadline, f"worker {worker} outlived its parent"
            time.sleep(0.05)
    finally:
        if middle.poll() is None:
            middle.kill()
