"""`/ready`, `/metrics` and the SIGTERM drain, in process (`app.lifecycle`, `app.metrics`).

The real-process behaviour (several workers, SIGTERM, slow load) is in `tests/ops`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.lifecycle import Lifecycle
from app.main import create_app
from app.settings import Settings, SettingsError


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_settings_read_the_operations_variables() -> None:
    settings = Settings.from_env({
        "RAF_METRICS_PUBLIC": "1", "RAF_SHUTDOWN_GRACE_SECONDS": "5",
        "RAF_SHUTDOWN_DRAIN_SECONDS": "3",
    })
    assert settings.metrics_public is True
    assert (settings.shutdown_grace_seconds, settings.shutdown_drain_seconds) == (5, 3)
    defaults = Settings.from_env({})
    assert defaults.metrics_public is False
    assert (defaults.shutdown_grace_seconds, defaults.shutdown_drain_seconds) == (20, 0)
    for env in ({"RAF_METRICS_PUBLIC": "maybe"}, {"RAF_SHUTDOWN_GRACE_SECONDS": "-1"}):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def test_metrics_need_a_key_like_v1_unless_public(make_client) -> None:
    keyed = make_client(Settings(api_keys=("k-one",)))
    assert keyed.get("/metrics").status_code == 401
    assert keyed.get("/metrics", headers={"ApiKey": "wrong"}).status_code == 401
    assert keyed.get("/metrics", headers={"ApiKey": "k-one"}).status_code == 200
    assert keyed.get("/ready").status_code == 200  # probes never need a key
    public = make_client(Settings(api_keys=("k-one",), metrics_public=True))
    assert public.get("/metrics").status_code == 200
    assert public.post("/v1/risk-scores", json={}).status_code == 401  # /v1 stays protected


def test_metrics_label_routes_by_template_and_count_unrouted(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RAF_DATA_DIR", str(tmp_path))
    app = create_app(Settings(data_dir=str(tmp_path)))
    with TestClient(app, raise_server_exceptions=False) as client:
        before = _samples(client.get("/metrics").text)
        assert client.get("/v1/jobs/secret-job-id").status_code == 404
        assert client.get("/no/such/route").status_code == 404
        assert client.delete("/health").status_code == 405
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = _samples(response.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("raf_http_requests_total", method="GET", route="/v1/jobs/{job_id}",
                 status="404") == 1
    assert delta("raf_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("raf_http_requests_total", method="DELETE", route="unmatched", status="405") == 1
    assert "secret-job-id" not in response.text and "/no/such/route" not in response.text
    assert after[("raf_jobs", (("status", "queued"),))] == 0  # read from the jobs database
    assert after[("raf_ready", ())] == 1


def test_a_member_error_is_counted(client, seed_request) -> None:
    seed_request["memberships"][1]["DOB"] = "not-a-date"
    before = _samples(client.get("/metrics").text)
    body = client.post("/v1/risk-scores", json=seed_request).json()
    assert len(body["errors"]) == 1
    after = _samples(client.get("/metrics").text)
    assert after[("raf_member_errors_total", ())] - before[("raf_member_errors_total", ())] == 1
    scored = ("raf_members_scored_total", ())
    assert after[scored] - before[scored] == 1


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda lc: None, "ready"),
        (lambda lc: lc.draining.set(), "draining"),
        (lambda lc: lc.reference_loaded.clear(), "starting"),
        (lambda lc: setattr(lc, "job_runner", "starting"), "starting"),
        (lambda lc: setattr(lc, "reference_error", "reference data failed to load: boom"), "failed"),
    ],
)
def test_ready_reports_each_state(client, change, status) -> None:
    change(client.app.state.lifecycle)
    response = client.get("/ready")
    assert response.status_code == (200 if status == "ready" else 503)
    assert response.json()["status"] == status
    assert client.get("/health").status_code == 200  # liveness whatever the readiness


def test_ready_waits_for_the_job_runner(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RAF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAF_JOB_EXECUTOR", "thread")
    app = create_app(Settings(data_dir=str(tmp_path)))
    assert app.state.lifecycle.status == "starting"  # before the lifespans ran
    with TestClient(app) as client:
        assert client.get("/ready").json() == {
            "status": "ready", "reference_loaded": True, "job_runner": "up"
        }
    assert app.state.lifecycle.job_runner == "stopped"


def test_a_failed_background_load_is_reported_not_raised() -> None:
    class BrokenStore:
        supported_years = (2025,)

        def year(self, payment_year: int) -> None:
            raise OSError("disk gone")

    lifecycle = Lifecycle(jobs_enabled=False)
    lifecycle.load_reference_in_background(BrokenStore()).join(10)
    assert lifecycle.status == "failed"
    assert "OSError: disk gone" in (lifecycle.reference_error or "")


def test_sigterm_marks_draining_then_hands_the_signal_on_after_the_drain() -> None:
    lifecycle = Lifecycle(jobs_enabled=False)
    handed_on = threading.Event()
    calls: list[int] = []

    def server_handler(signum: int, frame: object) -> None:
        calls.append(signum)
        handed_on.set()

    handler = lifecycle._drain_handler(server_handler, drain_seconds=0.2)
    handler(signal.SIGTERM, None)
    assert lifecycle.status == "draining"
    assert calls == []  # held back for the drain: still accepting, /ready 503
    assert handed_on.wait(10) and calls == [signal.SIGTERM]

    immediate = Lifecycle(jobs_enabled=False)._drain_handler(server_handler, drain_seconds=0)
    immediate(signal.SIGTERM, None)
    assert calls == [signal.SIGTERM, signal.SIGTERM]  # no drain: uvicorn stops accepting now


def test_openapi_lists_the_operations_routes(client) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"/ready", "/metrics"} <= set(paths)
    assert "503" in paths["/ready"]["get"]["responses"]


def _cut_off_middleware_answer(draining: bool, started: bool) -> list[dict]:
    from types import SimpleNamespace

    from app.lifecycle import CutOffMiddleware

    lifecycle = Lifecycle(jobs_enabled=False)
    if draining:
        lifecycle.draining.set()
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def cancelled_app(scope: dict, receive: object, send_: object) -> None:
        if started:
            await send_({"type": "http.response.start", "status": 200, "headers": []})
        raise asyncio.CancelledError("timeout graceful shutdown exceeded")

    scope = {"type": "http", "path": "/v1/risk-scores", "state": {"request_id": "r-1"},
             "app": SimpleNamespace(state=SimpleNamespace(get=lambda key: lifecycle))}
    asyncio.run(CutOffMiddleware().handle(scope, None, send, cancelled_app))
    return sent


def test_a_request_cut_off_by_the_grace_period_gets_503() -> None:
    start, body = _cut_off_middleware_answer(draining=True, started=False)
    assert start["status"] == 503 and (b"retry-after", b"1") in start["headers"]
    answer = json.loads(body["body"])
    assert answer["status"] == "failure" and "RAF_SHUTDOWN_GRACE_SECONDS" in answer["message"]
    assert answer["request_id"] == "r-1"
    for draining, started in ((False, False), (True, True)):  # not ours to answer: re-raised
        with pytest.raises(asyncio.CancelledError):
            _cut_off_middleware_answer(draining, started)


def test_job_workers_do_not_import_prometheus_client() -> None:
    """A job worker process imports app.jobs; with prometheus-client loaded there, every job
    attempt under `--workers N` would leave its own (zero) multiprocess metric files."""
    import subprocess
    import sys

    probe = (
        "import sys, app.jobs, app.jobs_worker; "
        "print(any(m.split('.')[0] == 'prometheus_client' for m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "False"
