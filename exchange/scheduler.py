"""The process's job scheduler (apscheduler 3): periodic work such as delivery sweeps.

Jobs are registered by the modules that own the work; this module only runs the
scheduler for the lifetime of the application.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from exchange.api.keys import SCHEDULER


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    app[SCHEDULER] = scheduler
    scheduler.start()
    yield
    scheduler.shutdown(wait=False)
