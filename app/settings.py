"""Service settings, read once from the environment (12-factor style).

| variable | default | meaning |
|---|---|---|
| `RAF_API_KEYS` | empty (auth off) | comma-separated keys; when set, `/v1/*` needs header `ApiKey: <key>` or `Authorization: Bearer <key>` (`docs/api.md` errors table, 401) |
| `RAF_MAX_BODY_BYTES` | 52428800 (50 MiB) | larger request bodies get 413 with the limit in the message |
| `RAF_MAX_MEMBERS` | 50000 | more memberships in one request get 413 (use the batch jobs) |
| `RAF_CACHE_SIZE` | 20000 | members kept in the per-member result cache (0 disables it); about 6 KB each (three rows), so the default holds ~120 MB |
| `RAF_CACHE_TTL_SECONDS` | 3600 | how long a cached member answer lives |
| `RAF_LOG_LEVEL` | INFO | structlog level; member data is never logged at INFO |
| `RAF_DATA_DIR` | `.raf-data` | the service's writable data directory (batch jobs keep their SQLite and files there, `app.jobs`) |
| `RAF_REFERENCE_DIR` | bundled `reference/data` | reference data directory (a pinned release) |
| `RAF_RATES` | none | a county rate table CSV (`payment_year, county, monthly_rate, source`) pricing members by `County` (`engine.finance`); the service ships no rates |
| `RAF_METRICS_PUBLIC` | 0 | 1: `GET /metrics` stays open when `RAF_API_KEYS` is set (else it needs a key like `/v1/*`) |
| `RAF_SHUTDOWN_GRACE_SECONDS` | 20 | on SIGTERM, how long in-flight requests may take to finish before they are cut off (`docs/operations.md`) |
| `RAF_SHUTDOWN_DRAIN_SECONDS` | 0 | on SIGTERM, how long to keep accepting (with `/ready` 503) before closing the listener, so a load balancer sees the 503 first |
| `RAF_WARN_OUTSIDE_YEAR_PCT` / `RAF_WARN_INVALID_DATES_PCT` / `RAF_WARN_UNKNOWN_CODE_PCT` | 20 / 5 / 20 | percent of diagnosis rows above which the data-quality warning fires (`app.quality`; the CLI and jobs read the same variables) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.quality import WarningThresholds


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use."""


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={raw!r} is not 1/0 (true/false)")


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    parse: type[int | float] = int,
    minimum: float = 0,
    maximum: float | None = None,
) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError as exc:
        kind = "an integer" if parse is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not {kind}") from exc
    if value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={value} is above the maximum {maximum}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return int(_number(env, name, default, int, minimum))


def warning_thresholds_from_env(env: Mapping[str, str] | None = None) -> WarningThresholds:
    """`RAF_WARN_*`: percent of diagnosis rows above which each data-quality warning fires;
    the API (via `Settings`), the CLI and the job workers read the same variables."""
    env = os.environ if env is None else env
    default = WarningThresholds()

    def percent(name: str, value: float) -> float:
        return float(_number(env, name, value, float, minimum=0, maximum=100))

    return WarningThresholds(
        outside_collection_year_pct=percent(
            "RAF_WARN_OUTSIDE_YEAR_PCT", default.outside_collection_year_pct
        ),
        invalid_dates_pct=percent("RAF_WARN_INVALID_DATES_PCT", default.invalid_dates_pct),
        unknown_code_pct=percent("RAF_WARN_UNKNOWN_CODE_PCT", default.unknown_code_pct),
    )


@dataclass(frozen=True)
class Settings:
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 50 * 1024 * 1024
    max_members: int = 50_000
    cache_size: int = 20_000
    cache_ttl_seconds: int = 3_600
    log_level: str = "INFO"
    data_dir: str = ".raf-data"
    reference_dir: str | None = None
    rates_path: str | None = None
    metrics_public: bool = False
    shutdown_grace_seconds: int = 20
    shutdown_drain_seconds: int = 0
    warning_thresholds: WarningThresholds = field(default_factory=WarningThresholds)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        keys = tuple(k.strip() for k in env.get("RAF_API_KEYS", "").split(",") if k.strip())
        level = env.get("RAF_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"RAF_LOG_LEVEL={level!r} is not a log level")
        return cls(
            api_keys=keys,
            max_body_bytes=_int(env, "RAF_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            max_members=_int(env, "RAF_MAX_MEMBERS", cls.max_members, minimum=1),
            cache_size=_int(env, "RAF_CACHE_SIZE", cls.cache_size),
            cache_ttl_seconds=_int(env, "RAF_CACHE_TTL_SECONDS", cls.cache_ttl_seconds, minimum=1),
            log_level=level,
            data_dir=env.get("RAF_DATA_DIR", "").strip() or cls.data_dir,
            reference_dir=env.get("RAF_REFERENCE_DIR", "").strip() or None,
            rates_path=env.get("RAF_RATES", "").strip() or None,
            metrics_public=_bool(env, "RAF_METRICS_PUBLIC"),
            shutdown_grace_seconds=_int(
                env, "RAF_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds
            ),
            shutdown_drain_seconds=_int(
                env, "RAF_SHUTDOWN_DRAIN_SECONDS", cls.shutdown_drain_seconds
            ),
            warning_thresholds=warning_thresholds_from_env(env),
        )
