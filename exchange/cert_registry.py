"""The certificate registry: importing trust anchors and agency certificates, revoking, and
gathering what signature checks need for one sender."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509

from exchange.errors import ErrorDetail, InvalidInput, NotFound
from exchange.model import SignaturePolicy
from exchange.settings import TrustSettings
from exchange.store import agencies as agency_store
from exchange.store import certificates as certificate_store
from exchange.store.db import Connection
from exchange.trust.certificates import CertificateFacts, der, describe, import_problem, is_ca_certificate
from exchange.trust.certificates import load_certificates as parse_certificates
from exchange.trust.signatures import TrustMaterial


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
) -> list[tuple[CertificateFacts, bool]]:
    """Register trust anchors (``organ_id`` None) or pin certificates to an agency; all or nothing.

    With an agency, CA certificates in the file (its chain) are skipped; every other one is
    pinned. Returns each registered certificate and whether it was new.
    """
    at = at or datetime.now(UTC)
    as_ca = organ_id is None
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
                conn, facts, "ca" if as_ca else "agency", organ_id, der(certificate)
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
            x509.load_der_x509_certificate(d) for d in await certificate_store.trusted_ca_ders(conn)
        ),
        pinned=frozenset(await certificate_store.pinned_fingerprints(conn, organ_id)),
        revoked=frozenset(await certificate_store.revoked_fingerprints(conn)),
        allow_sha1=settings.allow_legacy_sha1 if allow_sha1 is None else allow_sha1,
    )
    return policy or SignaturePolicy(settings.default_signature_policy), material
