"""Derived reference frames computed once per source object, not per call.

The engine's stages derive small frames from the reference tables (parsed cell
names, the coefficient table with buckets and display order, the mapping with
its payment flag, hierarchy pairs ...). They depend only on the reference
frames, which a ``ReferenceStore`` loads once per process, so they are built on
first use and kept while the source object lives (a weak reference: a dropped
table takes its derived frames with it). An object that cannot be weakly
referenced is simply not cached.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_CACHE: dict[tuple[int, str], tuple[weakref.ref, Any]] = {}


def derived(source: object, key: str, build: Callable[[], T]) -> T:
    """``build()`` once per (``source`` object, ``key``); cached while ``source`` lives."""
    ident = (id(source), key)
    hit = _CACHE.get(ident)
    if hit is not None and hit[0]() is source:
        return hit[1]
    value = build()
    try:
        # the callback holds the dict itself: module globals are gone at interpreter exit
        ref = weakref.ref(source, lambda _ref, ident=ident, cache=_CACHE: cache.pop(ident, None))
    except TypeError:
        return value
    _CACHE[ident] = (ref, value)
    return value
