"""Async helpers for end-to-end tests: real server processes, real HTTP, push receivers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from exchange import registry
from exchange.model import Role


class Server:
    """An ``exchange serve`` process started with asyncio; ``url`` once it listens."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, events: list[dict[str, Any]]) -> None:
        self.process = process
        self.url = url
        self.events = events
        self._waiters: list[tuple[Callable[[], bool], asyncio.Event]] = []
        self._drain = asyncio.create_task(self._read_rest())

    @classmethod
    async def start(cls, *args: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "exchange",
            "serve",
            "--port",
            "0",
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ),
        )
        assert process.stderr is not None
        events: list[dict[str, Any]] = []
        while line := await process.stderr.readline():
            event = _parse(line)
            events.append(event)
            if event.get("event") == "server.listening":
                return cls(process, str(event["url"]), events)
        raise AssertionError(f"server exited with {await process.wait()} before listening: {events}")

    async def _read_rest(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.events.append(_parse(line))
            _check(self._waiters)

    async def wait_for(self, condition: Callable[[], bool], within_s: float = 60) -> None:
        """Until ``condition`` holds about the events this server logged (at most ``within_s`` seconds)."""
        event = asyncio.Event()
        self._waiters.append((condition, event))
        _check(self._waiters)
        await asyncio.wait_for(event.wait(), within_s)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signum)
        code = await self.process.wait()
        await self._drain
        return code

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)


def _check(waiters: list[tuple[Callable[[], bool], asyncio.Event]]) -> None:
    for condition, event in waiters:
        if condition():
            event.set()


def _parse(line: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return {"event": "raw", "line": line.decode(errors="replace").rstrip()}
    return parsed if isinstance(parsed, dict) else {"event": "raw"}


class Receiver:
    """A DMS push endpoint: records every request; fails or holds requests as told."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []
        self.hold = asyncio.Event()
        self.hold.set()  # set: answer at once; clear: keep requests waiting
        self._waiters: list[tuple[Callable[[], bool], asyncio.Event]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"delivery_id": request.headers.get("X-Exchange-Delivery-Id"), "body": await request.read()}
        )
        self._check()
        failed = len(self.requests) <= self.failures
        await self.hold.wait()
        return web.Response(status=503 if failed else 204)

    def _check(self) -> None:
        for condition, event in self._waiters:
            if condition():
                event.set()

    async def wait_for(self, condition: Callable[[], bool], within_s: float = 60) -> None:
        """Until ``condition`` holds about the requests received (at most ``within_s`` seconds)."""
        event = asyncio.Event()
        self._waiters.append((condition, event))
        self._check()
        await asyncio.wait_for(event.wait(), within_s)

    def counts(self) -> Counter[str | None]:
        return Counter(r["delivery_id"] for r in self.requests)


class HashingEndpoint:
    """A push endpoint for large packages: hashes and counts each body as it arrives (holds none);
    ``received`` lists every push taken as (delivery id, SHA-256, size), in order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, int]] = []
        self._arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
        async with self._arrived:
            self.received.append(
                (request.headers.get("X-Exchange-Delivery-Id", ""), digest.hexdigest(), size)
            )
            self._arrived.notify_all()
        return web.Response(status=204)

    async def wait_for(self, delivery_id: str, within_s: float) -> tuple[str, int]:
        """The SHA-256 and size of the first push of ``delivery_id``, once it has arrived."""

        def first() -> tuple[str, int] | None:
            return next(((sha, size) for got, sha, size in self.received if got == delivery_id), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: first() is not None), within_s)
        found = first()
        assert found is not None
        return found


async def start_receiver(receiver: Receiver) -> tuple[web.AppRunner, str]:
    return await serve_post(receiver.handle)


async def serve_post(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], path: str = "/edoc"
) -> tuple[web.AppRunner, str]:
    """A local endpoint taking POSTs at ``path`` on a free port: its runner (to clean up) and URL."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(path, handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}{path}"


class Client:
    """A DMS talking to the axis with its API key."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self.session, self.base, self.headers = session, base, {"Authorization": f"Bearer {key}"}

    async def post_package(self, data: bytes) -> tuple[int, Any]:
        async with self.session.post(f"{self.base}/v1/packages", data=data, headers=self.headers) as response:
            return response.status, await response.json()

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.session.get(f"{self.base}{path}", headers=self.headers) as response:
            return response.status, await response.json()

    async def get_bytes(self, path: str) -> tuple[int, bytes]:
        async with self.session.get(f"{self.base}{path}", headers=self.headers) as response:
            return response.status, await response.read()

    async def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.session.post(f"{self.base}{path}", json=body, headers=self.headers) as response:
            return response.status, await response.json()


async def expire_leases(database_url: str) -> None:
    """What the passing of a killed server's lease time does: its claims can be taken up again."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE deliveries SET lease_until = now() - interval '1 second' WHERE state = 'sending'"
        )
    finally:
        await conn.close()


def write_config(path: Path, dev_pki: dict[str, Path], **delivery: Any) -> Path:
    """A TOML config with the test PKI's axis identity and fast delivery timings."""
    # The push receivers of the tests listen on 127.0.0.1, which only this setting allows.
    timings = {
        "base_delay_s": 0.2,
        "max_delay_s": 1.0,
        "sweep_interval_s": 0.3,
        # Longer than any push of a test takes, so no push in flight is claimed twice; a test
        # that kills a server and needs its claims back sets a short lease (and push timeout).
        "lease_s": 60.0,
        "allow_private_endpoints": True,
        **delivery,
    }
    lines = [
        "[trust]",
        f'axis_certificate = "{dev_pki["axis"]}"',
        f'axis_key = "{dev_pki["axis_key"]}"',
        "[delivery]",
        *(f"{key} = {json.dumps(value)}" for key, value in timings.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def register_each(
    database_url: str, agencies: list[dict[str, Any]], overseer: Role, vxp_secret: str | None = None
) -> dict[str, str]:
    """Each agency served by its own system ``dms-<OrganId>`` (VXP secret ``vxp_secret``), and one
    system of role ``overseer`` named after it: their API keys, by OrganId and by the role's name."""
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn, [registry.AgencyInput(values) for values in agencies], allow_private_endpoints=True
        )
        keys = {}
        for values in agencies:
            organ = values["organ_id"]
            keys[organ] = (
                await registry.add_system(conn, f"dms-{organ}", Role.SYSTEM, [organ], vxp_secret)
            ).api_key
        keys[overseer.value] = (await registry.add_system(conn, overseer.value, overseer)).api_key
        return keys
    finally:
        await conn.close()


async def register_two_departments(
    database_url: str, organ_ids: tuple[str, ...], finance_secret: str
) -> dict[str, str]:
    """Agencies ``organ_ids``; the first served by system so-noi-vu, the second by so-tai-chinh (VXP
    secret ``finance_secret``); an admin ops. Their API keys as dept, finance and admin."""
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn, [registry.AgencyInput({"organ_id": o, "name": o}) for o in organ_ids]
        )
        dept = await registry.add_system(conn, "so-noi-vu", Role.SYSTEM, [organ_ids[0]])
        finance = await registry.add_system(conn, "so-tai-chinh", Role.SYSTEM, [organ_ids[1]], finance_secret)
        admin = await registry.add_system(conn, "ops", Role.ADMIN)
        return {"dept": dept.api_key, "finance": finance.api_key, "admin": admin.api_key}
    finally:
        await conn.close()


async def fetch_value(database_url: str, query: str, *args: Any) -> Any:
    """One value from the test's database, read beside the server (to prove what was stored)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()
