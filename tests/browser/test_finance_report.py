"""The finance report in headless Chromium, offline: every chart drawn as SVG, no request
that fails or leaves 127.0.0.1, a screenshot kept. Once as the job route serves it from a
real `raf serve`, once as `raf report` writes it (served from a loopback HTTP server)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import main
from tests.finance.roster import write_priced_roster

CHARTS = ["chart-histogram", "chart-mean-by-segment", "chart-transition",
          "chart-revenue-by-segment"]
CHARTS_DRAWN = """() => [...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {id: f.id, svg: !!svg, width: box.width, height: box.height,
          marks: svg ? svg.querySelectorAll('rect').length : 0};
})"""


def assert_report_rendered(offline_page, url: str, screenshot: str) -> None:
    response = offline_page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    charts = offline_page.page.evaluate(CHARTS_DRAWN)
    assert [c["id"] for c in charts] == CHARTS
    for chart in charts:
        assert chart["svg"] and chart["width"] > 100 and chart["height"] > 10, chart
        assert chart["marks"] > 0, chart
    shot = offline_page.screenshot(screenshot)
    assert shot.stat().st_size > 10_000
    offline_page.assert_offline()
    assert offline_page.failed == [] and offline_page.console_errors == []
    assert offline_page.requests == [url]  # the page itself and nothing else


def test_job_report_route_renders_offline(live_server, offline_page, tmp_path: Path) -> None:
    members, diagnoses, rates = write_priced_roster(tmp_path)
    files = {name: (path.name, path.read_bytes(), "text/csv")
             for name, path in (("memberships", members), ("diagnoses", diagnoses),
                                ("rates", rates))}
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        accepted = client.post("/v1/jobs", data={"payment_year": "2025"}, files=files)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/jobs/{job_id}").json()["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, live_server.log_text()
            time.sleep(0.2)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "completed"
    assert_report_rendered(offline_page, f"{live_server.url}/v1/jobs/{job_id}/report",
                           "finance-job-report")


@pytest.fixture
def loopback_files(tmp_path: Path) -> Iterator[str]:
    """`tmp_path` served over HTTP on 127.0.0.1 (the offline page allows only loopback)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_raf_report_file_renders_offline(offline_page, loopback_files, tmp_path: Path) -> None:
    members, diagnoses, rates = write_priced_roster(tmp_path)
    summary = tmp_path / "summary.json"
    assert main(["score", "--payment-year", "2025", "--members", str(members), "--diagnoses",
                 str(diagnoses), "--rates", str(rates), "--out", str(tmp_path / "scores.parquet"),
                 "--summary", str(summary), "--quiet"]) == 2  # two planted bad members
    assert json.loads(summary.read_text())["payment"]["total_cents"] > 0
    assert main(["report", str(summary), "-o", str(tmp_path / "report.html")]) == 0
    assert_report_rendered(offline_page, f"{loopback_files}/report.html", "finance-cli-report")
