"""The app's own OpenAPI document (schemathesis runs against it in `test_fuzz.py`)."""

from __future__ import annotations


def test_openapi_documents_the_contract(client) -> None:
    document = client.get("/schema/openapi.json").json()
    paths = document["paths"]
    assert {"/v1/risk-scores", "/v1/reference", "/health"} <= set(paths)
    post = paths["/v1/risk-scores"]["post"]
    assert {"200", "400", "401", "413", "500"} <= set(post["responses"])
    assert any(p["name"] == "detail" for p in post["parameters"])
    assert client.get("/schema/swagger").status_code == 200  # interactive docs page
