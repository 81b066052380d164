"""``exchange agency``: the registry of government bodies."""

from __future__ import annotations

from pathlib import Path

import click

from exchange import registry, registry_control
from exchange.agency_files import read_agency_file
from exchange.cli.common import json_option, print_json, print_table, settings_options, with_database
from exchange.model import Agency, AgencySpec, DeliveryMode, SignaturePolicy
from exchange.settings import Settings
from exchange.store import agencies as agency_store
from exchange.store.db import Connection


@click.group()
def agency() -> None:
    """Register agencies (OrganIds), list them, import them from CSV or JSON."""


@agency.command()
@click.argument("organ_id", metavar="ORGANID")
@click.option("--name", required=True, help="The agency's official name.")
@click.option("--parent", metavar="ORGANID", help="The managing agency.")
@click.option("--system", metavar="NAME", help="The registered system that acts for it.")
@click.option(
    "--mode",
    type=click.Choice([m.value for m in DeliveryMode]),
    default="pull",
    show_default=True,
    help="How documents reach it.",
)
@click.option("--endpoint", metavar="URL", help="Where to push documents (mode push).")
@click.option(
    "--signature-policy",
    type=click.Choice([p.value for p in SignaturePolicy]),
    help="Signature policy for its packages (default: the global one).",
)
@click.option(
    "--allow-sha1/--no-allow-sha1",
    default=None,
    help="Accept its RSA-SHA1 signatures (default: the global trust.allow_legacy_sha1).",
)
@click.option(
    "--attachment-signature-policy",
    type=click.Choice(["off", "record", "official-required"]),
    help="What to do with the signatures inside its PDF attachments (default: the global "
    "trust.default_attachment_signature_policy).",
)
@click.option("--max-attempts", type=click.IntRange(1), help="Its own limit of push attempts.")
@click.option(
    "--max-age",
    "max_age_s",
    type=click.IntRange(1),
    metavar="SECONDS",
    help="Its own limit on how long a push delivery is retried.",
)
@click.option(
    "--foreign-document-ids/--no-foreign-document-ids",
    default=False,
    show_default=True,
    help="Tolerate DocumentIds whose OrganId part names another agency (a legacy producer); "
    "off, such packages are refused with document_id_not_sender.",
)
@json_option
@settings_options
def add(
    settings: Settings,
    organ_id: str,
    name: str,
    parent: str | None,
    system: str | None,
    mode: str,
    endpoint: str | None,
    signature_policy: str | None,
    allow_sha1: bool | None,
    attachment_signature_policy: str | None,
    max_attempts: int | None,
    max_age_s: int | None,
    foreign_document_ids: bool,
    as_json: bool,
) -> None:
    """Register one agency."""
    values = {
        "organ_id": organ_id,
        "name": name,
        "parent": parent,
        "system": system,
        "mode": mode,
        "endpoint": endpoint,
        "signature_policy": signature_policy,
        "allow_sha1": allow_sha1,
        "max_attempts": max_attempts,
        "max_age_s": max_age_s,
        "foreign_document_ids": foreign_document_ids,
        "attachment_signature_policy": attachment_signature_policy,
    }

    async def work(conn: Connection) -> list[AgencySpec]:
        return await registry.add_agencies(
            conn,
            [registry.AgencyInput(values)],
            allow_private_endpoints=settings.delivery.allow_private_endpoints,
        )

    spec = with_database(settings, work)[0]
    if as_json:
        print_json({"organ_id": spec.organ_id})
    else:
        click.echo(f"registered {spec.organ_id} {spec.name}")


@agency.command("list")
@json_option
@settings_options
def list_(settings: Settings, as_json: bool) -> None:
    """List the registered agencies."""
    agencies = with_database(settings, agency_store.list_agencies)
    if as_json:
        print_json({"agencies": [a.as_dict() for a in agencies]})
        return
    print_table(
        ["OrganId", "name", "parent", "system", "mode", "state"],
        [(a.organ_id, a.name, a.parent, a.system, a.mode.value, a.state.value) for a in agencies],
    )


@agency.command()
@click.argument("organ_id", metavar="ORGANID")
@json_option
@settings_options
def approve(settings: Settings, organ_id: str, as_json: bool) -> None:
    """Let an agency registered through the VXP facade (pending) send and receive."""

    async def work(conn: Connection) -> Agency:
        return await registry_control.approve_agency(conn, "cli", organ_id)

    _print_standing(with_database(settings, work), as_json)


@agency.command()
@click.argument("organ_id", metavar="ORGANID")
@json_option
@settings_options
def disable(settings: Settings, organ_id: str, as_json: bool) -> None:
    """Stop an agency sending and receiving; its queued deliveries are held, not failed."""
    _set_enabled(settings, organ_id, False, as_json)


@agency.command()
@click.argument("organ_id", metavar="ORGANID")
@json_option
@settings_options
def enable(settings: Settings, organ_id: str, as_json: bool) -> None:
    """Let a disabled agency send and receive again; its held deliveries resume."""
    _set_enabled(settings, organ_id, True, as_json)


def _set_enabled(settings: Settings, organ_id: str, enabled: bool, as_json: bool) -> None:
    async def work(conn: Connection) -> Agency:
        return await registry_control.set_agency_enabled(conn, "cli", organ_id, enabled)

    _print_standing(with_database(settings, work), as_json)


def _print_standing(changed: Agency, as_json: bool) -> None:
    if as_json:
        print_json(changed.as_dict())
    else:
        click.echo(f"agency {changed.organ_id} {changed.name}: {changed.state.value}")


@agency.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@settings_options
def import_(settings: Settings, file: Path, as_json: bool) -> None:
    """Register every agency in a CSV or JSON file, or none if any entry is wrong.

    CSV: a header row with organ_id and name, and any of parent, system, mode, endpoint,
    signature_policy, active, allow_sha1, max_attempts, max_age_s, pending, foreign_document_ids,
    attachment_signature_policy. JSON: an
    array of objects with those keys, or {"agencies": [...]}.
    """
    inputs = read_agency_file(file)

    async def work(conn: Connection) -> list[AgencySpec]:
        return await registry.add_agencies(
            conn, inputs, allow_private_endpoints=settings.delivery.allow_private_endpoints
        )

    specs = with_database(settings, work)
    if as_json:
        print_json({"imported": [spec.organ_id for spec in specs]})
    else:
        click.echo(f"imported {len(specs)} agencies from {file}")
