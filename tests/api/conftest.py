"""Fixtures for the HTTP API tests: the real app (real engine and reference data)
and a factory for apps with other settings or a stand-in scorer."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings

SEED_REQUEST: dict[str, Any] = {
    "payment_year": 2025,
    "memberships": [
        {"MemberID": "M00912", "DOB": "1985-10-13", "Gender": "M", "RAType": "CP",
         "Hospice": "N", "LTIMCAID": "N", "NEMCAID": "N", "OREC": "0"},
        {"MemberID": "M00913", "DOB": "1938-06-16", "Gender": "F", "RAType": "CN",
         "Hospice": "N", "LTIMCAID": "N", "NEMCAID": "N", "OREC": "0"},
    ],
    "diagnoses": [
        {"MemberID": "M00912", "FromDOS": "2024-08-18", "ThruDOS": "2024-08-21", "DxCode": "F13229"},
        {"MemberID": "M00912", "FromDOS": "2024-01-06", "ThruDOS": "2024-01-10", "DxCode": "S62X5"},
    ],
}


@pytest.fixture
def seed_request() -> dict[str, Any]:
    return copy.deepcopy(SEED_REQUEST)


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """`make_client(settings=Settings(...), score_batch=...)` -> a started TestClient."""
    clients: list[TestClient] = []

    def factory(settings: Settings | None = None, **kwargs: Any) -> TestClient:
        app = create_app(settings or Settings(), enable_jobs=False, **kwargs)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()
