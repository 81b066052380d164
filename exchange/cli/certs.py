"""``exchange cert``: trusted CAs (for envelope or document signatures), certificates pinned to agencies,
revocations and revocation lists."""

from __future__ import annotations

from pathlib import Path

import click

from exchange import cert_registry
from exchange.cli.common import json_option, print_json, print_table, settings_options, with_database
from exchange.settings import Settings
from exchange.store import certificates as certificate_store
from exchange.store.db import Connection
from exchange.store.revocation_lists import RevocationList
from exchange.trust.certificates import CertificateFacts


@click.group()
def cert() -> None:
    """Manage the certificates that signature checks trust."""


@cert.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agency", "organ_id", metavar="ORGANID", help="Pin the certificate(s) to this agency.")
@click.option("--ca", "as_ca", is_flag=True, help="Trust the certificate(s) as CAs (a chain file is fine).")
@click.option(
    "--purpose",
    type=click.Choice(["envelope", "document"]),
    default="envelope",
    show_default=True,
    help="What a CA is trusted for: the edXML envelope's XML signature, or the signatures inside "
    "attached PDF documents.",
)
@json_option
@settings_options
def import_(
    settings: Settings, file: Path, organ_id: str | None, as_ca: bool, purpose: str, as_json: bool
) -> None:
    """Import PEM or DER certificates; expired, malformed or non-signing ones are refused."""
    if as_ca == (organ_id is not None):
        raise click.UsageError("give exactly one of --ca and --agency ORGANID")
    if purpose == "document" and not as_ca:
        raise click.UsageError("--purpose document registers CAs: give --ca")
    certificates = cert_registry.read_certificates(file.read_bytes(), str(file))

    async def work(conn: Connection) -> list[tuple[CertificateFacts, bool]]:
        return await cert_registry.import_certificates(conn, certificates, organ_id=organ_id, purpose=purpose)

    imported = with_database(settings, work)
    if as_json:
        print_json(
            {
                "imported": [
                    {"fingerprint": f.fingerprint.hex(), "subject": f.subject, "new": new}
                    for f, new in imported
                ]
            }
        )
        return
    role = f"trusted CA for {purpose} signatures" if as_ca else f"pinned to {organ_id}"
    for facts, new in imported:
        click.echo(
            f"{'imported' if new else 'already known'}: {facts.subject} ({role}) {facts.fingerprint.hex()}"
        )


@cert.command("list")
@json_option
@settings_options
def list_(settings: Settings, as_json: bool) -> None:
    """List known certificates with their role, validity and revocation."""
    rows = with_database(settings, certificate_store.list_certificates)
    if as_json:
        print_json({"certificates": [row.as_dict() for row in rows]})
        return
    print_table(
        ["fingerprint", "role", "agency", "subject", "valid until", "revoked"],
        [
            (
                r.fingerprint.hex()[:16],
                f"{r.role} ({r.purpose})" if r.role == "ca" else r.role,
                r.organ_id,
                r.subject,
                f"{r.not_after:%Y-%m-%d}",
                "" if r.revoked_at is None else f"{r.revoked_at:%Y-%m-%d}",
            )
            for r in rows
        ],
    )


@cert.command()
@click.argument("certificate")
@click.option("--reason", help="Why it is revoked (recorded).")
@json_option
@settings_options
def revoke(settings: Settings, certificate: str, reason: str | None, as_json: bool) -> None:
    """Revoke a certificate, given as a file or as its SHA-256 fingerprint (hex)."""
    path = Path(certificate)
    if path.is_file():
        parsed = cert_registry.read_certificates(path.read_bytes(), certificate)[0]

        async def work(conn: Connection) -> bytes:
            return await cert_registry.revoke_certificate(conn, certificate=parsed, reason=reason)
    else:
        try:
            fingerprint = bytes.fromhex(certificate)
        except ValueError:
            raise click.BadParameter(
                "neither a file nor a hex SHA-256 fingerprint", param_hint="CERTIFICATE"
            ) from None

        async def work(conn: Connection) -> bytes:
            return await cert_registry.revoke_certificate(conn, fingerprint=fingerprint, reason=reason)

    revoked = with_database(settings, work)
    if as_json:
        print_json({"revoked": revoked.hex()})
    else:
        click.echo(f"revoked {revoked.hex()}")


@cert.group()
def crl() -> None:
    """Certificate revocation lists, imported from files (nothing is fetched unless configured)."""


@crl.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@settings_options
def crl_import(settings: Settings, file: Path, as_json: bool) -> None:
    """Import a PEM or DER CRL signed by a registered CA; the newest list of each CA is used."""
    parsed = cert_registry.read_crl(file.read_bytes(), str(file))

    async def work(conn: Connection) -> tuple[RevocationList, bool]:
        return await cert_registry.import_crl(conn, parsed)

    row, new = with_database(settings, work)
    if as_json:
        print_json(
            {"sha256": row.sha256.hex(), "issuer": row.issuer, "revoked": row.revoked_count, "new": new}
        )
        return
    click.echo(
        f"{'imported' if new else 'already known'}: revocation list of {row.issuer} "
        f"({row.revoked_count} revoked, issued {row.this_update:%Y-%m-%d %H:%M} UTC) {row.sha256.hex()}"
    )
