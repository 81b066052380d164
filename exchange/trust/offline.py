"""Verifying a package without a server: its envelope signature and the signatures inside its PDFs.

What ``exchange check --verify`` runs, so that a DMS vendor sees before connecting what the axis
(or a recipient) will conclude: the same transit-aware envelope check as intake
(``exchange.trust.signatures``) and the same bounded PDF validation (``exchange.trust.pdf_bounded``).
The given CA certificates are trusted for both kinds of signature.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from exchange.edxml.model import Edoc
from exchange.edxml.package import ParsedPackage
from exchange.trust.pdf_bounded import validate_attachments
from exchange.trust.pdf_signatures import AttachmentReport, DocumentTrust, PdfLimits, PdfVerdict, items_of
from exchange.trust.signatures import SignatureVerdict, TrustMaterial, Verdict, verify_signature


@dataclass(frozen=True)
class OfflineVerdict:
    envelope: SignatureVerdict
    attachments: AttachmentReport | None

    @property
    def passed(self) -> bool:
        """No signature that is there fails: an absent envelope signature or an unsigned PDF is no failure."""
        if self.envelope.verdict in (Verdict.INVALID, Verdict.UNTRUSTED):
            return False
        if self.attachments is None:
            return True
        return all(
            signature.verdict == PdfVerdict.VALID
            for attachment in self.attachments.attachments
            for signature in attachment.signatures
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "envelope": self.envelope.as_dict(),
            "attachments": None if self.attachments is None else self.attachments.as_dict(),
        }


def verify_offline(
    parsed: ParsedPackage,
    cas: list[x509.Certificate],
    crls: list[bytes],
    at: datetime | None = None,
    limits: PdfLimits | None = None,
) -> OfflineVerdict:
    """Judge one parsed package as of ``at`` (now) against ``cas`` and the revocation lists ``crls``."""
    at = at or datetime.now(UTC)
    sender = parsed.model.sender.organ_id
    envelope = verify_signature(parsed.root, sender, TrustMaterial(trusted_cas=tuple(cas)), at)
    if not isinstance(parsed.model, Edoc):
        return OfflineVerdict(envelope, None)
    trust = DocumentTrust(tuple(c.public_bytes(serialization.Encoding.DER) for c in cas), tuple(crls))
    report = asyncio.run(
        validate_attachments(items_of(parsed.model), trust, sender, at, limits or PdfLimits())
    )
    return OfflineVerdict(envelope, report)


def read_crl(data: bytes) -> bytes:
    """A CRL file (PEM or DER) as DER; ValueError when it is none."""
    if b"-----BEGIN X509 CRL-----" in data:
        return x509.load_pem_x509_crl(data).public_bytes(serialization.Encoding.DER)
    return x509.load_der_x509_crl(data).public_bytes(serialization.Encoding.DER)
