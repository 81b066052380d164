"""``exchange check``: the offline conformance report for DMS vendors."""

from __future__ import annotations

from pathlib import Path

import click

from exchange.cli.common import json_option, print_json
from exchange.edxml.check import Report, check_package
from exchange.edxml.package import parse_package
from exchange.trust.certificates import load_certificates
from exchange.trust.offline import OfflineVerdict, read_crl, verify_offline

_VERIFY_HELP = (
    "Also verify the envelope's XML signature (transit-aware: TraceHeaders appended by axes are undone) "
    "and every signature inside the PDF attachments, offline."
)


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--verify", is_flag=True, help=_VERIFY_HELP)
@click.option(
    "--ca",
    "ca_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CA certificate (PEM or DER) trusted for both kinds of signature; repeatable.",
)
@click.option(
    "--crl",
    "crl_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A certificate revocation list (PEM or DER) to check signers against; repeatable.",
)
@json_option
def check(
    files: tuple[Path, ...],
    verify: bool,
    ca_files: tuple[Path, ...],
    crl_files: tuple[Path, ...],
    as_json: bool,
) -> int:
    """Check edXML packages against QCVN 102:2016 without a server.

    Prints what each package is (kind, sender, recipients, document id, business
    type, attachments, signature) and every problem with its line and path. With
    --verify, also the verdict of the envelope signature and of every signature inside
    the attached PDFs, and whether the main document is official. Exit status 0 only if
    all files are valid and, with --verify, no signature present fails.
    """
    if (ca_files or crl_files) and not verify:
        raise click.UsageError("--ca and --crl go with --verify")
    try:
        cas = [c for path in ca_files for c in load_certificates(path.read_bytes())]
        crls = [read_crl(path.read_bytes()) for path in crl_files]
    except ValueError as exc:
        raise click.UsageError(f"a --ca or --crl file cannot be read: {exc}") from None
    reports = []
    for path in files:
        data = path.read_bytes()
        report = check_package(str(path), data)
        verdict = verify_offline(parse_package(data), cas, crls) if verify and report.kind else None
        reports.append((report, verdict))
    passed = all(r.valid and (v is None or v.passed) for r, v in reports)
    if as_json:
        print_json(
            {
                "valid": passed,
                "files": [
                    {**r.as_dict(), **({"verification": v.as_dict()} if v is not None else {})}
                    for r, v in reports
                ],
            }
        )
    else:
        for report, verdict in reports:
            _print_report(report)
            if verdict is not None:
                _print_verdict(verdict)
    return 0 if passed else 1


def _print_verdict(verdict: OfflineVerdict) -> None:
    envelope = verdict.envelope
    click.echo(f"  {'envelope':<14}{envelope.verdict.value}: {envelope.reason}")
    if verdict.attachments is None:
        return
    for attachment in verdict.attachments.attachments:
        if not attachment.signable:
            click.echo(f"  {'pdf':<14}{attachment.name}: not signable here (not a PDF)")
            continue
        if not attachment.signatures:
            click.echo(f"  {'pdf':<14}{attachment.name}: {attachment.official_reason}")
        for s in attachment.signatures:
            who = f"{s.kind or '?'} {s.signer or '?'} ({s.organ_id or 'no OrganId'})"
            click.echo(f"  {'pdf':<14}{attachment.name} [{s.field or '-'}] {who}: {s.verdict}: {s.reason}")
    state = "official" if verdict.attachments.official else "NOT official"
    click.echo(f"  {'document':<14}{state}: {verdict.attachments.reason}")


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
