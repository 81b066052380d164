"""Running the real ``exchange`` command as a separate process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil


class ServerProcess:
    """An ``exchange serve`` child; knows its URL once the server logs ``server.listening``."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.events: list[dict[str, Any]] = []
        self.url = self._wait_until_listening()
        # Keep draining stderr so the child never blocks on a full pipe.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _wait_until_listening(self) -> str:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            event = _parse(line)
            self.events.append(event)
            if event.get("event") == "server.listening":
                return str(event["url"])
        code = self.process.wait()
        self.process.stderr.close()
        raise AssertionError(f"server exited with {code} before listening: {self.events}")

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.events.append(_parse(line))

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self._close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._close()

    def _close(self) -> None:
        # The child is gone, so the reader meets the end of the pipe and finishes.
        self._reader.join()
        assert self.process.stderr is not None
        self.process.stderr.close()


def _parse(line: str) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return {"event": "raw", "line": line.rstrip()}
    return parsed if isinstance(parsed, dict) else {"event": "raw", "line": line.rstrip()}


@contextmanager
def running_server(args: list[str]) -> Iterator[ServerProcess]:
    server = ServerProcess(args)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.kill()


def get(url: str, key: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def exchange(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exchange", *argv], capture_output=True, text=True, timeout=120, check=False
    )


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Live PostgreSQL processes serving ``pgdata``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata.resolve()) in " ".join(cmdline):
            found.append(process)
    return found
