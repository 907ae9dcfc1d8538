"""Per-member result cache (cachetools TTLCache, bounded, thread-safe).

`../shared/spec/api.md` "cache": hits and misses are counted per member and
`cache_status` is "Cache hit" only when every member came from the cache.

Key = (payment_year, release_id, the member's eight membership fields as sent,
the member's diagnoses sorted, detail flag). A member's answer depends on
nothing else, so a cached answer is identical to a fresh one. Exception:
MemberIDs repeated within one request are judged together by
`ratype.normalize` (collapsed or rejected), so they bypass the cache.
A new reference release changes `release_id` and so every key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from cachetools import TTLCache

from app.wire import ErrorItem, ResultRow


@dataclass(frozen=True)
class CachedMember:
    """Everything the response needs about one member."""

    rows: tuple[ResultRow, ...]
    error: ErrorItem | None
    dx_counts: tuple[tuple[str, int], ...]  # (reason, count) for this member's diagnoses


MemberKey = tuple[Hashable, ...]


class MemberCache:
    """A bounded TTL cache of `CachedMember`s; `maxsize` 0 turns caching off."""

    def __init__(
        self, maxsize: int, ttl_seconds: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.enabled = maxsize > 0
        self._cache: TTLCache[MemberKey, CachedMember] = TTLCache(
            maxsize=max(maxsize, 1), ttl=ttl_seconds, timer=timer
        )
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[MemberKey | None]) -> list[CachedMember | None]:
        """One lookup per key; None keys (not cacheable) are misses."""
        if not self.enabled:
            return [None] * len(keys)
        with self._lock:
            return [None if key is None else self._cache.get(key) for key in keys]

    def put_many(self, items: Iterable[tuple[MemberKey, CachedMember]]) -> None:
        if not self.enabled:
            return
        with self._lock:
            for key, value in items:
                self._cache[key] = value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)
