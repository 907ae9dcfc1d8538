"""The batch tests' engine fixture (the real engine, or the contract-shaped fake)."""

from tests.batch.conftest import engine, is_real_engine  # noqa: F401
