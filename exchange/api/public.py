"""The public progress page and open-data feed (anonymous; 404 unless ``[public] enabled``)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from exchange.api.auth import public
from exchange.api.keys import POOL, SETTINGS
from exchange.errors import NotFound
from exchange.public_progress import ProgressCache, csv_rows
from exchange.reporting import table_csv
from exchange.vocabulary import PUBLIC_COLUMNS

PROGRESS_CACHE = web.AppKey("progress_cache", ProgressCache)


def setup_public(app: web.Application) -> None:
    """Give the application its cache of public figures (one per process)."""
    app[PROGRESS_CACHE] = ProgressCache(app[SETTINGS].public.cache_s)


async def _progress(request: web.Request) -> dict[str, Any]:
    if not request.app[SETTINGS].public.enabled:
        raise NotFound("public progress reporting is not enabled on this axis")
    return await request.app[PROGRESS_CACHE].get(request.app[POOL])


@public
async def progress_page(request: web.Request) -> web.Response:
    progress = await _progress(request)
    return aiohttp_jinja2.render_template("public/progress.html", request, {"progress": progress})


@public
async def progress_json(request: web.Request) -> web.Response:
    return web.json_response(await _progress(request), headers=_cache_headers(request))


@public
async def progress_csv(request: web.Request) -> web.Response:
    body = table_csv(PUBLIC_COLUMNS, csv_rows(await _progress(request)))
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="tien-do-lien-thong.csv"',
            **_cache_headers(request),
        },
    )


def _cache_headers(request: web.Request) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={int(request.app[SETTINGS].public.cache_s)}"}
