"""The finance report opens offline in headless chromium with every chart drawn."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import main

from tests.finance.roster import write_priced_roster

CHARTS = ("chart-histogram", "chart-mean-by-segment", "chart-transition",
          "chart-revenue-by-segment")
CHECK = """JSON.stringify({
  charts: [...document.querySelectorAll('figure.chart')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : null;
    return {id: f.id, svg: !!svg, width: box ? box.width : 0, height: box ? box.height : 0,
            marks: svg ? svg.querySelectorAll('rect').length : 0};
  }),
  external: [...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href)
})"""


def test_report_renders_every_chart_offline(browser, tmp_path: Path) -> None:
    members, diagnoses, rates = write_priced_roster(tmp_path)
    summary = tmp_path / "summary.json"
    assert main(["score", "--payment-year", "2025", "--members", str(members), "--diagnoses",
                 str(diagnoses), "--rates", str(rates), "--out", str(tmp_path / "scores.parquet"),
                 "--summary", str(summary), "--quiet"]) in (0, 2)
    report = tmp_path / "report.html"
    assert main(["report", str(summary), "-o", str(report)]) == 0

    page = browser.open(report.as_uri(), evaluate=CHECK, screenshot="finance-report.png")

    found = json.loads(page.value)
    assert [c["id"] for c in found["charts"]] == list(CHARTS)
    for chart in found["charts"]:
        assert chart["svg"] and chart["width"] > 100 and chart["height"] > 10, chart
        assert chart["marks"] > 0, chart
    assert found["external"] == []
    assert page.failed_requests == []
    assert page.console_errors == []
    assert page.screenshot is not None and page.screenshot.stat().st_size > 10_000


def test_blocked_network_is_seen_as_failed_requests(browser, tmp_path: Path) -> None:
    """The fixture can fail: a page that loads from the internet shows failed requests."""
    page_file = tmp_path / "cdn.html"
    page_file.write_text('<!DOCTYPE html><html><head><script src="https://cdn.example.org/x.js">'
                         "</script></head><body>x</body></html>")
    page = browser.open(page_file.as_uri())
    assert [r["url"] for r in page.failed_requests] == ["https://cdn.example.org/x.js"]
