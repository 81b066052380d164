"""The certificate registry: importing trust anchors (for envelope or document signatures), agency
certificates and revocation lists, revoking, and gathering what signature checks need for one sender."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from exchange.errors import ErrorDetail, InvalidInput, NotFound
from exchange.model import AttachmentSignaturePolicy, SignaturePolicy
from exchange.settings import TrustSettings
from exchange.store import agencies as agency_store
from exchange.store import certificates as certificate_store
from exchange.store import revocation_lists as crl_store
from exchange.store.db import Connection
from exchange.trust.certificates import CertificateFacts, der, describe, import_problem, is_ca_certificate
from exchange.trust.certificates import load_certificates as parse_certificates
from exchange.trust.pdf_signatures import DocumentTrust, PdfLimits
from exchange.trust.signatures import TrustMaterial

PURPOSES = ("envelope", "document")


def read_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        return parse_certificates(data)
    except ValueError as exc:
        raise InvalidInput(f"{source} holds no readable PEM or DER certificate: {exc}") from None


async def import_certificates(
    conn: Connection,
    certificates: list[x509.Certificate],
    *,
    organ_id: str | None,
    at: datetime | None = None,
    purpose: str = "envelope",
) -> list[tuple[CertificateFacts, bool]]:
    """Register trust anchors (``organ_id`` None) or pin certificates to an agency; all or nothing.

    ``purpose`` says which signatures a trust anchor is for: the edXML envelope's, or those inside
    attached documents; one CA is never trusted for both unless imported twice.

    With an agency, CA certificates in the file (its chain) are skipped; every other one is
    pinned. Returns each registered certificate and whether it was new.
    """
    at = at or datetime.now(UTC)
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    as_ca = organ_id is None
    if not as_ca and purpose != "envelope":
        raise InvalidInput("only CAs are registered for document signatures (use --ca --purpose document)")
    if not as_ca:
        assert organ_id is not None
        if not await agency_store.existing_organ_ids(conn, [organ_id]):
            raise NotFound(f"agency {organ_id} is not registered")
        certificates = [c for c in certificates if not is_ca_certificate(c)]
        if not certificates:
            raise InvalidInput("the file holds only CA certificates; import those with --ca")
    problems = [
        ErrorDetail(f"certificate {index} ({describe(certificate)}) is refused: {problem}")
        for index, certificate in enumerate(certificates, start=1)
        if (problem := import_problem(certificate, as_ca, at)) is not None
    ]
    if problems:
        raise InvalidInput("nothing imported", problems)
    results = []
    async with conn.transaction():
        for certificate in certificates:
            facts = CertificateFacts.of(certificate)
            new = await certificate_store.insert_certificate(
                conn, facts, "ca" if as_ca else "agency", organ_id, der(certificate), purpose
            )
            results.append((facts, new))
    return results


async def revoke_certificate(
    conn: Connection,
    *,
    fingerprint: bytes | None = None,
    certificate: x509.Certificate | None = None,
    reason: str | None = None,
) -> bytes:
    """Mark a certificate revoked; an unknown one given in full is recorded first."""
    async with conn.transaction():
        if certificate is not None:
            facts = CertificateFacts.of(certificate)
            fingerprint = facts.fingerprint
            await certificate_store.insert_certificate(conn, facts, "known", None, der(certificate))
        assert fingerprint is not None
        if not await certificate_store.revoke(conn, fingerprint, reason):
            raise NotFound(f"no certificate with fingerprint {fingerprint.hex()}; give the certificate file")
    return fingerprint


async def trust_for_sender(
    conn: Connection, organ_id: str, settings: TrustSettings
) -> tuple[SignaturePolicy, TrustMaterial]:
    """The signature policy for packages from ``organ_id`` and the trust material to check them."""
    policy, allow_sha1 = await agency_store.signature_settings(conn, organ_id)
    material = TrustMaterial(
        trusted_cas=tuple(
            x509.load_der_x509_certificate(d)
            for d in await certificate_store.trusted_ca_ders(conn, "envelope")
        ),
        pinned=frozenset(await certificate_store.pinned_fingerprints(conn, organ_id)),
        revoked=frozenset(await certificate_store.revoked_fingerprints(conn)),
        allow_sha1=settings.allow_legacy_sha1 if allow_sha1 is None else allow_sha1,
    )
    return policy or SignaturePolicy(settings.default_signature_policy), material


def read_crl(data: bytes, source: str) -> x509.CertificateRevocationList:
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise InvalidInput(f"{source} holds no readable PEM or DER revocation list: {exc}") from None


async def import_crl(
    conn: Connection, crl: x509.CertificateRevocationList
) -> tuple[crl_store.RevocationList, bool]:
    """Record a revocation list signed by a registered CA; one from anybody else is refused."""
    issuers = [
        ca
        for ca in (x509.load_der_x509_certificate(d) for d in await certificate_store.all_ca_ders(conn))
        if ca.subject == crl.issuer
    ]
    if not issuers:
        raise InvalidInput(
            f"the list is issued by {crl.issuer.rfc4514_string()}, which is not a registered CA"
        )
    if not any(_signed_by(crl, ca) for ca in issuers):
        raise InvalidInput(
            f"the list names {crl.issuer.rfc4514_string()} as its issuer but that CA's key did not sign it"
        )
    data = crl.public_bytes(serialization.Encoding.DER)
    row = crl_store.RevocationList(
        hashlib.sha256(data).digest(),
        crl.issuer.rfc4514_string(),
        crl.last_update_utc,
        crl.next_update_utc,
        len(list(crl)),
        data,
    )
    return row, await crl_store.insert_list(conn, row)


def _signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


async def document_trust_for_sender(
    conn: Connection, organ_id: str, settings: TrustSettings
) -> tuple[AttachmentSignaturePolicy, DocumentTrust]:
    """The attachment signature policy for packages from ``organ_id`` and the document trust store."""
    agencies = await agency_store.agencies_by_ids(conn, [organ_id])
    agency = agencies.get(organ_id)
    policy = agency.attachment_signature_policy if agency is not None else None
    trust = DocumentTrust(
        tuple(await certificate_store.trusted_ca_ders(conn, "document")),
        tuple(crl.der for crl in await crl_store.current_lists(conn)),
        settings.fetch_revocation,
    )
    return policy or AttachmentSignaturePolicy(settings.default_attachment_signature_policy), trust


def pdf_limits(settings: TrustSettings) -> PdfLimits:
    return PdfLimits(
        settings.pdf_max_bytes,
        settings.pdf_max_signatures,
        settings.pdf_max_revisions,
        settings.pdf_timeout_s,
        settings.pdf_max_memory_mb,
    )
