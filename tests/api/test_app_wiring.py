"""create_app wiring: batch-job routes mounted and covered by the API-key guard; `raf serve`."""

from __future__ import annotations

import argparse

import pytest
from litestar.testing import TestClient

from app import server
from app.main import create_app
from app.settings import Settings


@pytest.fixture
def jobs_client(tmp_path, monkeypatch):
    monkeypatch.setenv("RAF_DATA_DIR", str(tmp_path))
    app = create_app(Settings(api_keys=("secret",), data_dir=str(tmp_path)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_job_routes_are_mounted_and_guarded(jobs_client) -> None:
    assert jobs_client.get("/v1/jobs/nope").status_code == 401
    assert jobs_client.get("/api/orchestrators/nope").status_code == 401
    answered = jobs_client.get("/v1/jobs/nope", headers={"ApiKey": "secret"})
    assert answered.status_code == 404  # the route exists; the job does not


def test_serve_runs_the_factory_under_uvicorn(monkeypatch) -> None:
    calls = {}
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    assert server.run(argparse.Namespace(host="0.0.0.0", port=9000, workers=3)) == 0
    assert calls["app"] == "app.main:create_served_app" and calls["factory"] is True
    assert (calls["host"], calls["port"], calls["workers"]) == ("0.0.0.0", 9000, 3)
    assert calls["timeout_graceful_shutdown"] == Settings().shutdown_grace_seconds
