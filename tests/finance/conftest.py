"""The API fixtures (`client`, `make_client`) for the finance tests."""

from tests.api.conftest import client, make_client  # noqa: F401  (pytest fixtures)
