"""`app.settings.Settings.from_env`: the RAF_* environment variables."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.api_keys == () and not settings.auth_enabled
    assert settings.max_members == 50_000 and settings.cache_size == 20_000


def test_every_variable_is_read() -> None:
    settings = Settings.from_env({
        "RAF_API_KEYS": " a , b,,", "RAF_MAX_BODY_BYTES": "1000", "RAF_MAX_MEMBERS": "7",
        "RAF_CACHE_SIZE": "0", "RAF_CACHE_TTL_SECONDS": "5", "RAF_LOG_LEVEL": "debug",
        "RAF_DATA_DIR": "/tmp/raf", "RAF_REFERENCE_DIR": "/srv/ref",
    })
    assert settings.api_keys == ("a", "b")
    assert (settings.max_body_bytes, settings.max_members) == (1000, 7)
    assert (settings.cache_size, settings.cache_ttl_seconds) == (0, 5)
    assert settings.log_level == "DEBUG"
    assert (settings.data_dir, settings.reference_dir) == ("/tmp/raf", "/srv/ref")


@pytest.mark.parametrize(
    "env",
    [{"RAF_MAX_MEMBERS": "many"}, {"RAF_MAX_BODY_BYTES": "0"}, {"RAF_LOG_LEVEL": "LOUD"},
     {"RAF_CACHE_TTL_SECONDS": "-1"}],
)
def test_bad_values_fail_loudly(env) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)
