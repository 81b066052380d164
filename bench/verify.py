"""Signature verification throughput for 20 KB, 1 MB and 20 MB signed packages.

    .venv/bin/python bench/verify.py [--seconds 3] [--json]

Packages are signed RSA-SHA256 (2048-bit key) by a development CA certificate, as the
certs script makes them, and checked with the trust layer exactly as intake does
(parse with the hardened parser, then verify_signature); parse time is reported apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.edxml_parse import SIZES, package_of, rate
from exchange.edxml.parser import parse_xml
from exchange.trust import devca
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
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'size':>6} {'bytes':>10} {'parse+verify/s':>15} {'parse/s':>9} {'verify ms':>10}")
    for label, row in results.items():
        print(
            f"{label:>6} {row['bytes']:>10} {row['parse_and_verify_per_s']:>15} {row['parse_only_per_s']:>9} "
            f"{row['verify_ms']:>10}"
        )


if __name__ == "__main__":
    main()
