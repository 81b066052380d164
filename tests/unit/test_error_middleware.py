"""The database going away mid-request is a retryable 503, not an internal error."""

from __future__ import annotations

import socket

import asyncpg
from aiohttp import web

from exchange.api.errors import error_middleware


def _closed_port() -> int:
    # Bind then release: nothing listens there for the moment the test needs.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_unreachable_database_answers_503_with_retry_after(aiohttp_client) -> None:
    port = _closed_port()

    async def handler(request: web.Request) -> web.Response:
        await asyncpg.connect(f"postgresql://nobody@127.0.0.1:{port}/none", timeout=2)
        return web.Response(text="unreachable")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", handler)
    client = await aiohttp_client(app)

    response = await client.get("/x")

    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    body = await response.json()
    assert body["error"]["code"] == "database_unavailable"
