"""The docs pages render in a real browser with no network but loopback.

A real `raf serve` process on a loopback port; Debian's Chromium, headless,
with every request not to 127.0.0.1 aborted (`conftest.offline_page`). Each
page must show the `POST /v1/risk-scores` operation and the `Membership`
schema, and nothing may have left the machine. Screenshots are kept under
`tests/artifacts/` (or `$RAF_TEST_ARTIFACTS`).
"""

from __future__ import annotations

RENDER_TIMEOUT_MS = 30_000
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_swagger_ui_renders_offline(live_server, offline_page) -> None:
    page = offline_page.page
    answer = offline_page.goto(live_server.url + "/schema/swagger", wait_until="networkidle")
    assert answer is not None and answer.status == 200
    operation = page.locator(".opblock-post .opblock-summary-path[data-path='/v1/risk-scores']")
    operation.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.locator(".opblock-get [data-path='/v1/jobs/{job_id}/result']").count() == 1
    schemas = page.locator("section.models")
    schemas.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert schemas.get_by_text("Membership", exact=True).count() == 1
    assert page.locator(".btn.authorize").count() == 1  # the API-key scheme is offered
    operation.click()  # open it: the request example is the seed's request
    page.locator(".opblock-post .body-param__example").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "M00912" in page.locator(".opblock-post .body-param__example").inner_text()
    offline_page.screenshot("swagger")
    offline_page.assert_offline()
    assert not offline_page.refused_by_policy
    assert not [url for url in offline_page.failed if "/schema/" in url]


def test_redoc_renders_offline(live_server, offline_page) -> None:
    page = offline_page.page
    answer = offline_page.goto(live_server.url + "/schema/redoc", wait_until="networkidle")
    assert answer is not None and answer.status == 200
    page.locator("h2", has_text="Score a batch of members").wait_for(timeout=RENDER_TIMEOUT_MS)
    assert page.get_by_text("/v1/risk-scores", exact=True).count() >= 1
    assert page.get_by_text("Membership", exact=False).count() >= 1
    offline_page.screenshot("redoc", full_page=False)
    offline_page.assert_offline()
    assert not [url for url in offline_page.failed if "/schema/" in url]
    # ReDoc's bundle shows a logo from its CDN in the menu; the page's Content-Security-Policy
    # (app.openapi) makes the browser refuse it unsent, and ReDoc then drops the image.
    assert offline_page.refused_by_policy == [REDOC_LOGO]


def test_the_server_says_where_it_listens_and_where_its_docs_are(live_server) -> None:
    log = live_server.log_text()
    assert f"listening on {live_server.url}" in log
    assert f"{live_server.url}/schema" in log
