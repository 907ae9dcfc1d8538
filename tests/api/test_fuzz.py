"""Bounded fuzzing of every operation against the served OpenAPI document.

Schemathesis generates requests from the app's OpenAPI document -- valid ones and
deliberately broken ones (wrong types, missing fields, odd bytes in multipart
fields, strange path ids) -- against the whole app, batch jobs included (a
thread runner on a temporary data directory, so accepted jobs really run).
The document says which values score (`payment_year` is the enum of the
store's years, RAType the supported codes, Y/N flags, OREC 0-3, dates), so
generated scoring requests reach the engine instead of all being 400s.

* every operation: never a 5xx, and the status code, content type and body are
  the documented ones (schemathesis' response checks);
* `POST /v1/risk-scores` with valid data: accepted (`positive_data_acceptance`)
  and a share of the requests produce result rows (asserted > 0, printed).

Generated bodies drop `rates`: a rate table is checked as a table (one rate per
county and year, across rows), which a JSON schema cannot say, so a generated
table may be a correct 400; `tests/finance` covers it. `negative_data_rejection`
is left out on purpose: by contract a member value outside the documented ones
(a PACE RAType, a DOB in the future, a lower-case flag, a diagnosis with a bad
date) is judged per member (200 `partial`, or counted in `diagnoses_summary`),
not refused as a 400.

The 500s this guards against were found this way: a non-UTF-8 byte in a
multipart text field of `POST /v1/jobs`, and JSON nested ~1,000 levels deep.
Command-line equivalent against a running server:

    .venv/bin/raf serve --port 8000 &
    .venv/bin/schemathesis run http://127.0.0.1:8000/schema/openapi.json \\
        --exclude-checks negative_data_rejection
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from app.jobs import JobService, JobSettings
from app.main import create_app
from app.settings import Settings
from engine.run import score_batch
from reference.store import ReferenceStore

EXAMPLES = 50
SCORE_EXAMPLES = 60

DATA_DIR = Path(tempfile.mkdtemp(prefix="raf-fuzz-"))
STORE = ReferenceStore()
APP = create_app(Settings(cache_size=1_000, data_dir=str(DATA_DIR)), store=STORE)
JOBS = JobService(
    JobSettings(data_dir=DATA_DIR, executor="thread", poll_seconds=0.05),
    engine=(score_batch, STORE),
)
APP.state.jobs = JOBS  # the jobs lifespan uses it (and starts its runner) when it runs
SCHEMA = schemathesis.openapi.from_asgi("/schema/openapi.json", APP)
EXCLUDED = [schemathesis.checks.negative_data_rejection]
# Job routes: Litestar answers OPTIONS per route handler, so `Allow` on /v1/jobs/{job_id}
# lists DELETE or GET, not both (a framework detail, not the document's); and what a
# schema calls valid is not always acceptable there: an upload's bytes (format binary)
# must be CSV, Parquet or JSON, a `cursor` must be a previous page's opaque token (both a
# 400 naming the field otherwise).
EXCLUDED_FOR_JOBS = [
    *EXCLUDED,
    schemathesis.checks.allow_header_conformance,
    schemathesis.checks.positive_data_acceptance,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
)


@pytest.fixture(scope="module", autouse=True)
def job_runner() -> Iterator[None]:
    """Run accepted jobs while the module runs; leave no data directory behind."""
    for year in STORE.supported_years:
        STORE.year(year)
    JOBS.start()
    try:
        yield
    finally:
        JOBS.stop()
        shutil.rmtree(DATA_DIR, ignore_errors=True)


def without_rate_table(case: Any) -> None:
    if isinstance(case.body, dict):
        case.body.pop("rates", None)


def test_every_operation_is_fuzzed() -> None:
    operations = {
        (result.ok().method.upper(), result.ok().path) for result in SCHEMA.get_all_operations()
    }
    assert {
        ("POST", "/v1/risk-scores"),
        ("GET", "/v1/reference"),
        ("GET", "/health"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/{job_id}"),
        ("GET", "/v1/jobs/{job_id}/result"),
        ("GET", "/v1/jobs/{job_id}/errors"),
        ("POST", "/api/risk-assessment"),
        ("GET", "/api/orchestrators/{instance_id}"),
    } <= operations


@SCHEMA.parametrize()
@FUZZ_SETTINGS
@pytest.mark.filterwarnings("ignore")
def test_no_server_error_and_answers_match_the_document(case: Any) -> None:
    without_rate_table(case)
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}\n"
        f"reproduce: {case.as_curl_command()}"
    )
    jobs = case.path.startswith(("/v1/jobs", "/api/"))
    case.validate_response(response, excluded_checks=EXCLUDED_FOR_JOBS if jobs else EXCLUDED)


@pytest.mark.filterwarnings("ignore")
def test_generated_score_requests_reach_the_engine() -> None:
    operation = SCHEMA["/v1/risk-scores"]["POST"]
    stats: Counter[str] = Counter()

    @settings(FUZZ_SETTINGS, max_examples=SCORE_EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def run(case: Any) -> None:
        without_rate_table(case)
        response = case.call_and_validate()  # positive data: accepted, and as documented
        body = response.json()
        stats["requests"] += 1
        stats["with_rows"] += bool(body["results"])
        stats["members_sent"] += body["member_count"]
        stats["members_rejected"] += len(body["errors"])
        stats["rows"] += body["count"]

    run()
    share = stats["with_rows"] / stats["requests"]
    print(f"\nfuzz POST /v1/risk-scores: {dict(stats)}; share with rows {share:.2f}")
    assert stats["requests"] >= SCORE_EXAMPLES // 2
    assert stats["with_rows"] > 0, stats
