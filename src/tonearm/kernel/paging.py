"""Spotify's paging object: `{href, items, limit, next, offset, previous, total}`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tonearm.kernel.errors import BadRequest


def check_window(limit: int, offset: int, *, max_limit: int = 50) -> None:
    if not 1 <= limit <= max_limit:
        raise BadRequest(f"limit: must be between 1 and {max_limit}")
    if offset < 0:
        raise BadRequest("offset: must not be negative")
    if offset > 100_000:
        raise BadRequest("offset: must be at most 100000")


def page(
    base_href: str, items: list[Any], *, limit: int, offset: int, total: int, **params: Any
) -> dict[str, Any]:
    extra = {k: v for k, v in params.items() if v is not None}

    def href(off: int) -> str:
        return f"{base_href}?{urlencode({**extra, 'offset': off, 'limit': limit})}"

    return {
        "href": href(offset),
        "items": items,
        "limit": limit,
        "next": href(offset + limit) if offset + limit < total else None,
        "offset": offset,
        "previous": href(max(0, offset - limit)) if offset > 0 else None,
        "total": total,
    }
