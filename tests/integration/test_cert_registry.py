"""The certificate registry: import, refusal reasons, revocation, and trust for a sender."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exchange import cert_registry, registry
from exchange.cli import run
from exchange.model import Role, SignaturePolicy
from exchange.settings import TrustSettings
from exchange.trust import devca
from exchange.trust.certificates import fingerprint
from tests.conftest import run_sync
from tests.integration.conftest import KeyMaker, bearer

NOW = datetime.now(UTC)


def cli(capsys: pytest.CaptureFixture[str], database_url: str, *argv: str) -> tuple[int, str, str]:
    status = run([*argv, "--database-url", database_url])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def certificates_stored(database_url: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM certificates"))
        finally:
            await conn.close()

    return run_sync(count)


@pytest.fixture
def registered_city(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, database_url, "agency", "add", "000.00.00.H26", "--name", "City")[0] == 0


def write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def test_import_list_and_revoke_through_the_cli(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], registered_city: None
) -> None:
    ca = devca.make_ca()
    agency = devca.issue_signing_cert(ca, organ_id="000.00.00.H26", common_name="City clerk")
    chain = write(tmp_path, "chain.pem", agency.cert_pem() + ca.cert_pem())

    status, out, err = cli(
        capsys, database_url, "cert", "import", write(tmp_path, "ca.pem", ca.cert_pem()), "--ca", "--json"
    )
    assert status == 0, err
    assert json.loads(out)["imported"][0]["fingerprint"] == fingerprint(ca.certificate).hex()
    status, out, _ = cli(capsys, database_url, "cert", "import", chain, "--agency", "000.00.00.H26")
    assert status == 0
    assert out.startswith("imported: ")  # the leaf is pinned; the CA in the chain file is skipped
    status, out, _ = cli(capsys, database_url, "cert", "import", chain, "--agency", "000.00.00.H26")
    assert out.startswith("already known: ")

    status, out, _ = cli(capsys, database_url, "cert", "list", "--json")
    listed = {c["role"]: c for c in json.loads(out)["certificates"]}
    assert set(listed) == {"ca", "agency"}
    assert listed["agency"]["organ_id"] == "000.00.00.H26"

    agency_der = write(tmp_path, "agency.der", agency.cert_der())
    status, out, _ = cli(capsys, database_url, "cert", "revoke", agency_der, "--reason", "key lost", "--json")
    assert json.loads(out) == {"revoked": fingerprint(agency.certificate).hex()}
    status, out, _ = cli(capsys, database_url, "cert", "list", "--json")
    revoked = next(c for c in json.loads(out)["certificates"] if c["role"] == "agency")
    assert revoked["revocation_reason"] == "key lost"
    assert revoked["revoked_at"] is not None


def test_refusals_name_the_reason_and_store_nothing(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], registered_city: None
) -> None:
    ca = devca.make_ca()
    expired = devca.issue_signing_cert(
        ca,
        organ_id="000.00.00.H26",
        common_name="Old clerk",
        not_before=NOW - timedelta(days=900),
        not_after=NOW - timedelta(days=1),
    )
    tls_only = devca.issue_signing_cert(
        ca, organ_id="000.00.00.H26", common_name="TLS only", key_usage="encipherment"
    )
    cases = [
        (write(tmp_path, "expired.pem", expired.cert_pem()), ["--agency", "000.00.00.H26"], "expired on"),
        (
            write(tmp_path, "tls.pem", tls_only.cert_pem()),
            ["--agency", "000.00.00.H26"],
            "not a signing certificate",
        ),
        (write(tmp_path, "leaf.pem", tls_only.cert_pem()), ["--ca"], "not a CA certificate"),
        (
            write(tmp_path, "garbage.pem", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
            ["--ca"],
            "no readable PEM or DER certificate",
        ),
        (
            write(tmp_path, "random.der", b"\x30\x03\x02\x01\x01"),
            ["--ca"],
            "no readable PEM or DER certificate",
        ),
        (write(tmp_path, "other.pem", ca.cert_pem()), ["--agency", "000.00.99.H26"], "not registered"),
    ]
    for path, flags, reason in cases:
        status, out, err = cli(capsys, database_url, "cert", "import", path, *flags)
        assert status == 1, (path, out)
        assert reason in err, (path, err)
        assert "Traceback" not in err
    assert certificates_stored(database_url) == 0

    assert cli(capsys, database_url, "cert", "import", cases[0][0])[0] == 2
    assert (
        cli(capsys, database_url, "cert", "import", cases[0][0], "--ca", "--agency", "000.00.00.H26")[0] == 2
    )
    status, _, err = cli(capsys, database_url, "cert", "revoke", "00" * 32)
    assert status == 1
    assert "give the certificate file" in err


async def test_trust_for_a_sender(conn: asyncpg.Connection) -> None:
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput({"organ_id": "000.00.00.H26", "name": "City"}),
            registry.AgencyInput(
                {
                    "organ_id": "000.00.01.H26",
                    "name": "Dept",
                    "signature_policy": "required",
                    "allow_sha1": "true",
                }
            ),
        ],
    )
    ca = devca.make_ca()
    pinned = devca.issue_signing_cert(ca, organ_id=None, common_name="Dept clerk")
    await cert_registry.import_certificates(conn, [ca.certificate], organ_id=None)
    await cert_registry.import_certificates(conn, [pinned.certificate], organ_id="000.00.01.H26")

    policy, trust = await cert_registry.trust_for_sender(conn, "000.00.01.H26", TrustSettings())
    assert policy is SignaturePolicy.REQUIRED
    assert trust.allow_sha1 is True
    assert [fingerprint(c) for c in trust.trusted_cas] == [fingerprint(ca.certificate)]
    assert trust.pinned == {fingerprint(pinned.certificate)}

    policy, trust = await cert_registry.trust_for_sender(
        conn, "000.00.00.H26", TrustSettings(default_signature_policy="record")
    )
    assert (policy, trust.allow_sha1, trust.pinned) == (SignaturePolicy.RECORD, False, frozenset())

    await cert_registry.revoke_certificate(conn, fingerprint=fingerprint(pinned.certificate))
    _, trust = await cert_registry.trust_for_sender(conn, "000.00.01.H26", TrustSettings())
    assert trust.pinned == frozenset()
    assert fingerprint(pinned.certificate) in trust.revoked


async def test_the_axis_certificate_is_published(
    client: TestClient, make_key: KeyMaker, dev_pki: dict[str, Path]
) -> None:
    response = await client.get("/v1/axis/certificate", headers=bearer(await make_key(Role.SYSTEM)))
    assert response.status == 200
    published = await response.read()
    # The axis certificate first, then the receipt certificate it issued (ES256 receipts, the default).
    assert published.startswith(dev_pki["axis"].read_bytes())
    axis, receipts = x509.load_pem_x509_certificates(published)
    assert axis.public_bytes(serialization.Encoding.PEM) == dev_pki["axis"].read_bytes()
    receipts.verify_directly_issued_by(axis)
    assert isinstance(receipts.public_key(), ec.EllipticCurvePublicKey)
