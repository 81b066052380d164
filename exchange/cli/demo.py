"""``exchange demo``: load the demo registry and print a key for each demo system."""

from __future__ import annotations

import click

from exchange.cli.common import json_option, print_json, print_table, settings_options, with_database
from exchange.demo import load_demo
from exchange.settings import Settings


@click.command()
@json_option
@settings_options
def demo(settings: Settings, as_json: bool) -> None:
    """Load a demo city (departments, districts, communes) and the central office.

    Safe to run again: missing entries are added, and every demo system gets a
    fresh API key, printed here (earlier demo keys stop working).
    """
    systems = with_database(settings, load_demo)
    if as_json:
        print_json(
            {
                "systems": [
                    {
                        "name": s.system.name,
                        "role": s.system.role.value,
                        "organ_ids": list(s.system.organ_ids),
                        "api_key": s.api_key,
                    }
                    for s in systems
                ]
            }
        )
        return
    print_table(
        ["system", "role", "acts for", "api key"],
        [(s.system.name, s.system.role.value, " ".join(s.system.organ_ids), s.api_key) for s in systems],
        title="Demo systems (keys are shown once; run 'exchange demo' again for new ones)",
        keep_whole=["system", "api key"],
    )
