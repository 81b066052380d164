"""``exchange db``: the database schema."""

from __future__ import annotations

import click

from exchange.cli.common import json_option, print_json, settings_options, with_database
from exchange.settings import Settings
from exchange.store.migrate import current_version


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@json_option
@settings_options
def migrate(settings: Settings, as_json: bool) -> None:
    """Apply the migrations that are missing (safe to run at any time)."""

    # with_database brings the schema up to date before running the work.
    version = with_database(settings, current_version)
    if as_json:
        print_json({"schema_version": version})
    else:
        click.echo(f"schema at version {version}")
