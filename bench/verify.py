"""Signature verification throughput: envelopes of 20 KB, 1 MB and 20 MB signed packages, and the
signatures inside 1 MB and 20 MB signed PDF attachments.

    .venv/bin/python bench/verify.py [--seconds 3] [--json]

Packages are signed RSA-SHA256 (2048-bit key) by a development CA certificate, as the
certs script makes them, and checked with the trust layer exactly as intake does
(parse with the hardened parser, then verify_signature); parse time is reported apart.

PDFs are made and signed (a person, then the agency's seal) by the development document CA
and validated as intake does: in a bounded child process (``pdf_bounded``, which includes
starting the process) and, for comparison, in this process (``validate_pdf``, pyHanko alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.edxml_parse import SIZES, package_of, rate
from exchange.edxml.parser import parse_xml
from exchange.trust import devca
from exchange.trust.pdf_bounded import validate_attachments
from exchange.trust.pdf_signatures import DocumentTrust, Item, PdfLimits, validate_pdf
from exchange.trust.signatures import TrustMaterial, Verdict, verify_signature
from exchange.trust.signing import Signer, sign_package

SENDER = "000.00.01.H26"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent on each size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    ca = devca.make_ca()
    leaf = devca.issue_signing_cert(ca, organ_id=SENDER, common_name="Sở Nội vụ")
    signer = Signer(leaf.certificate, leaf.key)
    trust = TrustMaterial(trusted_cas=(ca.certificate,))
    now = datetime.now(UTC)

    results = {}
    for label, size in SIZES.items():
        data = sign_package(package_of(size), signer)
        assert verify_signature(parse_xml(data), SENDER, trust, now).verdict is Verdict.VALID
        verify = rate(lambda data=data: verify_signature(parse_xml(data), SENDER, trust, now), args.seconds)
        parse = rate(lambda data=data: parse_xml(data), args.seconds)
        results[label] = {
            "bytes": len(data),
            "parse_and_verify_per_s": round(verify, 1),
            "parse_only_per_s": round(parse, 1),
            "verify_ms": round(1000 / verify - 1000 / parse, 2),
        }
    attachments = _attachments(args.seconds, now)
    if args.json:
        print(json.dumps({"envelope": results, "attachments": attachments}))
        return
    print(f"{'size':>6} {'bytes':>10} {'parse+verify/s':>15} {'parse/s':>9} {'verify ms':>10}")
    for label, row in results.items():
        print(
            f"{label:>6} {row['bytes']:>10} {row['parse_and_verify_per_s']:>15} {row['parse_only_per_s']:>9} "
            f"{row['verify_ms']:>10}"
        )
    print(f"\n{'PDF':>6} {'bytes':>10} {'bounded/s':>10} {'MB/s':>7} {'in-process/s':>13} {'MB/s':>7}")
    for label, row in attachments.items():
        print(
            f"{label:>6} {row['bytes']:>10} {row['bounded_per_s']:>10} {row['bounded_mb_per_s']:>7} "
            f"{row['in_process_per_s']:>13} {row['in_process_mb_per_s']:>7}"
        )


def _attachments(seconds: float, now: datetime) -> dict[str, dict[str, float | int]]:
    """Two signatures (person, seal) per PDF, validated as intake does and in process."""
    ca = devca.make_ca("Bench Document CA")
    person = devca.issue_document_cert(
        ca, kind="person", common_name="Nguyễn Văn A", organization="Sở Nội vụ", organ_id=SENDER
    )
    seal = devca.issue_document_cert(
        ca, kind="organization", common_name="Sở Nội vụ", organization="Sở Nội vụ", organ_id=SENDER
    )
    trust, limits = DocumentTrust((ca.cert_der(),)), PdfLimits()
    results: dict[str, dict[str, float | int]] = {}
    for label, size in (("1m", 1024 * 1024), ("20m", 20 * 1024 * 1024)):
        pdf = devca.sign_official_pdf(devca.make_pdf(padding=size), person, seal, ca)
        items = [Item("van-ban.pdf", "application/pdf", pdf)]

        def bounded(items: list[Item] = items) -> None:
            report = asyncio.run(validate_attachments(items, trust, SENDER, now, limits))
            assert report.official, report.reason

        bounded()
        per_s = rate(bounded, seconds)
        in_process = rate(lambda pdf=pdf: validate_pdf(pdf, trust, now, limits), seconds)
        mb = len(pdf) / 1e6
        results[label] = {
            "bytes": len(pdf),
            "bounded_per_s": round(per_s, 2),
            "bounded_mb_per_s": round(per_s * mb, 1),
            "in_process_per_s": round(in_process, 2),
            "in_process_mb_per_s": round(in_process * mb, 1),
        }
    return results


if __name__ == "__main__":
    main()
