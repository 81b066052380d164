"""Small request helpers shared by the handlers."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from aiohttp import web

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
