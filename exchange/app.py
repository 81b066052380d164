"""The aiohttp application: its factory, its lifetime contexts, and how it is served."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from exchange.api.auth import auth_middleware
from exchange.api.connections import (
    CONNECTION_GUARD,
    ConnectionGuard,
    GuardedAppRunner,
    connection_middleware,
    raise_descriptor_limit,
    sweeping,
)
from exchange.api.errors import error_middleware, vxp_error_middleware
from exchange.api.keys import (
    CALLER,
    DATABASE_URL,
    INTAKE,
    LOGIN_THROTTLE,
    METRICS,
    POOL,
    SEALER_WAITER,
    SETTINGS,
    SIGNER,
)
from exchange.api.limiting import LIMITER, Limiter, limits_middleware
from exchange.api.public import setup_public
from exchange.api.routes import setup_health_routes, setup_routes
from exchange.api.ui import security_headers
from exchange.axis_identity import load_axis_signer
from exchange.charts import readable_json
from exchange.edxml import schema
from exchange.intake import Intake
from exchange.logs import get_logger
from exchange.metrics import Metrics
from exchange.scheduler import delivery_context, scheduler_context
from exchange.settings import Settings
from exchange.store.db import create_pool
from exchange.store.migrate import apply_migrations
from exchange.tls import server_ssl_context
from exchange.ui_sessions import LoginThrottle
from exchange.vocabulary import FILTERS

log = get_logger(__name__)
access_log = get_logger("exchange.access")


def create_app(settings: Settings, database_url: str) -> web.Application:
    app = web.Application(
        middlewares=[
            timing_middleware,
            error_middleware,
            vxp_error_middleware,
            connection_middleware,
            auth_middleware,
            limits_middleware,
        ],
        client_max_size=settings.limits.max_package_bytes,
    )
    app[SETTINGS] = settings
    app[LIMITER] = Limiter.from_settings(settings.limits)
    app[DATABASE_URL] = database_url
    app[SIGNER] = load_axis_signer(settings)
    app[SEALER_WAITER] = asyncio.Lock()
    app[METRICS] = Metrics()
    app[LOGIN_THROTTLE] = LoginThrottle(settings.ui)
    app.on_response_prepare.append(security_headers)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        filters={"details": readable_json, **FILTERS},
    )
    app.cleanup_ctx.append(pool_context)
    if settings.server.runs_work:
        # Pushing, forwarding, sealing and the periodic sweeps: never in an API-only process.
        app.cleanup_ctx.append(scheduler_context)
        app.cleanup_ctx.append(delivery_context)
    if settings.server.serves_api:
        app.on_startup.append(load_validators)
        setup_routes(app)
        setup_public(app)
    else:
        setup_health_routes(app)  # a worker answers its orchestrator and its scraper, nothing else
    return app


async def load_validators(app: web.Application) -> None:
    """The package schemas, built before the first request rather than during one."""
    await asyncio.to_thread(schema.load_validators)


async def pool_context(app: web.Application) -> AsyncIterator[None]:
    """Open the pool and bring the schema up to date before the first request."""
    pool = await create_pool(app[DATABASE_URL], app[SETTINGS].database)
    async with pool.acquire() as conn:
        applied = await apply_migrations(conn)
    if applied:
        log.info("db.migrated", versions=[m.version for m in applied])
    app[POOL] = pool
    app[INTAKE] = Intake(pool, app[SETTINGS], app[SIGNER])
    yield
    await pool.close()


async def serve(settings: Settings, database_url: str) -> None:
    """Serve until SIGINT or SIGTERM, then finish the requests in flight and close cleanly."""
    ssl_context = server_ssl_context(settings.server)
    limits = settings.limits
    # Room for every connection the limits allow, plus the pool, files and spare.
    raise_descriptor_limit(limits.max_connections + 1024)
    app = create_app(settings, database_url)
    guard = ConnectionGuard(limits, on_close=lambda reason: app[METRICS].limited.labels(reason).inc())
    app[CONNECTION_GUARD] = guard
    runner = GuardedAppRunner(
        app,
        guard,
        handle_signals=False,
        access_log_class=AccessLogger,
        shutdown_timeout=settings.server.shutdown_timeout_s,
        # aiohttp's own idle timer closes an idle kept-alive connection; the guard's sweep too.
        keepalive_timeout=limits.idle_timeout_s,
        # A refused body is read and discarded for at most this long, so its answer reaches the client.
        lingering_time=5.0,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        # A deep accept queue: under a connection flood an honest client's SYN must not be dropped
        # (a dropped SYN is retried after 1, 3, 7 s); the kernel caps it at net.core.somaxconn.
        site = web.TCPSite(
            runner, settings.server.host, settings.server.port, ssl_context=ssl_context, backlog=4096
        )
        await site.start()
        # What startup built (modules, schemas, settings) lives as long as the process: out of the
        # collector's sight, so the full collections under load do not walk it again each time.
        gc.freeze()
        host, port = _bound_address(runner)
        scheme = "https" if ssl_context else "http"
        log.info(
            "server.listening",
            url=f"{scheme}://{host}:{port}",
            host=host,
            port=port,
            role=settings.server.role,
            mutual_tls=bool(settings.server.tls_client_ca),
        )
        async with sweeping(guard):
            await stop.wait()
        log.info("server.stopping")
    finally:
        await runner.cleanup()
        log.info("server.stopped")


def _bound_address(runner: web.AppRunner) -> tuple[str, int]:
    # With port 0 the OS picks the port; report the real one so callers can connect.
    for address in runner.addresses:
        if isinstance(address, tuple):
            return str(address[0]), int(address[1])
    raise RuntimeError("the server is not listening on a TCP address")


@web.middleware
async def timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request latency by route template (not raw path, which would explode the label set)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        info = (
            request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        )
        request.app[METRICS].requests.labels(request.method, info, str(status)).observe(
            time.perf_counter() - started
        )


class AccessLogger(AbstractAccessLogger):
    """One structured record per request; headers (and so credentials) are never logged."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if getattr(request.protocol, "malformed", False):
            return  # said once, as http.malformed
        caller = request.get(CALLER) if isinstance(request, web.Request) else None
        access_log.info(
            "http.request",
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round(time * 1000, 2),
            system=caller.name if caller is not None else None,
        )
