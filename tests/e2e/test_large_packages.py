"""Large packages against a real server: received as a stream, stored in chunks, pushed and
downloaded byte for byte; over the limit, refused with 413 before the body is read."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import yarl

from adapters.vxp_client import VxpClient
from exchange import registry
from exchange.clock import VIETNAM
from exchange.edxml.builder import build_edoc
from exchange.edxml.trace import append_trace_header
from exchange.model import Role
from tests.e2e.harness import HashingEndpoint, Server, serve_post, write_config
from tests.edxml_factories import small_edoc

DEPT, FINANCE, BUILDING = "000.00.01.H26", "000.00.02.H26", "000.00.03.H26"
MiB = 1024 * 1024
LIMIT = 32 * MiB
TABLES = ("messages", "message_bodies", "message_body_chunks", "deliveries")


class InMemory:
    """Bytes in the shape VxpClient streams (a StreamedBody)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), MiB):
            yield self.data[start : start + MiB]

    async def sha256(self) -> bytes:
        return hashlib.sha256(self.data).digest()


async def setup(database_url: str, push_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn,
            [
                registry.AgencyInput({"organ_id": DEPT, "name": "Sở Nội vụ"}),
                registry.AgencyInput({"organ_id": FINANCE, "name": "Sở Tài chính"}),
                registry.AgencyInput(
                    {"organ_id": BUILDING, "name": "Sở Xây dựng", "mode": "push", "endpoint": push_url}
                ),
            ],
            allow_private_endpoints=True,  # the test's push endpoint listens on loopback
        )
        keys = {}
        for name, organ in (("dept", DEPT), ("finance", FINANCE), ("building", BUILDING)):
            keys[name] = (
                await registry.add_system(conn, name, Role.SYSTEM, [organ], f"secret-{name}")
            ).api_key
        return keys
    finally:
        await conn.close()


async def counts(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in TABLES}
    finally:
        await conn.close()


