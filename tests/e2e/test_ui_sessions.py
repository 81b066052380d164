"""The auditor page's sessions, headers and login brake against a real server process."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.world import World, open_world

UI_CONFIG = ("[ui]", "max_failed_logins = 3", "failed_login_window_s = 600.0", "secure_cookie = true")


@pytest.fixture
async def world(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> AsyncIterator[World]:
    async with open_world(tmp_path, database_url, dev_pki, config_lines=UI_CONFIG) as opened:
        yield opened


async def sql(world: World, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(world.database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def login(world: World, key: str) -> tuple[int, aiohttp.ClientResponse, str]:
    async with world.session.post(
        f"{world.server.url}/ui/login", data={"key": key}, allow_redirects=False
    ) as response:
        return response.status, response, await response.text()


async def page(world: World, cookie: str, path: str = "/ui/") -> aiohttp.ClientResponse:
    async with world.session.get(
        f"{world.server.url}{path}", headers={"Cookie": f"exchange_ui={cookie}"}, allow_redirects=False
    ) as response:
        await response.read()
        return response


async def logged_in(world: World, who: str = "auditor") -> str:
    status, response, _ = await login(world, world.keys[who])
    assert status == 303
    cookie = SimpleCookie(response.headers["Set-Cookie"])["exchange_ui"]
    return cookie.value


async def test_the_cookie_holds_a_session_not_the_key(world: World) -> None:
    key = world.keys["auditor"]
    status, response, _ = await login(world, key)
    assert status == 303
    morsel = SimpleCookie(response.headers["Set-Cookie"])["exchange_ui"]
    assert key not in response.headers["Set-Cookie"]
    assert morsel.value != key
    assert morsel["httponly"]
    assert morsel["secure"]  # ui.secure_cookie: TLS ends at a proxy in front
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/ui"
    assert int(morsel["max-age"]) == 8 * 3600
    [row] = await sql(world, "SELECT id_hash, expires_at > now() AS live FROM ui_sessions")
    assert bytes(row["id_hash"]) == hashlib.sha256(morsel.value.encode()).digest()
    assert row["live"]
    assert (await page(world, morsel.value)).status == 200
    # The old scheme, the raw key in the cookie, opens nothing any more.
    assert (await page(world, key)).status == 401


async def test_logout_revokes_the_session_on_the_server(world: World) -> None:
    cookie = await logged_in(world)
    async with world.session.post(
        f"{world.server.url}/ui/logout", headers={"Cookie": f"exchange_ui={cookie}"}, allow_redirects=False
    ) as response:
        assert response.status == 303
        assert 'exchange_ui=""' in response.headers["Set-Cookie"]
    copied = await page(world, cookie)  # a copy of the cookie kept after logout
    assert copied.status == 401
    [row] = await sql(world, "SELECT revoked_at IS NOT NULL AS revoked FROM ui_sessions")
    assert row["revoked"]


async def test_rotating_the_key_ends_its_sessions(world: World) -> None:
    cookie = await logged_in(world)
    other = await logged_in(world, "admin")
    status, rotated = await world.client("admin").post_json("/v1/admin/systems/auditor/rotate-key", {})
    assert status == 200, rotated
    assert (await page(world, cookie)).status == 401
    assert (await page(world, other)).status == 200  # the admin's key was not rotated
    status, _, _ = await login(world, rotated["api_key"])
    assert status == 303


async def test_an_expired_session_opens_nothing(world: World) -> None:
    cookie = await logged_in(world)
    # Only the expiry is past: the session began after the key's last rotation.
    await sql(world, "UPDATE systems SET key_rotated_at = now() - interval '10 hours'")
    await sql(world, "UPDATE ui_sessions SET created_at = now() - interval '9 hours'")
    assert (await page(world, cookie)).status == 200
    await sql(world, "UPDATE ui_sessions SET expires_at = now() - interval '1 second'")
    response = await page(world, cookie)
    assert response.status == 401


async def test_pages_carry_security_headers(world: World) -> None:
    cookie = await logged_in(world)
    for path in ("/ui/", "/ui/operations", "/ui/login"):
        response = await page(world, cookie, path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert "script-src" not in policy  # no scripts at all: default-src 'none' covers them
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


async def test_failed_logins_are_throttled_per_address(world: World) -> None:
    for _ in range(3):
        status, _, _ = await login(world, "exk_not-a-key")
        assert status == 401
    status, response, _ = await login(world, "exk_not-a-key")
    assert status == 429
    assert 0 < int(response.headers["Retry-After"]) <= 600
    # Even the right key waits: nothing is checked, no session is opened.
    status, response, _ = await login(world, world.keys["auditor"])
    assert status == 429
    assert "Set-Cookie" not in response.headers
    assert await sql(world, "SELECT 1 FROM ui_sessions") == []
    # The API is not the login form: keys keep working there.
    assert (await world.client("auditor").get_json("/v1/documents"))[0] == 200
