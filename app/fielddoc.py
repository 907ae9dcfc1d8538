"""`doc(...)`: a wire field's documentation for the OpenAPI document (`app.openapi`).

Kept apart from `app.wire` so any module with wire Structs (`app.summary`,
`app.jobs`, ...) can use it without importing the request and response types.
"""

from __future__ import annotations

from typing import Any

from msgspec import Meta

_NO_EXAMPLE = object()


def doc(description: str, example: Any = _NO_EXAMPLE, **schema: Any) -> Meta:
    """Description, example and OpenAPI-only keywords (`enum`, `format`, ...), which
    Litestar copies into the schema and msgspec does not enforce: decoding stays as lax
    as the contract (a bad member value is a member error, not a 400)."""
    return Meta(
        description=description,
        examples=None if example is _NO_EXAMPLE else [example],
        extra_json_schema={"extra": schema} if schema else None,
    )
