"""Bounded resources, against a real server process: what one client may cost, and the answers.

Connections that stall are closed, a system over its limits gets 429 with Retry-After, the
axis full of bytes answers 503, hostile bodies are refused before they are read, and
meanwhile /healthz and honest clients are served. Nothing refused is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yarl

from adapters.vxp_client import VxpClient
from exchange import registry
from exchange.edxml.builder import build_edoc
from exchange.model import Role
from tests.e2e.harness import Client, Server, write_config
from tests.edxml_factories import small_edoc

HONEST, FLOODER, CENTRAL = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22"
VXP_SECRET = "flood-secret"


async def register(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn,
            [
                registry.AgencyInput({"organ_id": o, "name": f"Đơn vị {o}"})
                for o in (HONEST, FLOODER, CENTRAL)
            ],
        )
        keys = {
            "honest": (await registry.add_system(conn, "honest", Role.SYSTEM, [HONEST])).api_key,
            "flooder": (
                await registry.add_system(conn, "flooder", Role.SYSTEM, [FLOODER], VXP_SECRET)
            ).api_key,
            "central": (await registry.add_system(conn, "central", Role.SYSTEM, [CENTRAL])).api_key,
        }
        return keys
    finally:
        await conn.close()


async def messages_from(database_url: str, sender: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM messages WHERE sender = $1", sender))
    finally:
        await conn.close()


def package(sender: str, number: int, body: bytes = b"%PDF-1.7 test") -> bytes:
    return build_edoc(
        small_edoc(
            sender=sender, recipients=(CENTRAL,), document_id=f"{sender},2026/11/20,{number}/TEST", body=body
        )
    )


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, dev_pki: dict[str, Path], database_url: str, limits: str
) -> AsyncIterator[Server]:
    """A server with ``limits`` added to the test configuration, stopped afterwards."""
    config = write_config(tmp_path / "exchange.toml", dev_pki)
    config.write_text(config.read_text() + limits)
    server = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        yield server
    finally:
        await server.stop()


def address(server: Server) -> tuple[str, int]:
    url = yarl.URL(server.url)
    assert url.host is not None
    assert url.port is not None
    return url.host, url.port


async def closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bytes:
    """Everything the server sent until it closed the connection (fails if it does not, in time)."""
    return await asyncio.wait_for(reader.read(), within_s)


async def until(condition: Callable[[], bool], within_s: float = 10) -> None:
    """Poll ``condition`` (about log lines read from the server's stderr) until it holds."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 (the harness appends lines; it offers nothing to await)
            await asyncio.sleep(0.05)


async def test_stalled_connections_are_closed_while_health_and_honest_requests_are_served(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await register(database_url)
    async with running(
        tmp_path,
        dev_pki,
        database_url,
        "[limits]\nheader_timeout_s = 1.0\nbody_timeout_s = 1.0\nmin_body_rate_bytes_per_s = 1000\n"
        "max_connections_per_address = 20\n",
    ) as server:
        host, port = address(server)
        opened: list[asyncio.StreamWriter] = []
        try:

            async def connect(source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
                reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
                opened.append(writer)
                return reader, writer

            # An attacker at 127.0.0.2: idle connections, and half-sent headers.
            idle = [await connect("127.0.0.2") for _ in range(10)]
            partial = [await connect("127.0.0.2") for _ in range(10)]
            for _, writer in partial:
                writer.write(b"GET /v1/agencies HTTP/1.1\r\nHost: x\r\n")
                await writer.drain()
            # A slow body: honest headers, then a trickle far below the minimum rate.
            slow_reader, slow_writer = await connect("127.0.0.3")
            slow_writer.write(
                b"POST /v1/packages HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                + f"Authorization: Bearer {keys['flooder']}\r\n\r\n".encode()
                + b"<?xml"
            )
            await slow_writer.drain()

            # Meanwhile, from 127.0.0.1: health and an honest submission are served.
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{server.url}/healthz") as response:
                    assert response.status == 200
                honest = Client(session, server.url, keys["honest"])
                status, accepted = await honest.post_package(package(HONEST, 1))
                assert status == 201, accepted

            # Every stalled connection is closed by the server, without an answer.
            for reader, _ in [*idle, *partial]:
                assert await closed_by_server(reader, within_s=5) == b""
            assert await closed_by_server(slow_reader, within_s=6) == b""
            assert await messages_from(database_url, FLOODER) == 0
            assert await messages_from(database_url, HONEST) == 1
        finally:
            for writer in opened:
                writer.close()


async def test_past_the_per_address_cap_only_health_is_served(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await register(database_url)
    async with running(
        tmp_path, dev_pki, database_url, "[limits]\nmax_connections_per_address = 5\n"
    ) as server:
        host, port = address(server)
        held = []
        try:
            for _ in range(5):
                held.append((await asyncio.open_connection(host, port, local_addr=("127.0.0.4", 0)))[1])

            async def ask(path: str) -> tuple[bytes, asyncio.StreamReader]:
                reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.4", 0))
                held.append(writer)
                headers = f"Host: x\r\nAuthorization: Bearer {keys['honest']}\r\n"
                writer.write(f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode())
                return await reader.readuntil(b"\r\n\r\n"), reader

            head, _ = await ask("/healthz")
            assert head.startswith(b"HTTP/1.1 200")
            head, reader = await ask("/v1/agencies")
            assert head.startswith(b"HTTP/1.1 429")
            assert b"Retry-After: 1" in head
            body = await closed_by_server(reader, within_s=5)  # the answer, then the connection ends
            assert json.loads(body)["error"]["code"] == "too_many_connections"

            # Another address is not affected.
            async with aiohttp.ClientSession() as session:
                status, _ = await Client(session, server.url, keys["honest"]).get_json("/v1/agencies")
                assert status == 200
        finally:
            for writer in held:
                writer.close()


async def test_a_flooding_system_gets_429_and_the_honest_one_gets_through(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await register(database_url)
    async with running(
        tmp_path,
        dev_pki,
        database_url,
        "[limits.systems.flooder]\nmax_in_flight = 2\nrate_per_s = 0.01\nburst = 4\n",
    ) as server:
        async with aiohttp.ClientSession() as session:
            flooder = Client(session, server.url, keys["flooder"])
            honest = Client(session, server.url, keys["honest"])
            flood = [flooder.post_package(package(FLOODER, n)) for n in range(30)]
            fair = [honest.post_package(package(HONEST, n)) for n in range(8)]
            answers = await asyncio.gather(*flood, *fair)
            flooded, served = answers[:30], answers[30:]

            assert [status for status, _ in served] == [201] * 8
            refused = [body for status, body in flooded if status == 429]
            accepted = [body for status, body in flooded if status == 201]
            assert len(refused) >= 20
            assert len(refused) + len(accepted) == 30
            assert {body["error"]["code"] for body in refused} == {"too_many_requests"}
            # Past its in-flight limit above; now past its rate: the bucket holds 4 at most.
            for number in range(100, 106):
                async with session.post(
                    f"{server.url}/v1/packages", data=package(FLOODER, number), headers=flooder.headers
                ) as response:
                    if response.status == 201:
                        accepted.append(await response.json())
                        continue
                    assert response.status == 429
                    assert int(response.headers["Retry-After"]) >= 50  # one request per 100 s
                    break
            else:
                raise AssertionError("the flooder was never refused for its rate")

            # The VXP facade answers the same limit in its own shape.
            vxp = VxpClient(session, server.url, "flooder", VXP_SECRET)
            vxp_answers = [
                await vxp.call("getReceivedEdocList", {"servicetype": "eDoc", "messagetype": "edoc"})
                for _ in range(6)
            ]
            assert {"status": "FAIL", "ErrorCode": "429"}.items() <= vxp_answers[-1].items()
        assert await messages_from(database_url, FLOODER) == len(accepted)
        assert await messages_from(database_url, HONEST) == 8


async def test_intake_holds_a_bounded_number_of_bytes(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    """One system holds most of the budget with a body it does not finish: the others wait, then 503."""
    keys = await register(database_url)
    async with running(
        tmp_path,
        dev_pki,
        database_url,
        "[limits]\nintake_max_bytes = 1000000\nintake_max_bytes_per_system = 950000\n"
        "intake_wait_s = 0.5\nbody_timeout_s = 60.0\n",
    ) as server:
        host, port = address(server)
        _, holder = await asyncio.open_connection(host, port)
        holder.write(
            b"POST /v1/packages HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n"
            + f"Authorization: Bearer {keys['flooder']}\r\n\r\n".encode()
            + b"<?xml version='1.0'?>"
        )
        await holder.drain()
        medium = package(HONEST, 1, body=b"%PDF" * 60_000)  # ~320 KB
        async with aiohttp.ClientSession() as session:
            honest = Client(session, server.url, keys["honest"])
            flooder = Client(session, server.url, keys["flooder"])
            async with session.get(f"{server.url}/healthz") as response:
                assert response.status == 200

            # The holder's share is taken once the server has read its headers: a flooder package
            # (schema-invalid, so never stored) is 422 until then, 429 (past its share) after.
            invalid = package(FLOODER, 2, body=b"%PDF" * 60_000).replace(
                b"<edXML:Code>", b"<edXML:X/><edXML:Code>"
            )
            while (answer := await flooder.post_package(invalid))[0] == 422:
                pass
            assert (answer[0], answer[1]["error"]["code"]) == (429, "too_many_requests")

            async with session.post(
                f"{server.url}/v1/packages", data=medium, headers=honest.headers
            ) as response:
                assert response.status == 503  # waited intake_wait_s for room in vain
                assert (await response.json())["error"]["code"] == "busy"
                assert int(response.headers["Retry-After"]) >= 1
            small_status, _ = await honest.post_package(package(HONEST, 3))
            assert small_status == 201  # small bodies never wait for the budget

            holder.close()  # the held bytes are given back
            status, accepted = await honest.post_package(medium)
            assert status == 201, accepted
        assert await messages_from(database_url, FLOODER) == 0
        assert await messages_from(database_url, HONEST) == 2


async def test_an_element_bomb_is_refused_before_its_body_is_held(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    keys = await register(database_url)
    async with running(tmp_path, dev_pki, database_url, "") as server:
        before = peak_rss_kib(server.process.pid)
        piece = b"<a/>" * 16_384
        prefix = b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'

        async def bomb() -> Any:
            yield prefix
            for _ in range(48 * 1024 * 1024 // len(piece)):
                yield piece

        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{server.url}/v1/packages",
                data=bomb(),
                headers={"Authorization": f"Bearer {keys['flooder']}"},
            ) as response:
                assert response.status == 400
                refused = await response.json()
            assert refused["error"]["code"] == "hostile_xml"
            assert "elements" in refused["error"]["message"]

            # A large schema-invalid package: 422 with a readable place and reason.
            large = package(HONEST, 7, body=b"%PDF" * 1_500_000).replace(
                b"<edXML:Code>", b"<edXML:Surprise/><edXML:Code>", 1
            )
            async with session.post(
                f"{server.url}/v1/packages",
                data=io.BytesIO(large),
                headers={"Authorization": f"Bearer {keys['honest']}"},
            ) as response:
                status, invalid = response.status, await response.json()
            assert (status, invalid["error"]["code"]) == (422, "schema_invalid")
            [problem] = invalid["error"]["details"]
            assert problem["path"] == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Surprise"
            assert problem["line"] > 0
            assert "Surprise" in problem["reason"]
        # 48 MB sent; the server held only what the parser read before the limit.
        assert peak_rss_kib(server.process.pid) - before < 64 * 1024
        assert await messages_from(database_url, FLOODER) == 0
        assert await messages_from(database_url, HONEST) == 0


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


async def test_the_log_is_not_a_weapon(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> None:
    """Idle: nothing at info. Malformed requests: one info line each, rate-limited, no traceback."""
    await register(database_url)
    async with running(tmp_path, dev_pki, database_url, "[audit]\nseal_interval_s = 0.5\n") as server:
        host, port = address(server)
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as response:
            assert response.status == 200
        await until(lambda: any(e.get("path") == "/healthz" for e in server.events))
        quiet_from = len(server.events)
        # The idle period observed: 6 rounds of the audit sealer (each far shorter than its
        # interval) and a sweep of every connection.
        await asyncio.sleep(3)
        assert server.events[quiet_from:] == []

        for _ in range(30):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n")
            try:
                answer = await closed_by_server(reader, within_s=5)
            finally:
                writer.close()
            assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.url}/healthz?marker") as response,
        ):
            assert response.status == 200
        await until(lambda: sum(e.get("path") == "/healthz" for e in server.events) == 2)
        written = server.events[quiet_from:]
        malformed = [e for e in written if e.get("event") == "http.malformed"]
        assert 1 <= len(malformed) <= 10  # 30 requests; the rest are counted, not written
        assert all(e["level"] == "info" and "exception" not in e for e in malformed)
        assert [e for e in written if e.get("level") in ("error", "critical")] == []
        assert {e.get("event") for e in written} <= {"http.malformed", "http.request"}
