"""``exchange check --verify``: the envelope and attachment signatures judged offline, as the axis would."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchange.cli import run
from exchange.edxml.builder import build_edoc
from exchange.edxml.model import Attachment, Reference
from exchange.edxml.trace import append_trace_header
from exchange.trust import devca
from exchange.trust.signing import Signer, sign_package
from tests.edxml_factories import small_edoc
from tests.pdf_factories import SENDER, DocumentPki, change_signed_byte


@pytest.fixture(scope="module")
def pki() -> DocumentPki:
    return DocumentPki()


def signed_package(pki: DocumentPki, pdf: bytes) -> bytes:
    envelope = devca.issue_signing_cert(pki.ca, organ_id=SENDER, common_name="Sở Nội vụ (văn thư)")
    edoc = replace(
        small_edoc(sender=SENDER),
        attachments=(
            Attachment(
                "cid:1",
                base64.b64encode(pdf).decode(),
                attachment_name="qd.pdf",
                content_type="application/pdf",
            ),
        ),
        references=(Reference("cid:1", "application/pdf", attachment_name="qd.pdf"),),
    )
    return sign_package(build_edoc(edoc), Signer(envelope.certificate, envelope.key))


def files(tmp_path: Path, pki: DocumentPki, package: bytes) -> tuple[str, str]:
    (tmp_path / "ca.pem").write_bytes(pki.ca.cert_pem())
    (tmp_path / "package.edxml").write_bytes(package)
    return str(tmp_path / "ca.pem"), str(tmp_path / "package.edxml")


def test_a_signed_package_after_one_hop_passes(
    tmp_path: Path, pki: DocumentPki, capsys: pytest.CaptureFixture[str]
) -> None:
    downloaded = append_trace_header(signed_package(pki, pki.official()), "000.00.00.H26", datetime.now(UTC))
    ca, package = files(tmp_path, pki, downloaded)
    assert run(["check", "--verify", "--ca", ca, package]) == 0
    out = capsys.readouterr().out
    [envelope] = [line for line in out.splitlines() if line.startswith("  envelope")]
    assert envelope.startswith("  envelope      valid: signed by Sở Nội vụ (văn thư) for 000.00.01.H26")
    assert envelope.endswith("; signed before 1 transit hop")
    assert "[CoQuan] organization Sở Nội vụ (000.00.01.H26): valid" in out
    assert "document      official: main document qd.pdf: signed by" in out


def test_without_the_ca_nothing_is_trusted_and_the_status_is_1(
    tmp_path: Path, pki: DocumentPki, capsys: pytest.CaptureFixture[str]
) -> None:
    _, package = files(tmp_path, pki, signed_package(pki, pki.official()))
    assert run(["check", "--verify", package, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    verification = report["files"][0]["verification"]
    assert verification["envelope"]["verdict"] == "untrusted"
    assert [s["verdict"] for s in verification["attachments"]["attachments"][0]["signatures"]] == [
        "untrusted",
        "untrusted",
    ]


def test_a_changed_pdf_fails(tmp_path: Path, pki: DocumentPki, capsys: pytest.CaptureFixture[str]) -> None:
    ca, package = files(tmp_path, pki, signed_package(pki, change_signed_byte(pki.official())))
    assert run(["check", "--verify", "--ca", ca, package]) == 1
    out = capsys.readouterr().out
    assert "envelope      valid" in out  # the envelope was signed over the changed PDF
    assert "invalid: the signed bytes were changed after signing (digest mismatch)" in out
    assert "document      NOT official" in out


def test_ca_without_verify_is_a_usage_error(tmp_path: Path, pki: DocumentPki) -> None:
    ca, package = files(tmp_path, pki, signed_package(pki, pki.official()))
    assert run(["check", "--ca", ca, package]) == 2
