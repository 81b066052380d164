"""``exchange demo``: the demo registry, its keys (kept between runs), and optional demo traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from exchange.cli.common import json_option, print_json, print_table, settings_options, with_database
from exchange.demo import demo_directory, demo_pki, keep_keys, load_demo, load_kept_keys, trust_demo_ca
from exchange.demo_traffic import Summary, demo_server, send_traffic, write_sample_package
from exchange.logs import configure_logging
from exchange.registry import NewSystem
from exchange.settings import LogSettings, Settings
from exchange.store.db import Connection
from exchange.store.embedded import database_url
from exchange.store.messages import count_edocs


@click.command()
@click.option(
    "--rotate", is_flag=True, help="Give every demo system a fresh key (the earlier ones stop working)."
)
@click.option(
    "--traffic",
    type=click.IntRange(0, 10_000),
    default=0,
    help="Then send this many realistic documents through the API, with the recipients' answers.",
)
@click.option("--if-empty", is_flag=True, help="Send the traffic only when the axis holds no document yet.")
@click.option(
    "--seed", type=int, help="Seed of the traffic's random choices (the same seed, the same traffic)."
)
@json_option
@settings_options
def demo(
    settings: Settings, rotate: bool, traffic: int, if_empty: bool, seed: int | None, as_json: bool
) -> None:
    """Load a demo city (departments, districts, communes) and the central office.

    Safe to run again: missing entries are added. The keys are kept in
    <data-dir>/demo/keys.json and printed again on the next run (--rotate for new ones);
    `exchange send FILE --as SYSTEM` finds them there. The demo agencies sign with
    development certificates made once in <data-dir>/demo/pki/ (their CA is trusted).
    """
    kept = {} if rotate else load_kept_keys(settings.data_dir)
    pki = demo_pki(settings.data_dir)

    async def load(conn: Connection) -> tuple[list[NewSystem], int]:
        systems = await load_demo(conn, kept)
        await trust_demo_ca(conn, pki)
        return systems, await count_edocs(conn)

    systems, documents = with_database(settings, load)
    keys_file = keep_keys(settings.data_dir, systems)
    sample = write_sample_package(demo_directory(settings.data_dir) / "packages", pki)
    summary = None
    if traffic and not (if_empty and documents):
        summary = _traffic(settings, {s.system.name: s.api_key for s in systems}, pki, traffic, seed)
    _print(systems, keys_file, sample, summary, as_json)


def _traffic(
    settings: Settings, keys: dict[str, str], pki: dict[str, Path], count: int, seed: int | None
) -> Summary:
    configure_logging(LogSettings(level="warning", format=settings.log.format))

    async def run(url: str) -> Summary:
        async with demo_server(settings, url) as base:
            return await send_traffic(base, keys, pki, count, seed)

    with database_url(settings) as url:
        return asyncio.run(run(url))


def _print(
    systems: list[NewSystem], keys_file: Path, sample: Path, summary: Summary | None, as_json: bool
) -> None:
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
                ],
                "keys_file": str(keys_file),
                "sample_package": str(sample),
                "traffic": None if summary is None else vars(summary),
            }
        )
        return
    print_table(
        ["system", "role", "acts for", "api key"],
        [(s.system.name, s.system.role.value, " ".join(s.system.organ_ids), s.api_key) for s in systems],
        title=f"Demo systems (keys kept in {keys_file}; 'exchange demo --rotate' for new ones)",
        keep_whole=["system", "api key"],
    )
    click.echo(f"A signed package to try: exchange send {sample} --as so-noi-vu")
    if summary is not None:
        kinds = ", ".join(f"{n} {kind.lower()}" for kind, n in summary.by_type.items())
        click.echo(
            f"Demo traffic: {summary.documents} documents ({kinds}), {summary.downloads} downloads, "
            f"{summary.statuses} statuses reported back."
        )
