"""The browser fixture itself: a request for another host is aborted and reported,
so a page that needs the internet fails the tests that use `offline_page`."""

from __future__ import annotations

import pytest


def test_a_request_outside_loopback_is_blocked_and_named(offline_page) -> None:
    offline_page.page.set_content(
        "<html><head><script src='https://cdn.example.org/lib.js'></script></head>"
        "<body><p id='ok'>local</p></body></html>"
    )
    assert offline_page.page.text_content("#ok") == "local"
    assert offline_page.blocked == ["https://cdn.example.org/lib.js"]
    with pytest.raises(AssertionError, match="cdn.example.org"):
        offline_page.assert_offline()


def test_the_live_server_answers_the_browser(live_server, offline_page) -> None:
    answer = offline_page.goto(live_server.url + "/health")
    assert answer is not None and answer.status == 200
    assert '"status":"ok"' in offline_page.page.content().replace(" ", "")
    offline_page.assert_offline()
    assert offline_page.screenshot().is_file()
