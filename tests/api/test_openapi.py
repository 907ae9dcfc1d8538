"""The app's own OpenAPI document, and a schemathesis run against it.

Schemathesis generates requests from the schema (valid and invalid) and checks
that the app never answers 500 and that answers match the documented responses.
Command-line equivalent against a running server:

    .venv/bin/raf serve --port 8000 &
    .venv/bin/schemathesis run http://127.0.0.1:8000/schema/openapi.json \
        --exclude-checks positive_data_acceptance
"""

from __future__ import annotations

import pytest

from app.main import create_app
from app.settings import Settings
from reference.store import ReferenceStore

try:  # a dev dependency to add to pyproject ([dev]); without it only the run is skipped
    import schemathesis
except ImportError:  # pragma: no cover
    schemathesis = None


def test_openapi_documents_the_contract(client) -> None:
    document = client.get("/schema/openapi.json").json()
    paths = document["paths"]
    assert {"/v1/risk-scores", "/v1/reference", "/health"} <= set(paths)
    post = paths["/v1/risk-scores"]["post"]
    assert {"200", "400", "401", "413", "500"} <= set(post["responses"])
    assert any(p["name"] == "detail" for p in post["parameters"])
    assert client.get("/schema/swagger").status_code == 200  # interactive docs page


if schemathesis is not None:
    APP = create_app(Settings(cache_size=1_000), store=ReferenceStore(), enable_jobs=False)
    SCHEMA = schemathesis.openapi.from_asgi("/schema/openapi.json", APP)

    @SCHEMA.parametrize()
    @pytest.mark.filterwarnings("ignore")
    def test_schemathesis(case) -> None:
        # positive_data_acceptance is left out on purpose: `payment_year` is any integer in the
        # schema, but only the years in the reference data are served (others: 400 by contract).
        case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])
else:

    @pytest.mark.skip(reason="schemathesis is not installed (pip install 'schemathesis>=4.3')")
    def test_schemathesis() -> None:
        pass
