"""app.cache.MemberCache: bounded, expiring, thread-safe, switchable off."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from app.cache import CachedMember, MemberCache
from app.wire import ErrorItem

ANSWER = CachedMember(rows=(), error=ErrorItem(field="Gender", message="x", MemberID="A"),
                      dx_counts=(("used", 1),))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache = MemberCache(10, ttl_seconds=60, timer=clock)
    cache.put_many([(("k",), ANSWER)])
    clock.now = 59
    assert cache.get_many([("k",)]) == [ANSWER]
    clock.now = 61
    assert cache.get_many([("k",)]) == [None]


def test_size_is_bounded() -> None:
    cache = MemberCache(3, ttl_seconds=60)
    cache.put_many([((i,), ANSWER) for i in range(10)])
    assert len(cache) == 3
    assert cache.get_many([(9,)]) == [ANSWER]


def test_a_full_cache_drops_the_least_recently_used_entry() -> None:
    cache = MemberCache(2, ttl_seconds=60)
    cache.put_many([((1,), ANSWER), ((2,), ANSWER)])
    assert cache.get_many([(1,)]) == [ANSWER]  # 1 is now more recent than 2
    cache.put_many([((3,), ANSWER)])
    assert cache.get_many([(1,), (2,), (3,)]) == [ANSWER, None, ANSWER]


def test_none_keys_and_size_zero_are_misses() -> None:
    cache = MemberCache(10, ttl_seconds=60)
    cache.put_many([(("k",), ANSWER)])
    assert cache.get_many([None, ("k",)]) == [None, ANSWER]
    off = MemberCache(0, ttl_seconds=60)
    off.put_many([(("k",), ANSWER)])
    assert off.get_many([("k",)]) == [None] and len(off) == 0


def test_concurrent_use_is_safe() -> None:
    cache = MemberCache(500, ttl_seconds=60)

    def work(worker: int) -> int:
        for i in range(300):
            cache.put_many([((worker, i), ANSWER)])
            cache.get_many([(worker, i - 1), (worker - 1, i)])
        return len(cache)

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(work, range(8)))
    assert max(sizes) <= 500 and len(cache) == 500
