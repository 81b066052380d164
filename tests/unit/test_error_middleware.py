"""The database going away mid-request is a retryable 503, not an internal error."""

from __future__ import annotations

import socket

import asyncpg
from aiohttp import web

from exchange.api.errors import error_middleware


async def test_unreachable_database_answers_503_with_retry_after(aiohttp_client) -> None:
    # Bound but not listening for the whole test: connections are refused, and no other
    # socket can take the port meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

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
