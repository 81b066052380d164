"""Server-side sessions of the auditor web page, and the brake on guessing keys at its login.

The browser holds a random session id; the database holds its SHA-256, the system, and when
the session ends. The API key is used once, at login, and never stored in the browser.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import deque

from exchange.model import System
from exchange.settings import UiSettings
from exchange.store import sessions as session_store
from exchange.store.db import Connection


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()


async def open_session(conn: Connection, caller: System, settings: UiSettings) -> str:
    """A new session for ``caller``; the returned id goes in the cookie and nowhere else."""
    session_id = secrets.token_urlsafe(32)
    await session_store.create(conn, _hash(session_id), caller.id, settings.session_lifetime_s)
    return session_id


async def session_caller(conn: Connection, session_id: str) -> System | None:
    """The system of a live session, or None (unknown, expired, logged out, key rotated, deactivated)."""
    return await session_store.live_system(conn, _hash(session_id))


async def close_session(conn: Connection, session_id: str) -> None:
    await session_store.revoke(conn, _hash(session_id))


MAX_ADDRESSES = 10_000


class LoginThrottle:
    """Failed logins per client address in a sliding window; past the limit, wait for the window.

    Kept in the process's memory: each server process counts its own attempts, so N processes
    behind a balancer admit at most N times the limit, still far too few to guess a key.
    """

    def __init__(self, settings: UiSettings) -> None:
        self._limit = settings.max_failed_logins
        self._window = settings.failed_login_window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        failures = self._recent(address)
        if len(failures) < self._limit:
            return None
        return max(1, math.ceil(failures[0] + self._window - time.monotonic()))

    def failed(self, address: str) -> None:
        self._recent(address).append(time.monotonic())

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        cutoff = time.monotonic() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if len(self._failures) > MAX_ADDRESSES:
            self._forget_quiet(cutoff, keep=address)
        return failures

    def _forget_quiet(self, cutoff: float, keep: str) -> None:
        """Many addresses: drop those with no failure inside the window, so memory stays bounded."""
        for address in list(self._failures):
            if address != keep and (not self._failures[address] or self._failures[address][-1] <= cutoff):
                del self._failures[address]
