"""Browser-test fixtures: a real `raf serve` on a loopback port and Debian's
Chromium driven headless by Playwright, with the network cut off.

Fixtures (reuse them for any page the service renders):

* `live_server` (session): `raf serve` in a subprocess on 127.0.0.1 and a free
  port, its own `RAF_DATA_DIR`; yields a `LiveServer` (`.url`, `.log_path`).
  Extra environment for the server: `live_server_env` (override it in a test
  module's conftest or module to set `RAF_*` variables).
* `browser_context` (session): one persistent Chromium context started from a
  fresh `--user-data-dir`, with the flags that keep Chromium from calling home.
* `offline_page`: a new page in that context whose every request not to
  127.0.0.1 is aborted and recorded. `OfflinePage.requests` lists every URL the
  page asked for, `.blocked` those that would have left the machine,
  `.assert_offline()` fails naming them, `.screenshot(name)` keeps a PNG.
  A request the browser refused itself under the page's Content-Security-Policy
  never reaches the network; it is listed in `.refused_by_policy`, not failed.

Screenshots go to `$RAF_TEST_ARTIFACTS` or `tests/artifacts/` (gitignored).

Nothing is downloaded: Playwright's Python package drives the Chromium that
`.ci/run` installs from Debian (`apt-get install chromium`; `RAF_CHROMIUM`
points elsewhere). Without it the fixtures fail with the install command;
they never skip, so CI cannot pass without running the browser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
ALLOWED_HOSTS = frozenset({"127.0.0.1"})
# Schemes that never touch the network (inline assets, workers built from blobs).
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome-error"})
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # Belt and braces under Playwright's routing: any host name but loopback fails
    # to resolve, so even a request Playwright does not see cannot leave.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
SERVER_START_SECONDS = 90


def chromium_executable() -> str:
    path = os.environ.get("RAF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail(
            f"Chromium not found at {path}: install Debian's package "
            "(apt-get update && apt-get install -y chromium; .ci/run does) or set RAF_CHROMIUM",
            pytrace=False,
        )
    return path


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("RAF_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"raf serve exited with {server.process.returncode}:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"raf serve not healthy after {SERVER_START_SECONDS} s:\n{server.log_text()}")


@pytest.fixture(scope="session")
def live_server_env() -> dict[str, str]:
    """Extra environment for the `live_server` process (override to configure it)."""
    return {}


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, live_server_env: dict[str, str]
) -> Iterator[LiveServer]:
    """`raf serve` on 127.0.0.1 and a free port, stopped (SIGTERM, then kill) at the end."""
    work = tmp_path_factory.mktemp("live-server")
    port = free_port()
    log_path = work / "server.log"
    env = {
        **os.environ,
        "RAF_DATA_DIR": str(work / "data"),
        "RAF_JOB_EXECUTOR": "thread",
        **live_server_env,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path, process=process)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (Debian's) with a fresh profile, for the whole session."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        try:
            yield context
        finally:
            context.close()


def request_is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in ALLOWED_HOSTS


@dataclass
class OfflinePage:
    """A page whose requests can only reach 127.0.0.1; everything else is aborted and kept."""

    page: Any
    name: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refused_by_policy: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def goto(self, url: str, **kwargs: Any) -> Any:
        return self.page.goto(url, **kwargs)

    def screenshot(self, name: str | None = None, *, full_page: bool = True) -> Path:
        """Save a PNG under the artifacts directory and return its path."""
        target = artifacts_dir() / f"{name or self.name}.png"
        self.page.screenshot(path=str(target), full_page=full_page)
        return target

    def assert_offline(self) -> None:
        """No request was for anything but 127.0.0.1 (or inline data), except those the
        browser refused before sending (`refused_by_policy`)."""
        refused = set(self.refused_by_policy)
        outside = [url for url in self.requests if not request_is_local(url) and url not in refused]
        assert not self.blocked and not outside, (
            f"requests that would have left the machine: {sorted(set(self.blocked + outside))}"
        )


@pytest.fixture
def offline_page(browser_context: Any, request: pytest.FixtureRequest) -> Iterator[OfflinePage]:
    page = browser_context.new_page()
    offline = OfflinePage(page=page, name=_artifact_name(request.node.nodeid))

    def route(route: Any) -> None:
        url = route.request.url
        if request_is_local(url):
            route.continue_()
        else:
            offline.blocked.append(url)
            route.abort("blockedbyclient")

    page.route("**/*", route)
    page.on("request", lambda req: offline.requests.append(req.url))
    def failed(req: Any) -> None:
        # Chromium reports "csp" for a request it refused under Content-Security-Policy.
        (offline.refused_by_policy if req.failure == "csp" else offline.failed).append(req.url)

    page.on("requestfailed", failed)
    page.on(
        "console",
        lambda message: offline.console_errors.append(message.text)
        if message.type == "error"
        else None,
    )
    try:
        yield offline
    finally:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            # the test's own failure is the one to report, not a failed screenshot
            with contextlib.suppress(Exception):
                offline.screenshot(offline.name + ".failed")
        page.close()


def _artifact_name(nodeid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in nodeid.split("::", 1)[-1])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Keep each phase's report on the item, so `offline_page` can screenshot failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
