"""Fuzzing the HTTP intake and the VXP facade of a real server: never a 5xx, nothing stored when refused."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import registry
from exchange.edxml.builder import build_edoc
from exchange.model import Role
from tests.conftest import new_database, run_sync
from tests.e2e.conftest import running_server
from tests.edxml_factories import small_edoc

SENDER, RECIPIENT = "000.00.00.H26", "000.00.01.H26"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass(frozen=True)
class Live:
    url: str
    database_url: str
    key: str


@pytest.fixture(scope="module")
def live(cluster_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    database_url = new_database(cluster_url, f"fuzz_{os.getpid()}")

    async def prepare() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            await registry.add_agencies(
                conn,
                [
                    registry.AgencyInput({"organ_id": SENDER, "name": "Sender"}),
                    registry.AgencyInput({"organ_id": RECIPIENT, "name": "Recipient"}),
                ],
            )
            return (await registry.add_system(conn, "fuzzer", Role.SYSTEM, [SENDER], "fuzz-secret")).api_key
        finally:
            await conn.close()

    key = run_sync(prepare)
    args = ["--database-url", database_url, "--data-dir", str(tmp_path_factory.mktemp("fuzz"))]
    with running_server(args) as server:
        yield Live(server.url, database_url, key)
        server.stop()


def messages(live: Live) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(live.database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM messages"))
        finally:
            await conn.close()

    return run_sync(count)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


SEED = build_edoc(small_edoc(sender=SENDER, recipients=(RECIPIENT,)))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 50))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=30))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(body=st.one_of(st.binary(max_size=3000), mutated()))
def test_intake_never_fails_and_stores_nothing_it_refuses(live: Live, body: bytes) -> None:
    before = messages(live)
    status = post(f"{live.url}/v1/packages", body, {"Authorization": f"Bearer {live.key}"})
    assert status < 500
    if status >= 400:
        assert messages(live) == before


header_names = st.sampled_from(
    [
        "systemid",
        "sign-header",
        "hash-header",
        "timestamp",
        "docId",
        "from",
        "messagetype",
        "hash-file",
        "Content-Type",
        "to",
        "status",
    ]
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@FUZZ
@given(
    operation=st.sampled_from(
        ["sendEdoc", "getReceivedEdocList", "getEdoc", "updateStatus", "deleteAgency", "registerAgency"]
    ),
    headers=st.dictionaries(header_names, header_values, max_size=8),
    body=st.binary(max_size=500),
)
def test_vxp_facade_never_fails_with_random_headers(
    live: Live, operation: str, headers: dict[str, str], body: bytes
) -> None:
    before = messages(live)
    status = post(f"{live.url}/{operation}", body, {f"XroadVnpt-{k}": v for k, v in headers.items()})
    assert status < 500
    assert messages(live) == before
