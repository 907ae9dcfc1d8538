"""The served OpenAPI document is one a client generator can trust, and the docs
pages need nothing from the internet (the browser half: tests/browser)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from app.docs_assets.vendor import HERE as ASSETS_DIR
from app.docs_assets.vendor import PACKAGES
from app.openapi import example
from app.settings import Settings
from ratype.tables import code_table
from tests.api.conftest import SEED_REQUEST
from tests.api.test_seed_contract import SEED_ROWS

REPO = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "patch"}
# Error answers with their own documented body (not the envelope), by design.
DECLARED_ERROR_BODIES = {("/ready", "503"): "#/components/schemas/ReadyResponse"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from litestar.testing import TestClient

    from app.main import create_app

    with TestClient(create_app(Settings(cache_size=0))) as client:
        return client.get("/schema/openapi.json").json()


def properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, schema) of a named property anywhere in the document."""
    if isinstance(node, dict):
        for name, schema in (node.get("properties") or {}).items():
            yield f"{path}.{name}", schema
        for key, value in node.items():
            yield from properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from properties(value, path)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def validator(document: dict[str, Any], component: str) -> Any:
    """JSON Schema 2020-12 (OpenAPI 3.1's dialect) validator for one component, formats on."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def _scalar(schema: dict[str, Any]) -> bool:
    """A string/number/boolean field (uploaded files aside: they have no example)."""
    if "binary" in [schema.get("format")] + [s.get("format") for s in schema.get("oneOf", [])]:
        return False
    kinds = [schema.get("type")] + [s.get("type") for s in schema.get("oneOf", [])]
    return any(k in ("string", "integer", "number", "boolean") for k in kinds) and not any(
        "$ref" in s or s.get("type") in ("array", "object") for s in schema.get("oneOf", [])
    )


def test_every_property_and_parameter_is_described(document) -> None:
    found = list(properties(document))
    undescribed = [path for path, schema in found if not schema.get("description")]
    assert len(found) > 100
    assert not undescribed, (
        f"{len(undescribed)} of {len(found)} properties have no description (add doc(...) on "
        f"the Struct field, app.wire.doc): {undescribed}"
    )
    params = [
        (method, path, p["name"])
        for method, path, op in operations(document)
        for p in op.get("parameters", [])
        if not p.get("description")
    ]
    assert not params, f"parameters without a description: {params}"


def test_every_scalar_request_and_response_field_has_an_example(document) -> None:
    missing = [
        path
        for path, schema in properties(document["components"]["schemas"])
        if _scalar(schema) and not schema.get("examples")
    ]
    assert not missing, f"scalar fields without an example: {missing}"


def test_allowed_values_are_the_ones_the_service_uses(document, client) -> None:
    schemas = document["components"]["schemas"]
    membership = schemas["Membership"]["properties"]
    supported = code_table().filter(supported="yes")["code"].to_list()
    assert membership["RAType"]["enum"] == supported  # from ratype/codes.csv
    assert "PI" not in membership["RAType"]["enum"]  # PACE: a member error, not a score
    assert membership["Gender"]["enum"] == ["M", "F"]
    for flag in ("Hospice", "LTIMCAID", "NEMCAID"):
        assert membership[flag]["enum"] == ["Y", "N", None]
    assert membership["OREC"]["enum"] == ["0", "1", "2", "3", None]
    assert membership["DOB"]["format"] == "date"
    diagnosis = schemas["Diagnosis"]["properties"]
    assert diagnosis["FromDOS"]["format"] == diagnosis["ThruDOS"]["format"] == "date"
    served = client.get("/v1/reference").json()["supported_payment_years"]
    assert schemas["RiskScoreRequest"]["properties"]["payment_year"]["enum"] == served
    assert schemas["JobForm"]["properties"]["payment_year"]["enum"] == [str(y) for y in served]


def test_payment_years_come_from_the_store(make_client) -> None:
    class OneYearStore:
        supported_years = (2031,)

        def year(self, payment_year: int) -> None:
            return None

    client = make_client(store=OneYearStore())
    document = client.get("/schema/openapi.json").json()
    request = document["components"]["schemas"]["RiskScoreRequest"]["properties"]
    assert request["payment_year"]["enum"] == [2031]


def test_the_seed_request_is_the_example_validates_and_scores_the_six_rows(
    document, client
) -> None:
    body = document["paths"]["/v1/risk-scores"]["post"]["requestBody"]["content"]
    documented = body["application/json"]["schema"]["examples"][0]
    assert documented == SEED_REQUEST == example("seed_request")
    validator(document, "RiskScoreRequest").validate(documented)
    answer = client.post("/v1/risk-scores", json=documented)
    assert answer.status_code == 200
    assert answer.json()["results"] == SEED_ROWS


def test_the_response_example_is_the_seed_rows_and_matches_the_schema(document, client) -> None:
    ok = document["paths"]["/v1/risk-scores"]["post"]["responses"]["200"]
    (documented,) = ok["content"]["application/json"]["examples"].values()
    assert documented["value"]["results"] == SEED_ROWS
    validator(document, "RiskScoreResponse").validate(documented["value"])
    sent = client.post("/v1/risk-scores?detail=true", json=SEED_REQUEST).json()
    validator(document, "RiskScoreResponse").validate(sent)


def test_every_failure_is_documented_as_the_envelope_the_service_sends(document) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "500" in responses, (method, path)
        for code, response in responses.items():
            if code[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                if (path, code) in DECLARED_ERROR_BODIES:
                    assert schema == {"$ref": DECLARED_ERROR_BODIES[path, code]}
                    continue
                assert schema == {"$ref": "#/components/schemas/FailureResponse"}, (
                    method, path, code)
                for item in response["content"]["application/json"].get("examples", {}).values():
                    validator(document, "FailureResponse").validate(item["value"])
    failure = document["components"]["schemas"]["FailureResponse"]
    assert set(failure["required"]) == {"status", "message", "errors"}


def test_status_codes_each_route_can_send(document) -> None:
    paths = document["paths"]
    assert {"200", "400", "401", "413", "500"} <= set(paths["/v1/risk-scores"]["post"]["responses"])
    assert {"202", "400", "401", "413"} <= set(paths["/v1/jobs"]["post"]["responses"])
    assert {"200", "401", "404"} <= set(paths["/v1/jobs/{job_id}"]["get"]["responses"])
    for part in ("result", "errors"):
        download = paths[f"/v1/jobs/{{job_id}}/{part}"]["get"]["responses"]
        assert {"200", "400", "401", "404", "409"} <= set(download)
        assert set(download["200"]["content"]) == {
            "text/csv", "application/json", "application/vnd.apache.parquet"}
    trixss = paths["/api/risk-assessment"]["post"]
    assert trixss["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RiskScoreRequest"}
    assert {"202", "400", "401", "413"} <= set(trixss["responses"])
    assert {"200", "202", "404"} <= set(paths["/api/orchestrators/{instance_id}"]["get"]["responses"])


def test_guarded_routes_carry_the_api_key_scheme(document, make_client) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header",
                                 "name": "ApiKey"}
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        guarded = path.startswith(("/v1/", "/api/")) or path == "/metrics"
        assert ("security" in operation) == guarded, (method, path)
        if guarded:
            assert {"ApiKey": []} in operation["security"] and "401" in operation["responses"]
    # with keys configured, anonymous access is no longer one of the alternatives
    keyed = make_client(settings=Settings(api_keys=("k1",))).get("/schema/openapi.json").json()
    security = keyed["paths"]["/v1/risk-scores"]["post"]["security"]
    assert security == [{"ApiKey": []}, {"Bearer": []}]


def test_docs_pages_load_only_local_assets(client) -> None:
    for page in ("/schema", "/schema/swagger", "/schema/redoc"):
        html = client.get(page).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert urls, page
        assert all(url.startswith("/schema/assets/") for url in urls), (page, urls)
        assert "googleapis" not in html and "cdn." not in html
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].split(";")[0] in {
                "text/javascript", "application/javascript", "text/css", "image/png"}, url


def test_vendored_assets_are_the_recorded_npm_files() -> None:
    recorded = json.loads((ASSETS_DIR / "VENDORED.json").read_text())
    assert set(recorded) == set(PACKAGES)
    for directory, entry in recorded.items():
        package, version, licence, _ = PACKAGES[directory]
        assert (entry["package"], entry["version"], entry["license"]) == (package, version, licence)
        assert "LICENSE" in entry["files"]
        on_disk = {p.name for p in (ASSETS_DIR / directory).iterdir()}
        assert on_disk == set(entry["files"]), directory
        for name, digest in entry["files"].items():
            data = (ASSETS_DIR / directory / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{directory}/{name} was edited"