def large_package(size: int, document: str) -> bytes:
    """An unsigned edoc of about ``size`` bytes (one attachment), for FINANCE (pull) and BUILDING (push)."""
    attachment = bytes(range(256)) * (size * 3 // 4 // 256)
    edoc = small_edoc(sender=DEPT, recipients=(FINANCE, BUILDING), document_id=document, body=attachment)
    return build_edoc(edoc)


async def start(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> Server:
    config = write_config(tmp_path / "exchange.toml", dev_pki)
    config.write_text(config.read_text() + f"[limits]\nmax_package_bytes = {LIMIT}\n")
    return await Server.start("--config", str(config), "--database-url", database_url)


async def test_a_large_package_is_accepted_pushed_and_downloaded_byte_for_byte(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    endpoint = HashingEndpoint()
    runner, push_url = await serve_post(endpoint.handle)
    keys = await setup(database_url, push_url)
    package = large_package(24 * MiB, f"{DEPT},2026/11/30,1/LARGE")
    assert 24 * MiB < len(package) < LIMIT
    server = await start(tmp_path, database_url, dev_pki)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            async with session.post(
                f"{server.url}/v1/packages",
                data=io.BytesIO(package),
                headers={"Authorization": f"Bearer {keys['dept']}"},
            ) as response:
                answer = await response.json()
                assert response.status == 201, answer
            assert answer["sha256"] == hashlib.sha256(package).hexdigest()
            # What each recipient must get: the original bytes and the axis's TraceHeader, nothing else.
            hop = datetime.fromisoformat(answer["received_at"]).astimezone(VIETNAM).replace(tzinfo=None)
            expected = append_trace_header(package, None, hop)
            wanted = hashlib.sha256(expected).hexdigest()
            deliveries = {d["recipient"]: d["delivery_id"] for d in answer["deliveries"]}

            stored = await counts(database_url)
            assert stored["message_body_chunks"] == -(-len(package) // MiB)  # 1 MiB chunks

            headers = {"Authorization": f"Bearer {keys['finance']}"}
            url = f"{server.url}/v1/deliveries/{deliveries[FINANCE]}/package"
            async with session.get(url, headers=headers) as response:
                assert response.status == 200
                assert response.content_length == len(expected)
                downloaded = await response.read()
            assert hashlib.sha256(downloaded).hexdigest() == wanted

            finance = VxpClient(session, server.url, "finance", "secret-finance")
            status, by_vxp = await finance.download_edoc({"docId": deliveries[FINANCE]})
            assert status == 200
            assert by_vxp == expected
            got = await finance.call("getEdoc", {"docId": deliveries[FINANCE]})
            assert got["status"] == "OK"
            assert base64.b64decode(got["data"]) == expected

            await endpoint.wait_for(deliveries[BUILDING], 120)
            assert endpoint.received == [(deliveries[BUILDING], wanted, len(expected))]

            # A recipient that goes away in the middle of a download is no failure of the server.
            async with session.get(url, headers=headers) as response:
                assert len(await response.content.readexactly(MiB)) == MiB
                response.close()
    finally:
        await server.stop()  # finishes the requests in flight and reads the rest of its log
        await runner.cleanup()
    events = [event.get("event") for event in server.events]
    assert "http.client_gone" in events
    assert "request.failed" not in events


async def raw_request(url: str, head: str, body: bytes = b"") -> bytes:
    """Send ``head`` and ``body`` (no more: a body left unfinished) and read the answer's first bytes.
    A server that waited for the rest of the body would never answer (the wait times out)."""
    target = yarl.URL(url)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 60)
    finally:
        writer.close()


async def test_over_the_limit_is_refused_with_413_before_the_body_is_read_and_nothing_is_stored(
    tmp_path: Path, database_url: str, dev_pki: dict[str, Path]
) -> None:
    endpoint = HashingEndpoint()
    runner, push_url = await serve_post(endpoint.handle)
    keys = await setup(database_url, push_url)
    server = await start(tmp_path, database_url, dev_pki)
    auth = f"Authorization: Bearer {keys['dept']}\r\n"
    try:
        # Content-Length over the limit: answered at once, while not one byte of the body was sent.
        head = f"POST /v1/packages HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {LIMIT + 1}\r\n\r\n"
        answer = await raw_request(server.url, head)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert b'"code": "too_large"' in answer

        # The same, asking for 100 Continue: refused instead of invited to send.
        expect = head.replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n")
        answer = await raw_request(server.url, expect)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert b"100 Continue" not in answer

        # Chunked: counted as it comes. The client sends a little more than the limit and never ends
        # the body: the answer comes all the same.
        chunked = f"POST /v1/packages HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
        piece = f"{MiB:x}\r\n".encode() + b"<" * MiB + b"\r\n"
        answer = await raw_request(server.url, chunked, piece * (LIMIT // MiB + 1))
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        assert b'"code": "too_large"' in answer

        # VXP sendEdoc: the SDK asks for 100 Continue; the refusal is in VXP terms.
        async with aiohttp.ClientSession() as session:
            dept = VxpClient(session, server.url, "dept", "secret-dept")
            refused = await dept.send_edoc(
                {"from": DEPT, "servicetype": "eDoc", "messagetype": "edoc"}, InMemory(b"<" * (LIMIT + 1))
            )
            assert (refused["status"], refused["ErrorCode"]) == ("FAIL", "413"), refused

            # An honest package at the same time is accepted.
            small = large_package(64 * 1024, f"{DEPT},2026/11/30,2/SMALL")
            async with session.post(
                f"{server.url}/v1/packages", data=small, headers={"Authorization": f"Bearer {keys['dept']}"}
            ) as response:
                assert response.status == 201
    finally:
        await server.stop()
        await runner.cleanup()
    stored = await counts(database_url)
    assert stored == {"messages": 1, "message_bodies": 1, "message_body_chunks": 1, "deliveries": 2}
