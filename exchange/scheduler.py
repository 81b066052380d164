"""Background work of a server process: the apscheduler scheduler and the delivery worker.

The worker wakes on a NOTIFY from any process that committed new push deliveries (a
dedicated listening connection) and on a periodic sweep job; the sweep also re-opens
the listening connection if the database dropped it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from adapters.http_push import HttpPush
from exchange.alerts import Alerter
from exchange.api.keys import (
    ALERTER,
    DATABASE_URL,
    INTAKE,
    METRICS,
    POOL,
    SCHEDULER,
    SETTINGS,
    SIGNER,
    WORKER,
)
from exchange.audit_chain import SEAL_BATCH, seal_pending
from exchange.delivery import DeliveryWorker, expire_pull_deliveries
from exchange.logs import get_logger
from exchange.retention import remove_old_bodies
from exchange.store.db import DATABASE_AWAY, Connection, PostgresError, connect, create_pool
from exchange.store.deliveries import CHANNEL, Claimed
from exchange.upstream import Upstreams

log = get_logger(__name__)


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    """The periodic duties: sealing the audit chain, retention, alerts."""
    settings = app[SETTINGS]
    alerter = Alerter(app[POOL], settings.alerts, app[SIGNER].certificate)
    await alerter.start()
    app[ALERTER] = alerter
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    app[SCHEDULER] = scheduler
    scheduler.add_job(_seal, "interval", seconds=settings.audit.seal_interval_s, args=[app], id="audit-seal")
    scheduler.add_job(
        _duty,
        "interval",
        seconds=settings.retention.interval_s,
        id="retention",
        args=["retention", lambda: _retention(app)],
    )
    scheduler.add_job(
        _duty, "interval", seconds=settings.alerts.interval_s, id="alerts", args=["alerts", alerter.sweep]
    )
    scheduler.start()
    yield
    scheduler.shutdown(wait=False)
    await alerter.close()


async def _retention(app: web.Application) -> None:
    async with app[POOL].acquire() as conn:
        await remove_old_bodies(conn, app[SETTINGS].retention)


async def _duty(name: str, work: Callable[[], Awaitable[object]]) -> None:
    """A periodic job that must not die of a passing database problem."""
    try:
        await work()
    except (*DATABASE_AWAY, OSError, PostgresError) as exc:
        log.warning(f"{name}.failed", error=str(exc))


async def _seal(app: web.Application) -> None:
    """Link committed audit entries into the chain; any process may run it, one seals at a time."""
    every = timedelta(seconds=app[SETTINGS].audit.checkpoint_interval_s)
    try:
        async with app[POOL].acquire() as conn:
            while (await seal_pending(conn, app[SIGNER], checkpoint_every=every)).sealed == SEAL_BATCH:
                pass
    except (*DATABASE_AWAY, OSError, PostgresError) as exc:  # e.g. the primary is gone: next tick retries
        log.warning("audit.seal_failed", error=str(exc))


async def delivery_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.delivery.enabled:
        yield
        return
    pusher = HttpPush(
        app[SIGNER],
        settings.delivery.push_timeout_s,
        settings.delivery.concurrency,
        settings.delivery.allow_private_endpoints,
    )
    await pusher.start()
    # The worker's own connections: pushes are claimed and recorded without queueing behind requests.
    worker_pool = await create_pool(
        app[DATABASE_URL],
        settings.database.model_copy(
            update={"pool_min_size": 1, "pool_max_size": settings.delivery.pool_size}
        ),
    )
    name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    attempts, alerter = app[METRICS].attempts, app[ALERTER]
    alerts: set[asyncio.Task[None]] = set()

    def on_outcome(outcome: str, claim: Claimed) -> None:
        attempts.labels(outcome).inc()
        if outcome in ("failed", "expired"):
            task = asyncio.create_task(alerter.delivery_given_up(outcome, claim))
            alerts.add(task)  # keep a reference until it is done
            task.add_done_callback(alerts.discard)

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.delivery.push_timeout_s))
    upstreams = Upstreams(app[POOL], settings, app[INTAKE], session) if settings.upstreams else None
    if upstreams is not None:
        await upstreams.start()
        scheduler = app[SCHEDULER]
        scheduler.add_job(
            _duty,
            "interval",
            seconds=min(u.poll_interval_s for u in settings.upstreams),
            args=["upstream.poll", upstreams.poll],
            id="upstream-poll",
        )
        scheduler.add_job(
            _duty,
            "interval",
            seconds=min(u.sync_interval_s for u in settings.upstreams),
            args=["upstream.sync", upstreams.sync_registry],
            id="upstream-sync",
            next_run_time=datetime.now(UTC),
        )
    worker = DeliveryWorker(
        worker_pool, settings.delivery, pusher, name, on_outcome=on_outcome, forwarder=upstreams
    )
    app[WORKER] = worker
    listener = _Listener(app[DATABASE_URL], app, worker)
    await listener.ensure()
    app[SCHEDULER].add_job(
        listener.sweep, "interval", seconds=settings.delivery.sweep_interval_s, id="delivery-sweep"
    )
    app[SCHEDULER].add_job(
        _duty,
        "interval",
        seconds=settings.delivery.sweep_interval_s,
        id="pull-expiry",
        args=[
            "delivery.pull_expiry",
            lambda: expire_pull_deliveries(worker_pool, settings.delivery, on_outcome),
        ],
    )
    task = asyncio.create_task(worker.serve(), name="delivery-worker")
    worker.wake()  # whatever came due while no process was running
    yield
    # Let pushes in flight finish and be recorded, so a clean stop hands nothing to the lease timeout.
    worker.stop()
    try:
        await asyncio.wait_for(task, settings.delivery.push_timeout_s + 5)
    except TimeoutError:
        log.warning("delivery.stop_timeout", worker=worker.name)
    with suppress(asyncio.CancelledError):
        await task
    await listener.close()
    await pusher.close()
    await session.close()
    await worker_pool.close()


class _Listener:
    """The LISTEN connection: a hint to deliver now, never the only way work is found."""

    def __init__(self, dsn: str, app: web.Application, worker: DeliveryWorker) -> None:
        self._dsn = dsn
        self._app = app
        self._worker = worker
        self._conn: Connection | None = None

    async def ensure(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        try:
            self._conn = await connect(self._dsn, self._app[SETTINGS].database)
            await self._conn.add_listener(CHANNEL, self._notified)
            log.info("delivery.listening", worker=self._worker.name)
        except Exception as exc:  # the sweep keeps deliveries moving meanwhile
            log.warning("delivery.listen_failed", error=str(exc))
            self._conn = None

    def _notified(self, *_: object) -> None:
        self._worker.wake()

    async def sweep(self) -> None:
        await self.ensure()
        self._worker.wake()

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
