"""A small registry behind a real server process, for end-to-end tests of who may do and see what."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from exchange import registry
from exchange.model import Role
from tests.e2e.harness import Client, Server, write_config

DEPT, FINANCE, CENTRAL, OTHER = "000.00.01.H26", "000.00.02.H26", "000.00.00.G22", "000.00.03.H26"


@dataclass
class World:
    """Four agencies with a system each (``dms-<OrganId>``), an auditor and an admin, and a server."""

    server: Server
    session: aiohttp.ClientSession
    keys: dict[str, str]
    database_url: str

    def client(self, who: str) -> Client:
        return Client(self.session, self.server.url, self.keys[who])

    async def count(self, table: str) -> int:
        conn = await asyncpg.connect(self.database_url)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()


@asynccontextmanager
async def open_world(
    tmp_path: Path,
    database_url: str,
    dev_pki: dict[str, Path],
    *,
    vxp_secrets: Mapping[str, str] | None = None,
    config_lines: tuple[str, ...] = (),
    **delivery: Any,
) -> AsyncIterator[World]:
    conn = await asyncpg.connect(database_url)
    try:
        await registry.add_agencies(
            conn, [registry.AgencyInput({"organ_id": o, "name": o}) for o in (DEPT, FINANCE, CENTRAL, OTHER)]
        )
        keys = {}
        for organ in (DEPT, FINANCE, CENTRAL, OTHER):
            secret = (vxp_secrets or {}).get(organ)
            new = await registry.add_system(conn, f"dms-{organ}", Role.SYSTEM, [organ], secret)
            keys[organ] = new.api_key
        keys["auditor"] = (await registry.add_system(conn, "auditor", Role.AUDITOR)).api_key
        keys["admin"] = (await registry.add_system(conn, "admin", Role.ADMIN)).api_key
    finally:
        await conn.close()
    config = write_config(tmp_path / "exchange.toml", dev_pki, **delivery)
    if config_lines:
        config.write_text(config.read_text() + "\n".join(config_lines) + "\n")
    server = await Server.start("--config", str(config), "--database-url", database_url)
    try:
        async with aiohttp.ClientSession() as session:
            yield World(server, session, keys, database_url)
    finally:
        assert await server.stop() == 0
