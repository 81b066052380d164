"""``exchange evidence``: checking an evidence bundle offline."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from exchange.cli.common import json_option, print_json
from exchange.evidence import verify_bundle


@click.group()
def evidence() -> None:
    """Evidence bundles (GET /v1/messages/{id}/evidence)."""


@evidence.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The axis certificate, obtained separately (default: the copy inside the bundle).",
)
@json_option
def verify(bundle: Path, certificate: Path | None, as_json: bool) -> int:
    """Check a bundle without the server: hashes, the manifest's, receipt's and checkpoint's
    signatures, the chain segment, the trace. Exit 0: valid and fully proven; 1: invalid;
    3: valid as far as it goes, but some of it is not proven (an unsigned manifest)."""
    axis = x509.load_pem_x509_certificate(certificate.read_bytes()) if certificate else None
    report = verify_bundle(bundle.read_bytes(), axis)
    if as_json:
        print_json(report.as_dict())
    else:
        source = "the given certificate" if certificate else "the certificate inside the bundle"
        if report.valid:
            headline = "valid evidence" if report.proven else "valid but NOT FULLY PROVEN evidence"
            click.echo(
                f"{bundle}: {headline} for message {report.message_id} "
                f"({', '.join(report.checked)} checked with {source})"
            )
            for caveat in report.unproven:
                click.echo(f"  not proven: {caveat}")
        else:
            click.echo(f"{bundle}: INVALID")
            for problem in report.problems:
                click.echo(f"  {problem}")
    if report.proven:
        return 0
    return 3 if report.valid else 1
