"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web

from exchange.api.auth import public
from exchange.api.keys import POOL
from exchange.store.db import PostgresError
from exchange.store.migrate import current_version, latest_version


@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up and answering."""
    return web.json_response({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is at the version this code expects."""
    expected = latest_version()
    try:
        async with request.app[POOL].acquire(timeout=5) as conn:
            version = await current_version(conn)
    except (OSError, PostgresError, TimeoutError) as exc:
        return _not_ready("database_unreachable", f"the database does not answer: {exc}")
    if version != expected:
        return _not_ready("schema_outdated", f"schema version {version}, expected {expected}")
    return web.json_response({"status": "ready", "schema_version": version})


def _not_ready(code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "details": []}}, status=503)
