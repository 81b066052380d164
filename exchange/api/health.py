"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web

from exchange.api.auth import allow, public
from exchange.api.keys import METRICS, POOL
from exchange.metrics import CONTENT_TYPE
from exchange.model import Role
from exchange.store.db import DATABASE_AWAY, PostgresError
from exchange.store.migrate import current_version, latest_version


@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up and answering."""
    return web.json_response({"status": "ok"})


@allow(Role.AUDITOR, Role.ADMIN)
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; scrape with an auditor or admin key as a bearer token."""
    async with request.app[POOL].acquire() as conn:
        body = await request.app[METRICS].render(conn)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@public
async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is at the version this code expects."""
    expected = latest_version()
    try:
        async with request.app[POOL].acquire(timeout=5) as conn:
            version = await current_version(conn)
    except (*DATABASE_AWAY, OSError, PostgresError) as exc:
        # Also while no host of a multi-host URL accepts writes (a standby not yet promoted).
        return _not_ready("database_unreachable", f"the database does not answer: {exc}")
    if version != expected:
        return _not_ready("schema_outdated", f"schema version {version}, expected {expected}")
    return web.json_response({"status": "ready", "schema_version": version})


def _not_ready(code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "details": []}}, status=503)
