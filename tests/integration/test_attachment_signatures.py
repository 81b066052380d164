"""Signatures inside attachments at intake: trust set up by the CLI, the per-agency policy, and where the
verdicts show (message JSON, trace, metrics)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509

from exchange import cert_registry, registry
from exchange.edxml.builder import build_edoc
from exchange.edxml.model import Attachment, Reference
from exchange.evidence import canonical_zip, verify_bundle
from exchange.model import Role
from exchange.trust import devca
from tests.edxml_factories import small_edoc
from tests.integration.conftest import bearer, count
from tests.integration.test_cli_registry import cli
from tests.integration.test_cli_registry import count as count_rows
from tests.integration.test_evidence import unzip
from tests.pdf_factories import SENDER, DocumentPki

RECIPIENT = "000.00.00.G22"
DOC = f"{SENDER},2026/11/30,88/SNV-VP"


@pytest.fixture(scope="module")
def pki() -> DocumentPki:
    return DocumentPki()


def package(pdf: bytes, document_id: str = DOC, extra: tuple[Attachment, ...] = ()) -> bytes:
    edoc = small_edoc(sender=SENDER, recipients=(RECIPIENT,), document_id=document_id)
    attachment = Attachment(
        "cid:1",
        base64.b64encode(pdf).decode(),
        attachment_name="quyet-dinh.pdf",
        content_type="application/pdf",
    )
    references = (
        Reference("cid:1", "application/pdf", attachment_name="quyet-dinh.pdf"),
        *tuple(
            Reference(a.content_id, a.content_type or "", attachment_name=a.attachment_name) for a in extra
        ),
    )
    return build_edoc(replace(edoc, attachments=(attachment, *extra), references=references))


async def setup(conn: asyncpg.Connection, pki: DocumentPki, policy: str) -> tuple[str, str]:
    await registry.add_agencies(
        conn,
        [
            registry.AgencyInput(
                {"organ_id": SENDER, "name": "Sở Nội vụ", "attachment_signature_policy": policy}
            ),
            registry.AgencyInput({"organ_id": RECIPIENT, "name": "Văn phòng Chính phủ"}),
        ],
    )
    await cert_registry.import_certificates(conn, [pki.ca.certificate], organ_id=None, purpose="document")
    sender = (await registry.add_system(conn, "dms-snv", Role.SYSTEM, [SENDER])).api_key
    auditor = (await registry.add_system(conn, "auditor", Role.AUDITOR)).api_key
    return sender, auditor


async def test_official_required_refuses_and_stores_nothing_then_accepts_the_signed_document(
    client: TestClient, conn: asyncpg.Connection, pki: DocumentPki
) -> None:
    sender, auditor = await setup(conn, pki, "official-required")
    person_only = devca.sign_pdf(devca.make_pdf(), pki.person(), field_name="NguoiKy", chain=(pki.ca,))
    refused = await client.post("/v1/packages", data=package(person_only), headers=bearer(sender))
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert error["code"] == "document_not_official"
    assert error["details"][0]["reason"] == (
        "main document quyet-dinh.pdf: no signature of an organisation (the agency's seal)"
    )
    for table in ("messages", "deliveries", "audit_log", "message_attachment_reports"):
        assert await count(conn, table) == 0, table

    accepted = await client.post("/v1/packages", data=package(pki.official()), headers=bearer(sender))
    assert accepted.status == 201
    message_id = (await accepted.json())["message_id"]
    view = await (await client.get(f"/v1/messages/{message_id}", headers=bearer(auditor))).json()
    [attachment] = view["attachments"]
    assert attachment["official"] is True
    assert attachment["name"] == "quyet-dinh.pdf"
    assert [(s["verdict"], s["kind"], s["organ_id"]) for s in attachment["signatures"]] == [
        ("valid", "person", SENDER),
        ("valid", "organization", SENDER),
    ]
    assert attachment["signatures"][1]["covers_whole_document"] is True
    assert view["official_document"]["official"] is True

    trace = await (await client.get(f"/v1/messages/{message_id}/trace", headers=bearer(auditor))).json()
    [checked] = [e for e in trace["events"] if e["action"] == "attachments.checked"]
    assert checked["details"]["official"] is True
    assert checked["details"]["attachments"][0]["signatures"][1]["signer"] == "Sở Nội vụ"

    metrics = await (await client.get("/metrics", headers=bearer(auditor))).text()
    assert 'exchange_attachment_signature_verdicts_total{verdict="valid"} 2.0' in metrics
    assert 'exchange_official_documents_total{official="true"} 1.0' in metrics


async def test_record_keeps_the_verdicts_and_refuses_nothing(
    client: TestClient, conn: asyncpg.Connection, pki: DocumentPki
) -> None:
    sender, auditor = await setup(conn, pki, "record")
    stranger = DocumentPki(devca.make_ca("Unknown CA"))
    sheet = Attachment(
        "cid:2", base64.b64encode(b"a;b\n1;2\n").decode(), attachment_name="bang.csv", content_type="text/csv"
    )
    response = await client.post(
        "/v1/packages", data=package(stranger.official(), extra=(sheet,)), headers=bearer(sender)
    )
    assert response.status == 201
    view = await (
        await client.get(f"/v1/messages/{(await response.json())['message_id']}", headers=bearer(auditor))
    ).json()
    pdf, csv = view["attachments"]
    assert [s["verdict"] for s in pdf["signatures"]] == ["untrusted", "untrusted"]
    assert "does not chain to a trusted document CA (issuer: Unknown CA)" in pdf["signatures"][0]["reason"]
    assert pdf["official"] is False
    assert (csv["signable"], csv["signatures"], csv["official"]) == (False, [], False)
    assert csv["official_reason"].startswith("not signable here")
    assert view["official_document"]["reason"].startswith(
        "main document quyet-dinh.pdf: the person's signature"
    )


async def test_the_envelope_trust_store_does_not_trust_document_cas(
    conn: asyncpg.Connection, pki: DocumentPki, settings
) -> None:  # type: ignore[no-untyped-def]
    await setup(conn, pki, "record")
    _, material = await cert_registry.trust_for_sender(conn, SENDER, settings.trust)
    assert pki.ca.certificate not in material.trusted_cas
    _, trust = await cert_registry.document_trust_for_sender(conn, SENDER, settings.trust)
    assert trust.roots == (pki.ca.cert_der(),)


def test_cli_registers_document_cas_crls_and_the_agency_policy(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], pki: DocumentPki
) -> None:
    ca_file = tmp_path / "document-ca.pem"
    ca_file.write_bytes(pki.ca.cert_pem())
    status, out, err = cli(
        capsys, database_url, "cert", "import", str(ca_file), "--ca", "--purpose", "document"
    )
    assert status == 0, err
    assert "trusted CA for document signatures" in out
    status, out, _ = cli(capsys, database_url, "cert", "list", "--json")
    [listed] = json.loads(out)["certificates"]
    assert (listed["role"], listed["purpose"]) == ("ca", "document")

    revoked = pki.person()
    crl = tmp_path / "document-ca.crl"
    crl.write_bytes(devca.make_crl(pki.ca, [(revoked.certificate, datetime.now(UTC))]))
    status, out, err = cli(capsys, database_url, "cert", "crl", "import", str(crl), "--json")
    assert status == 0, err
    assert json.loads(out)["revoked"] == 1
    assert count_rows(database_url, "certificate_revocation_lists") == 1

    foreign = tmp_path / "foreign.crl"
    foreign.write_bytes(devca.make_crl(devca.make_ca("Nobody CA"), []))
    status, _, err = cli(capsys, database_url, "cert", "crl", "import", str(foreign))
    assert status == 1
    assert "not a registered CA" in err
    assert count_rows(database_url, "certificate_revocation_lists") == 1

    status, _, err = cli(
        capsys,
        database_url,
        "agency",
        "add",
        SENDER,
        "--name",
        "Sở Nội vụ",
        "--attachment-signature-policy",
        "official-required",
    )
    assert status == 0, err
    status, out, _ = cli(capsys, database_url, "agency", "list", "--json")
    assert json.loads(out)["agencies"][0]["attachment_signature_policy"] == "official-required"
    status, _, err = cli(
        capsys,
        database_url,
        "agency",
        "add",
        "000.00.02.H26",
        "--name",
        "x",
        "--attachment-signature-policy",
        "maybe",
    )
    assert status == 2


async def test_the_evidence_bundle_carries_a_validation_report_checked_offline(
    client: TestClient, conn: asyncpg.Connection, pki: DocumentPki, dev_pki: dict[str, Path]
) -> None:
    sender, auditor = await setup(conn, pki, "official-required")
    accepted = await client.post("/v1/packages", data=package(pki.official()), headers=bearer(sender))
    message_id = (await accepted.json())["message_id"]
    # Asked for while the background sealer may be at work: the request waits for it rather than 409.
    response = await client.get(f"/v1/messages/{message_id}/evidence", headers=bearer(auditor))
    assert response.status == 200
    bundle = await response.read()
    axis = x509.load_pem_x509_certificate(dev_pki["axis"].read_bytes())
    report = verify_bundle(bundle, axis)
    assert report.valid, report.problems
    assert report.checked[-1] == "attachments"
    files = unzip(bundle)
    validation = json.loads(files["attachment-validation.json"])
    assert validation["report"]["official"] is True
    assert [s["verdict"] for s in validation["report"]["attachments"][0]["signatures"]] == ["valid", "valid"]

    # A forger who rewrites the report and the manifest consistently is caught by the chain.
    validation["report"]["attachments"][0]["signatures"][1]["signer"] = "Người khác"
    forged = dict(files)
    forged["attachment-validation.json"] = json.dumps(validation).encode()
    manifest = json.loads(forged.pop("manifest.json"))
    manifest["files"]["attachment-validation.json"] = hashlib.sha256(
        forged["attachment-validation.json"]
    ).hexdigest()
    forged["manifest.json"] = json.dumps(manifest, indent=2).encode()
    problems = verify_bundle(canonical_zip(list(forged.items())), axis).problems
    recorded = "attachment-validation.json is not the report the audit chain recorded at receipt"
    assert problems == ["manifest.json is not the manifest the axis signed", recorded]
    del forged["manifest.jws"]  # stripped of the manifest's signature too: the chain still tells
    assert verify_bundle(canonical_zip(list(forged.items())), axis).problems == [recorded]

    # Trusting a different document CA offline gives other verdicts, and says so.
    validation = json.loads(files["attachment-validation.json"])
    validation["trust"]["roots"] = [base64.b64encode(devca.make_ca("Other CA").cert_der()).decode()]
    forged["attachment-validation.json"] = json.dumps(validation).encode()
    manifest["files"]["attachment-validation.json"] = hashlib.sha256(
        forged["attachment-validation.json"]
    ).hexdigest()
    forged["manifest.json"] = json.dumps(manifest, indent=2).encode()
    problems = verify_bundle(canonical_zip(list(forged.items())), axis).problems
    assert problems[0].startswith(
        "quyet-dinh.pdf: the report says [('NguoiKy', 'valid'), ('CoQuan', 'valid')]"
    )
    assert "untrusted" in problems[0]
