"""Turns at checking packages: how many a server process checks and stores at once, shared
between the systems that send them.

Checking a package is the event loop's heaviest work. Unbounded, a flood of submissions takes
nearly every turn of the loop from the deliveries the same process pushes and serves, which then
fall seconds behind what it accepts; so a process checks ``limits.intake_concurrency`` packages
at once and the others wait. One system holds at most half of the turns (at least one), so a
system whose packages are slow to check (large ones, attached PDFs that run to their deadline)
cannot make everybody else wait for it; and a package waits at most ``limits.intake_wait_s``
for a turn, then is answered 503 with Retry-After rather than held without end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from exchange.errors import Busy


class Turns:
    def __init__(self, total: int, wait_s: float) -> None:
        self._total = total
        self._per_system = max(1, total // 2)
        self._wait_s = wait_s
        self._held: Counter[str] = Counter()
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def take(self, system: str) -> AsyncIterator[None]:
        """Hold a turn for ``system`` while the block runs; Busy (503) if none came in time."""
        async with self._changed:
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._changed.wait_for(lambda: self._free_for(system))
            except TimeoutError:
                raise Busy(
                    "the axis is checking as many packages as it may at once; try again shortly"
                ) from None
            self._held[system] += 1
        try:
            yield
        finally:
            async with self._changed:
                self._held[system] -= 1
                if not self._held[system]:
                    del self._held[system]
                self._changed.notify_all()

    def _free_for(self, system: str) -> bool:
        return self._held.total() < self._total and self._held[system] < self._per_system
