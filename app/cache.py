"""Per-member result cache (bounded, least recently used out first, entries expire, thread-safe).

`../shared/spec/api.md` "cache": hits and misses are counted per member and
`cache_status` is "Cache hit" only when every member came from the cache.

Key = `app.service.member_key`: (payment_year, release_id, the member's eight
membership fields as sent, the member's diagnoses sorted, detail flag). A
member's answer depends on nothing else, so a cached answer is identical to a
fresh one. Exception: MemberIDs repeated within one request are judged
together by `ratype.normalize` (collapsed or rejected), so they bypass the
cache. A new reference release changes `release_id` and so every key.

One `OrderedDict` of key -> (expiry time, answer) rather than cachetools'
TTLCache: a 10k-member request does 10k gets and 10k puts, and TTLCache spends
four dict lookups per get and a linked-list node per entry (10k gets + puts:
~45 ms vs ~8 ms here), and its 20k nodes plus 20k dataclass answers were
tracked by the cycle collector, which walks them on every full collection.
Entries here are tuples of untracked objects (`CachedMember` is `gc=False`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence

import msgspec

from app.wire import ErrorItem, ResultRow


class CachedMember(msgspec.Struct, frozen=True, gc=False):
    """Everything the response needs about one member (immutable: never part of a cycle)."""

    rows: tuple[ResultRow, ...]
    error: ErrorItem | None
    dx_counts: tuple[tuple[str, int], ...]  # (reason, count) for this member's diagnoses


MemberKey = Hashable  # app.service.member_key: JSON bytes of the member's inputs


class MemberCache:
    """A bounded cache of `CachedMember`s that expire `ttl_seconds` after they are put;
    `maxsize` 0 turns caching off. Full: the least recently used entry goes first."""

    def __init__(
        self, maxsize: int, ttl_seconds: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.enabled = maxsize > 0
        self._maxsize = maxsize
        self._ttl = ttl_seconds
        self._timer = timer
        self._entries: OrderedDict[MemberKey, tuple[float, CachedMember]] = OrderedDict()
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
                    entries.move_to_end(key)
                    answers.append(entry[1])
        return answers

    def put_many(self, items: Iterable[tuple[MemberKey, CachedMember]]) -> None:
        if not self.enabled:
            return
        with self._lock:
            expires = self._timer() + self._ttl
            entries = self._entries
            for key, value in items:
                entries[key] = (expires, value)
                entries.move_to_end(key)
            while len(entries) > self._maxsize:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Entries not yet expired (expired ones are dropped here)."""
        with self._lock:
            now = self._timer()
            for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[key]
            return len(self._entries)
