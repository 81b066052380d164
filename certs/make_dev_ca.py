"""Make a development PKI: a CA, the axis's certificates and one signing certificate per demo agency,
and a document CA with a person's and the agency's PDF-signing certificates per demo agency.

For development and tests only; see certs/README.md. Usage: python certs/make_dev_ca.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from exchange.demo import AGENCIES
from exchange.trust.devca import write_dev_document_pki, write_dev_pki


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("var/dev-pki"),
        metavar="DIR",
        help="directory to write into (default: var/dev-pki); existing files are overwritten",
    )
    args = parser.parse_args(argv)
    agencies = [(organ_id, name) for organ_id, name, _, _ in AGENCIES]
    written = write_dev_pki(args.out, agencies)
    written.update(write_dev_document_pki(args.out / "documents", agencies))
    for label, path in written.items():
        print(f"{label:<28} {path}")


if __name__ == "__main__":
    main()
