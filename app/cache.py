"""Per-member result cache (bounded, least recently used out first, entries expire, thread-safe).

`docs/api.md` "cache": hits and misses are counted per member and
`cache_status` is "Cache hit" only when every member came from the cache.

Key = `app.service.member_key`: (payment_year, release_id, the member's eight
membership fields as sent, the member's diagnoses sorted, detail flag). A
member's answer depends on nothing else, so a cached answer is identical to a
fresh one. Exception: MemberIDs repeated within one request are judged
together by `ratype.normalize` (collapsed or rejected), so they bypass the
cache. A new reference release changes `release_id` and so every key.

cachetools' `LRUCache` holding (expiry time, answer), expiry checked on
read, rather than its `TTLCache`: a 10k-member request does 10k gets and 10k
puts, and TTLCache keeps a second linked list in time order and walks it on
every access (10k get + put + get with 300-byte keys: TTLCache ~50 ms, LRUCache
~11 ms). Entries are tuples of objects the cycle collector does not track
(`CachedMember` is a `gc=False` Struct), so 10k cached members add nothing to
each full collection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence

import msgspec
from cachetools import LRUCache

from app.wire import ErrorItem, ResultRow


class CachedMember(msgspec.Struct, frozen=True, gc=False):
    """Everything the response needs about one member (immutable: never part of a cycle)."""

    rows: tuple[ResultRow, ...]
    error: ErrorItem | None
    dx_counts: tuple[tuple[str, int], ...]  # (reason, count) for this member's diagnoses
    warnings: tuple[tuple[str, str], ...] = ()  # (code, message) counted in `warnings`


MemberKey = Hashable  # app.service.member_key: JSON bytes of the member's inputs


class MemberCache:
    """A bounded cache of `CachedMember`s that expire `ttl_seconds` after they are put;
    `maxsize` 0 turns caching off. Full: the least recently used entry goes first."""

    def __init__(
        self, maxsize: int, ttl_seconds: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.enabled = maxsize > 0
        self._ttl = ttl_seconds
        self._timer = timer
        self._entries: LRUCache[MemberKey, tuple[float, CachedMember]] = LRUCache(
            maxsize=max(maxsize, 1)
        )
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[MemberKey | None]) -> list[CachedMember | None]:
        """One lookup per key; None keys (not cacheable) and expired entries are misses."""
        if not self.enabled:
            return [None] * len(keys)
        answers: list[CachedMember | None] = []
        with self._lock:
            now = self._timer()
            entries = self._entries
            for key in keys:
                entry = None if key is None else entries.get(key)
                if entry is None:
                    answers.append(None)
                elif entry[0] <= now:
                    del entries[key]
                    answers.append(None)
                else:
                    answers.append(entry[1])  # the get made it most recently used
        return answers

    def put_many(self, items: Iterable[tuple[MemberKey, CachedMember]]) -> None:
        if not self.enabled:
            return
        with self._lock:
            expires = self._timer() + self._ttl
            entries = self._entries
            for key, value in items:
                entries[key] = (expires, value)  # full: the least recently used goes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entry_count(self) -> int:
        """Entries held, expired ones included until a read or `len` drops them: O(1), for
        the `raf_cache_entries` gauge after every request (`len` walks every entry)."""
        return len(self._entries)

    def __len__(self) -> int:
        """Entries not yet expired (expired ones are dropped here)."""
        with self._lock:
            now = self._timer()
            for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[key]
            return len(self._entries)
