"""``exchange serve``: run the server (with its own PostgreSQL when no URL is configured)."""

from __future__ import annotations

import asyncio

import click

from exchange.app import serve as serve_app
from exchange.cli.common import settings_options
from exchange.logs import configure_logging, get_logger
from exchange.settings import Settings
from exchange.store.embedded import database_url


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on (default 8080; 0 picks one).")
@click.option(
    "--role",
    type=click.Choice(["api", "worker", "all"]),
    help="api: accept and serve only; worker: push, forward, seal and sweep only; all (default): both.",
)
@settings_options
def serve(settings: Settings, host: str | None, port: int | None, role: str | None) -> None:
    """Run the axis server until SIGINT or SIGTERM."""
    settings = load_settings_with_server(settings, host, port, role)
    configure_logging(settings.log)
    log = get_logger("exchange.serve")
    if settings.embedded_database:
        log.info("db.embedded.starting", pgdata=str(settings.embedded_pgdata))
    with database_url(settings) as url:
        asyncio.run(serve_app(settings, url))
    if settings.embedded_database:
        log.info("db.embedded.stopped", pgdata=str(settings.embedded_pgdata))


def load_settings_with_server(
    settings: Settings, host: str | None, port: int | None, role: str | None = None
) -> Settings:
    flags = (("host", host), ("port", port), ("role", role))
    server = settings.server.model_copy(update={key: value for key, value in flags if value is not None})
    return settings.model_copy(update={"server": server})
