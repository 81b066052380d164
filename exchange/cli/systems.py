"""``exchange system``: the callers of the axis and their API keys."""

from __future__ import annotations

from pathlib import Path

import click

from exchange import registry, registry_control
from exchange.cert_registry import read_certificates
from exchange.cli.common import json_option, print_json, print_table, settings_options, with_database
from exchange.model import Role, System
from exchange.settings import Settings
from exchange.store import systems as system_store
from exchange.store.db import Connection
from exchange.trust import certificates


@click.group()
def system() -> None:
    """Register callers (DMS systems, auditors, admins) and manage their keys."""


@system.command()
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True, help="What it may do.")
@click.option(
    "--organ", "organs", multiple=True, metavar="ORGANID", help="An agency it acts for (repeatable)."
)
@click.option(
    "--vxp-secret",
    metavar="SECRET",
    help="HMAC secret for the VXP facade (role system; default: generated and printed).",
)
@json_option
@settings_options
def add(
    settings: Settings, name: str, role: str, organs: tuple[str, ...], vxp_secret: str | None, as_json: bool
) -> None:
    """Register a caller and print its API key (shown only this once)."""

    async def work(conn: Connection) -> registry.NewSystem:
        return await registry.add_system(conn, name, Role(role), organs, vxp_secret)

    _print_new(with_database(settings, work), as_json)


@system.command("list")
@json_option
@settings_options
def list_(settings: Settings, as_json: bool) -> None:
    """List the registered callers (never their keys)."""
    systems = with_database(settings, system_store.list_systems)
    if as_json:
        print_json({"systems": [s.as_dict() for s in systems]})
        return
    print_table(
        ["name", "role", "active", "acts for", "key rotated"],
        [
            (s.name, s.role.value, s.active, " ".join(s.organ_ids), f"{s.key_rotated_at:%Y-%m-%d %H:%M}")
            for s in systems
        ],
    )


@system.command("rotate-key")
@click.argument("name")
@json_option
@settings_options
def rotate_key(settings: Settings, name: str, as_json: bool) -> None:
    """Give a caller a new API key; the old one stops working at once."""

    async def work(conn: Connection) -> registry.NewSystem:
        return await registry.rotate_key(conn, name)

    _print_new(with_database(settings, work), as_json)


@system.command("rotate-secret")
@click.argument("name")
@click.option("--vxp-secret", metavar="SECRET", help="The new secret (default: generated and printed).")
@json_option
@settings_options
def rotate_secret(settings: Settings, name: str, vxp_secret: str | None, as_json: bool) -> None:
    """Give a document system a new VXP secret; the old one stops working at once."""

    async def work(conn: Connection) -> tuple[System, str]:
        return await registry_control.rotate_vxp_secret(conn, "cli", name, vxp_secret)

    rotated, secret = with_database(settings, work)
    if as_json:
        print_json({"system_id": rotated.id, "name": rotated.name, "vxp_secret": secret})
    else:
        click.echo(f"VXP systemid: {rotated.name}  secret: {secret}")
        click.echo("Keep it now: it cannot be shown again. The old secret no longer works.")


@system.command()
@click.argument("name")
@json_option
@settings_options
def disable(settings: Settings, name: str, as_json: bool) -> None:
    """Refuse every credential of a system (401); its agencies' deliveries are held, not failed."""
    _set_enabled(settings, name, False, as_json)


@system.command()
@click.argument("name")
@json_option
@settings_options
def enable(settings: Settings, name: str, as_json: bool) -> None:
    """Accept a disabled system's credentials again; its agencies' held deliveries resume."""
    _set_enabled(settings, name, True, as_json)


def _set_enabled(settings: Settings, name: str, enabled: bool, as_json: bool) -> None:
    async def work(conn: Connection) -> System:
        return await registry_control.set_system_enabled(conn, "cli", name, enabled)

    changed = with_database(settings, work)
    if as_json:
        print_json(changed.as_dict())
    else:
        click.echo(f"system {changed.name} {'enabled' if changed.active else 'disabled'}")


@system.command("client-cert")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--remove", is_flag=True, help="Forget the system's client certificate.")
@json_option
@settings_options
def client_cert(settings: Settings, name: str, file: Path | None, remove: bool, as_json: bool) -> None:
    """Let a system authenticate by mutual TLS with the client certificate in FILE (PEM or DER)."""
    if (file is None) != remove:
        raise click.UsageError("give a certificate FILE, or --remove")
    fingerprint = None
    if file is not None:
        certificate = read_certificates(file.read_bytes(), str(file))[0]
        fingerprint = certificates.fingerprint(certificate)

    async def work(conn: Connection) -> object:
        return await registry.set_client_certificate(conn, name, fingerprint)

    with_database(settings, work)
    shown = None if fingerprint is None else fingerprint.hex()
    if as_json:
        print_json({"name": name, "client_cert_fingerprint": shown})
    else:
        click.echo(f"{name}: client certificate {shown or 'removed'}")


def _print_new(new: registry.NewSystem, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "system_id": new.system.id,
                "name": new.system.name,
                "api_key": new.api_key,
                "vxp_secret": new.vxp_secret,
            }
        )
    else:
        click.echo(f"system {new.system.name} ({new.system.role.value})")
        click.echo(f"api key: {new.api_key}")
        click.echo("Keep it now: it is stored hashed and cannot be shown again.")
        if new.vxp_secret:
            click.echo(f"VXP systemid: {new.system.name}  secret: {new.vxp_secret}")
