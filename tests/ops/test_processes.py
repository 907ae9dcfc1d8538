"""`raf serve` as an operator runs it: real processes on loopback (issue 24, "Must show").

* `/metrics` counts a request and its members;
* `/ready` is 503 while the reference data loads (a test hook slows the load), then 200,
  while `/health` (liveness) is 200 throughout;
* with `--workers 2` each worker loads the reference data once, both answer
  requests (their pids in `raf_worker_http_requests_total`), any worker's scrape
  adds up both, and every job runs exactly once;
* SIGTERM during a slow request: `/ready` turns 503 (draining), the request still
  completes with 200, the running job goes back to the queue, the process exits 0.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.ops.conftest import SEED_REQUEST, metric, wait_for

pytestmark = pytest.mark.slow
EXIT_TIMEOUT = 60


def test_metrics_count_a_request_and_its_members(serve) -> None:
    server = serve()
    server.wait_ready()
    before = server.metrics()
    response = server.post("/v1/risk-scores", json=SEED_REQUEST)
    assert response.status_code == 200, response.text
    route = {"method": "POST", "route": "/v1/risk-scores"}
    counted = ("raf_http_requests_total", {**route, "status": "200"})
    # the request is counted once its response is sent: the client may see it first
    after = wait_for(
        lambda: (m := server.metrics()) and metric(m, counted[0], **counted[1])
        - metric(before, counted[0], **counted[1]) == 1 and m,
        30, "the request counted",
    )

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("raf_http_request_duration_seconds_count", **route) == 1
    assert delta("raf_members_total") == 2
    assert delta("raf_members_scored_total") == 2
    assert delta("raf_member_errors_total") == 0
    assert delta("raf_result_rows_total") == 6  # raw V28, raw V24, active per member
    assert delta("raf_diagnoses_total", reason="used") == 1  # F13229
    assert delta("raf_diagnoses_total", reason="unknown_code") == 1  # S62X5
    assert delta("raf_cache_misses_total") == 2 and delta("raf_cache_hits_total") == 0
    assert delta("raf_engine_seconds_count") == 1
    assert metric(after, "raf_cache_entries") == 2
    release = response.json()["reference"]["release_id"]
    assert metric(after, "raf_reference_release_info", payment_year="2025", release_id=release,
                  sha256=response.json()["reference"]["sha256"]) == 1
    assert metric(after, "raf_ready") == 1
    assert metric(after, "raf_job_queue_depth") == 0

    again = server.post("/v1/risk-scores", json=SEED_REQUEST)  # answered from the cache
    assert again.status_code == 200
    cached = server.metrics()
    assert metric(cached, "raf_cache_hits_total") - metric(after, "raf_cache_hits_total") == 2
    assert metric(cached, "raf_members_total") - metric(after, "raf_members_total") == 2
    text = server.get("/metrics").text
    assert "M00912" not in text and "F13229" not in text  # no member data in labels


def test_ready_is_503_until_the_reference_data_is_loaded(serve) -> None:
    server = serve(RAF_TEST_REFERENCE_LOAD_DELAY_SECONDS="5")
    wait_for(lambda: server.get("/health", timeout=5).status_code == 200, 90, "/health 200")
    starting = server.get("/ready")  # the load sleeps 5 s after the listener opened
    assert starting.status_code == 503, starting.text
    assert starting.json()["status"] == "starting"
    assert starting.json()["reference_loaded"] is False
    server.wait_ready()
    ready = server.get("/ready").json()
    assert ready == {"status": "ready", "reference_loaded": True, "job_runner": "up"}
    assert server.get("/health").status_code == 200
    loaded = [e for e in server.log_events() if e.get("event") == "reference_loaded"]
    assert len(loaded) == 1 and loaded[0]["seconds"] >= 5


def _submit_job(server, request=SEED_REQUEST) -> str:
    accepted = server.post(
        "/v1/jobs",
        data={"payment_year": str(request["payment_year"])},
        files={"memberships": ("request.json", json.dumps(request).encode(), "application/json")},
    )
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["job_id"]


def _job(server, job_id: str) -> dict:
    return server.get(f"/v1/jobs/{job_id}").json()


def test_two_workers_share_requests_and_run_each_job_once(serve) -> None:
    server = serve(workers=2)
    server.wait_ready()

    def worker_pids() -> set[str]:
        scrape = server.metrics()
        return {
            dict(labels)["pid"]
            for (name, labels), value in scrape.items()
            if name == "raf_worker_http_requests_total" and value > 0
        }

    def score() -> int:
        with httpx.Client(base_url=server.base, timeout=60) as client:  # a new connection each
            return client.post("/v1/risk-scores", json=SEED_REQUEST).status_code

    sent = []
    with ThreadPoolExecutor(8) as pool:
        def both_answered() -> bool:
            statuses = list(pool.map(lambda _: score(), range(8)))
            sent.extend(statuses)
            assert set(statuses) == {200}
            return len(worker_pids()) == 2

        wait_for(both_answered, 90, "requests answered by both workers", every=0)
    pids = worker_pids()
    assert str(server.process.pid) not in pids  # the supervisor answers nothing itself
    # whichever worker answers the scrape adds up every worker's counters
    route = {"method": "POST", "route": "/v1/risk-scores", "status": "200"}
    wait_for(lambda: metric(server.metrics(), "raf_http_requests_total", **route) == len(sent),
             30, f"{len(sent)} requests counted")
    assert metric(server.metrics(), "raf_members_total") == 2 * len(sent)

    job_ids = [_submit_job(server) for _ in range(4)]
    done = [
        wait_for(lambda j=job_id: (s := _job(server, j))["status"] in ("completed", "failed")
                 and s, 120, f"job {job_id}", every=0.2)
        for job_id in job_ids
    ]
    assert [(j["status"], j["attempts"], j["count"]) for j in done] == [("completed", 1, 6)] * 4
    scrape = server.metrics()
    assert metric(scrape, "raf_jobs", status="completed") == 4
    assert metric(scrape, "raf_jobs", status="running") == 0
    assert metric(scrape, "raf_job_queue_depth") == 0
    # one runner: some process holds the data directory's runner lock (so no other can)
    with (server.data_dir / "runner.lock").open("a+") as lock, pytest.raises(BlockingIOError):
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    server.terminate()
    assert server.process.wait(EXIT_TIMEOUT) == 0, server.log()[-3000:]
    loads = [e for e in server.log_events() if e.get("event") == "reference_loaded"]
    assert len(loads) == 2  # each worker parsed the reference years once


def test_sigterm_lets_a_slow_request_finish_and_hands_the_job_back(serve) -> None:
    server = serve(
        RAF_TEST_SCORE_DELAY_SECONDS="5",
        RAF_SHUTDOWN_DRAIN_SECONDS="3",
        RAF_SHUTDOWN_GRACE_SECONDS="60",
        RAF_JOB_CHUNK_MEMBERS="1",
    )
    server.wait_ready()
    job_id = _submit_job(server)  # two members, one per chunk: 5 s per chunk
    wait_for(lambda: _job(server, job_id)["status"] == "running", 60, "job running")

    slow: dict[str, httpx.Response] = {}
    request = threading.Thread(
        target=lambda: slow.update(response=server.post("/v1/risk-scores", json=SEED_REQUEST))
    )
    request.start()
    in_flight = {"method": "POST", "route": "/v1/risk-scores"}
    wait_for(lambda: metric(server.metrics(), "raf_http_requests_in_progress", **in_flight) >= 1,
             60, "the slow request in flight")

    server.terminate()
    draining = wait_for(lambda: (r := server.get("/ready", timeout=5)).status_code == 503 and r,
                        30, "/ready 503 while draining", every=0.02)
    assert draining.json()["status"] == "draining"
    request.join(90)
    assert "response" in slow, "the in-flight request got no answer"
    assert slow["response"].status_code == 200, slow["response"].text
    assert slow["response"].json()["count"] == 6
    assert server.process.wait(EXIT_TIMEOUT) == 0, server.log()[-3000:]

    with sqlite3.connect(server.data_dir / "jobs.sqlite3") as conn:
        status, attempts, crashes = conn.execute(
            "SELECT status, attempts, crashes FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
    # handed back, to run again on the next start; a clean stop is not a crash
    assert (status, attempts, crashes) == ("queued", 1, 0)
