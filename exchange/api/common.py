"""Small request helpers shared by the handlers."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from aiohttp import web

from exchange import bounds
from exchange.errors import BadRequest, InvalidInput, NotFound


async def read_json(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def path_uuid(request: web.Request, name: str, what: str) -> UUID:
    raw = request.match_info[name]
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"no {what} {raw}") from None


def query_text(request: web.Request, name: str, most: int = bounds.QUERY_TEXT) -> str | None:
    """A text query parameter (absent or empty: None), refused when too long or holding a NUL."""
    raw = request.query.get(name)
    if not raw:
        return None
    bounds.check_text(name, raw, most)
    if "\x00" in raw:
        raise InvalidInput(f"{name} must not contain a NUL character")
    return raw


def query_int(request: web.Request, name: str, *, default: int, most: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number") from None
    if not 1 <= value <= most:
        raise InvalidInput(f"{name} must be between 1 and {most}")
    return value
