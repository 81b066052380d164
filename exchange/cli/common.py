"""What the CLI commands share: settings flags, database access, and output."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from exchange.logs import configure_logging
from exchange.settings import LogSettings, Settings, load_settings
from exchange.store.db import Connection, connection
from exchange.store.embedded import database_url
from exchange.store.migrate import apply_migrations

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


def settings_options(command: F) -> F:
    """Add --config, --data-dir and --database-url, and pass the loaded ``settings``."""

    @functools.wraps(command)
    def with_settings(
        *args: Any, config: Path | None, data_dir: Path | None, database_url: str | None, **kwargs: Any
    ) -> Any:
        settings = load_settings(config, data_dir=data_dir, database={"url": database_url})
        return command(*args, settings=settings, **kwargs)

    options = (
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="TOML configuration file (default: $EXCHANGE_CONFIG, else built-in defaults).",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where the embedded PostgreSQL cluster lives (default: ./var).",
        ),
        click.option("--database-url", help="PostgreSQL URL; when given, no embedded cluster is started."),
    )
    decorated: Any = with_settings
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def with_database(settings: Settings, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run ``work`` on one connection to the configured database, with the schema up to date.

    Works whether or not a server is running on the same data directory.
    """
    # Commands print their results on stdout; only problems belong on stderr.
    configure_logging(LogSettings(level="warning", format=settings.log.format))

    async def run(url: str) -> T:
        async with connection(url, settings.database) as conn:
            await apply_migrations(conn)
            return await work(conn)

    with database_url(settings) as url:
        return asyncio.run(run(url))


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    keep_whole: Sequence[str] = (),
) -> None:
    """Print rows as a table; columns named in ``keep_whole`` (keys, ids) are never cut or wrapped."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    table = Table(title=title)
    for index, column in enumerate(columns):
        widest = max((len(row[index]) for row in cells), default=0)
        if column in keep_whole:
            table.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
        else:
            table.add_column(column)
    for row in cells:
        table.add_row(*row)
    # Piped output has no terminal width; do not squeeze it into 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
