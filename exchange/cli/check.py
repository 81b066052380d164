"""``exchange check``: the offline conformance report for DMS vendors."""

from __future__ import annotations

from pathlib import Path

import click

from exchange.cli.common import json_option, print_json
from exchange.edxml.check import Report, check_package


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@json_option
def check(files: tuple[Path, ...], as_json: bool) -> int:
    """Check edXML packages against QCVN 102:2016 without a server.

    Prints what each package is (kind, sender, recipients, document id, business
    type, attachments, signature) and every problem with its line and path. Exit
    status 0 only if all files are valid.
    """
    reports = [check_package(str(path), path.read_bytes()) for path in files]
    if as_json:
        print_json({"valid": all(r.valid for r in reports), "files": [r.as_dict() for r in reports]})
    else:
        for report in reports:
            _print_report(report)
    return 0 if all(report.valid for report in reports) else 1


def _print_report(report: Report) -> None:
    verdict = f"valid {report.kind} package" if report.valid else f"INVALID ({report.error_code})"
    click.echo(f"{report.name}: {verdict}")
    rows = [
        ("sender", report.sender),
        ("recipients", ", ".join(report.recipients) or None),
        ("document id", report.document_id),
        ("business type", report.business_type),
        ("status", report.status_code),
    ]
    for label, value in rows:
        if value:
            click.echo(f"  {label:<14}{value}")
    for attachment in report.attachments:
        zipped = ", unzipped" if attachment["was_zipped"] else ""
        click.echo(
            f"  {'attachment':<14}{attachment['name']} ({attachment['content_type'] or 'unknown type'}, "
            f"{attachment['bytes']} bytes{zipped})"
        )
    if report.kind is not None:
        if report.signatures:
            for slot in report.signatures:
                state = "empty" if slot["empty"] else "present (not verified offline)"
                click.echo(f"  {'signature':<14}{state}, {slot['layout']} layout, line {slot['line']}")
        else:
            click.echo(f"  {'signature':<14}absent")
    for problem in report.problems:
        click.echo(f"  problem       {problem}")
