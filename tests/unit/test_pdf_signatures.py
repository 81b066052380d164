"""Signatures inside attached PDFs: every verdict with its reason, the official-document rule, and bounds."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from exchange.edxml.attachments import decode_attachment
from exchange.edxml.model import Attachment
from exchange.trust import devca, pdf_bounded
from exchange.trust.pdf_bounded import validate_attachments
from exchange.trust.pdf_signatures import (
    DocumentTrust,
    Item,
    PdfLimits,
    PdfSignature,
    judge_official,
    signer_kind,
    validate_pdf,
)
from tests.pdf_factories import (
    OTHER,
    SENDER,
    DocumentPki,
    add_annotation,
    add_page,
    change_signed_byte,
    expired_person,
    zipped,
)

LIMITS = PdfLimits()


@pytest.fixture(scope="module")
def pki() -> DocumentPki:
    return DocumentPki()


@pytest.fixture(scope="module")
def official(pki: DocumentPki) -> bytes:
    return pki.official()


def judge(pki: DocumentPki, pdf: bytes, crls: tuple[bytes, ...] = ()) -> list[PdfSignature]:
    return validate_pdf(pdf, pki.trust(crls), datetime.now(UTC), LIMITS)


def report(items: list[Item], trust: DocumentTrust, limits: PdfLimits = LIMITS):  # type: ignore[no-untyped-def]
    return asyncio.run(validate_attachments(items, trust, SENDER, datetime.now(UTC), limits))


def test_person_and_organisation_signatures_make_an_official_document(
    pki: DocumentPki, official: bytes
) -> None:
    person, seal = judge(pki, official)
    assert (person.verdict, person.kind, person.organ_id) == ("valid", "person", SENDER)
    assert (seal.verdict, seal.kind, seal.organ_id) == ("valid", "organization", SENDER)
    assert seal.signer == "Sở Nội vụ"
    assert seal.organization == "Sở Nội vụ"
    assert person.signer is not None
    assert person.signer.startswith("Nguyễn Văn")
    # The seal came after the person's signature: the person's covers its revision plus a signature.
    assert (person.covers_whole_document, person.changes_after) == (False, "signatures")
    assert (seal.covers_whole_document, seal.changes_after) == (True, "none")
    assert person.signed_at is not None
    assert person.signed_at_source == "signer"
    assert abs(datetime.fromisoformat(person.signed_at) - datetime.now(UTC)) < timedelta(minutes=5)
    assert judge_official([person, seal], SENDER) == (
        True,
        f"signed by {person.signer} and sealed by Sở Nội vụ ({SENDER})",
    )


def test_a_timestamp_token_dates_the_signature(pki: DocumentPki) -> None:
    tsa = devca.issue_tsa_cert(pki.ca)
    pdf = devca.sign_pdf(devca.make_pdf(), pki.seal(), field_name="CoQuan", chain=(pki.ca,), timestamp_by=tsa)
    [seal] = judge(pki, pdf)
    assert (seal.verdict, seal.signed_at_source) == ("valid", "timestamp")
    assert "signing time from a timestamp" in seal.reason
    # A timestamp from an authority nobody trusts dates nothing: the signer's own claim is used.
    stranger = devca.issue_tsa_cert(devca.make_ca("Other TSA CA"))
    pdf = devca.sign_pdf(
        devca.make_pdf(), pki.seal(), field_name="CoQuan", chain=(pki.ca,), timestamp_by=stranger
    )
    [seal] = judge(pki, pdf)
    assert seal.signed_at_source == "signer"


def test_signer_kind_is_decided_by_the_certificate(pki: DocumentPki) -> None:
    assert signer_kind(pki.person().certificate).value == "person"
    assert signer_kind(pki.seal().certificate).value == "organization"
    # Without a policy OID the subject decides: CN equal to O is an agency's seal.
    bare = devca.issue_signing_cert(
        pki.ca, organ_id=SENDER, common_name="Exchange development (not for production)"
    )
    assert signer_kind(bare.certificate).value == "organization"


def test_one_signature_only_is_not_official(pki: DocumentPki) -> None:
    pdf = devca.sign_pdf(devca.make_pdf(), pki.person(), field_name="NguoiKy", chain=(pki.ca,))
    [person] = judge(pki, pdf)
    assert person.verdict == "valid"
    assert person.covers_whole_document
    official, reason = judge_official([person], SENDER)
    assert not official
    assert reason == "no signature of an organisation (the agency's seal)"


def test_a_byte_changed_in_the_signed_range_is_invalid(pki: DocumentPki, official: bytes) -> None:
    signatures = judge(pki, change_signed_byte(official))
    assert [s.verdict for s in signatures] == ["invalid", "invalid"]
    assert all("changed after signing (digest mismatch)" in s.reason for s in signatures)
    assert judge_official(signatures, SENDER)[1].startswith("the person's signature is not valid")


def test_an_annotation_added_after_signing_is_seen(pki: DocumentPki, official: bytes) -> None:
    # pyHanko's difference analysis accepts only the annotations it recognises (signature widgets);
    # a note laid over a signed page could hide what was signed, so the signatures no longer hold.
    person, seal = judge(pki, add_annotation(official))
    assert (seal.verdict, seal.covers_whole_document, seal.changes_after) == ("invalid", False, "annotations")
    assert (
        seal.reason
        == "the document was changed after signing: annotations added or removed (0 when signed, 1 now)"
    )
    assert person.changes_after == "annotations"
    official_now, reason = judge_official([person, seal], SENDER)
    assert not official_now
    assert reason.startswith("the person's signature is not valid")


def test_a_page_added_after_signing_invalidates_the_signatures(pki: DocumentPki, official: bytes) -> None:
    person, seal = judge(pki, add_page(official))
    assert (seal.verdict, seal.changes_after, seal.covers_whole_document) == ("invalid", "other", False)
    assert (
        seal.reason == "the document was changed after signing: pages changed (1 page(s) when signed, 2 now)"
    )
    assert person.verdict == "invalid"


def test_a_certificate_expired_at_signing_time_is_untrusted(pki: DocumentPki) -> None:
    pdf = devca.sign_pdf(devca.make_pdf(), expired_person(pki), field_name="NguoiKy", chain=(pki.ca,))
    [person] = judge(pki, pdf)
    assert person.verdict == "untrusted"
    assert "had expired" in person.reason
    assert "when it signed" in person.reason


def test_a_certificate_revoked_by_an_imported_crl_is_untrusted(pki: DocumentPki) -> None:
    revoked = devca.issue_document_cert(
        pki.ca, kind="person", common_name="Lê Văn Thu Hồi", organization="Sở Nội vụ", organ_id=SENDER
    )
    pdf = devca.sign_pdf(devca.make_pdf(), revoked, field_name="NguoiKy", chain=(pki.ca,))
    assert judge(pki, pdf)[0].verdict == "valid"  # not revoked without the list
    crl = devca.make_crl(pki.ca, [(revoked.certificate, datetime.now(UTC) - timedelta(hours=1))])
    [person] = judge(pki, pdf, (crl,))
    assert person.verdict == "untrusted"
    assert "revoked" in person.reason


def test_a_certificate_from_an_untrusted_ca_is_untrusted(pki: DocumentPki) -> None:
    # One CA with another name, one impostor with the trusted CA's very name.
    for stranger, issuer in (
        (DocumentPki(devca.make_ca("Other CA")), "Other CA"),
        (DocumentPki(), "Test Document CA"),
    ):
        [person, seal] = judge(pki, stranger.official())
        assert (person.verdict, seal.verdict) == ("untrusted", "untrusted")
        assert seal.reason.endswith(f"does not chain to a trusted document CA (issuer: {issuer})")


def test_a_seal_of_another_agency_is_not_official(pki: DocumentPki) -> None:
    pdf = devca.sign_pdf(devca.make_pdf(), pki.person(), field_name="NguoiKy", chain=(pki.ca,))
    pdf = devca.sign_pdf(pdf, pki.seal(OTHER), field_name="CoQuan", chain=(pki.ca,))
    signatures = judge(pki, pdf)
    assert [s.verdict for s in signatures] == ["valid", "valid"]
    official, reason = judge_official(signatures, SENDER)
    assert not official
    assert reason == f"the organisation's signature is by Sở Tài chính ({OTHER}), not by the sender {SENDER}"


def test_a_certificate_not_for_signing_is_untrusted(pki: DocumentPki) -> None:
    cipher = devca.issue_document_cert(
        pki.ca,
        kind="person",
        common_name="Khóa Mã Hóa",
        organization="Sở Nội vụ",
        organ_id=SENDER,
        key_usage="encipherment",
    )
    [person] = judge(pki, devca.sign_pdf(devca.make_pdf(), cipher, field_name="NguoiKy", chain=(pki.ca,)))
    assert person.verdict == "untrusted"
    assert "not for signing (key usage)" in person.reason


def test_a_zipped_pdf_attachment_is_unzipped_and_checked(pki: DocumentPki, official: bytes) -> None:
    attachment = Attachment(
        "cid:1",
        base64.b64encode(zipped("0f3c.pdf", official)).decode(),
        attachment_name="cong-van.pdf",
        content_type="application/zip",
    )
    decoded = decode_attachment(attachment)
    result = report([Item(decoded.name, decoded.content_type, decoded.data)], pki.trust())
    assert result.official
    assert result.main == "cong-van.pdf"
    [only] = result.attachments
    assert only.content_type == "application/pdf"
    assert [s.verdict for s in only.signatures] == [
        "valid",
        "valid",
    ]


def test_a_non_pdf_attachment_is_listed_as_not_signable(pki: DocumentPki, official: bytes) -> None:
    result = report(
        [
            Item("bang-ke.xlsx", "application/vnd.ms-excel", b"PK\x03\x04 a spreadsheet"),
            Item("a.pdf", None, official),
        ],
        pki.trust(),
    )
    sheet, pdf = result.attachments
    assert (sheet.signable, sheet.signatures, sheet.official) == (False, (), False)
    assert sheet.official_reason.startswith("not signable here")
    assert result.main == "a.pdf"
    assert result.official
    assert pdf.official


def test_a_package_without_a_pdf_is_not_official(pki: DocumentPki) -> None:
    result = report([Item("ghi-chu.txt", "text/plain", b"notes")], pki.trust())
    assert (result.official, result.reason) == (False, "the package carries no PDF document")


def test_an_unsigned_pdf_has_no_signature(pki: DocumentPki) -> None:
    result = report([Item("van-ban.pdf", "application/pdf", devca.make_pdf())], pki.trust())
    assert not result.official
    assert result.reason == "main document van-ban.pdf: the document carries no signature"


def test_a_malformed_pdf_is_unverifiable(pki: DocumentPki, official: bytes) -> None:
    # A signed PDF cut short: the signature dictionary is there, the rest of the file is not.
    broken = official[: official.index(b"/ByteRange") + 40]
    result = report([Item("hong.pdf", "application/pdf", broken)], pki.trust())
    [signature] = result.attachments[0].signatures
    assert signature.verdict == "unverifiable"
    assert signature.reason.startswith("the PDF cannot be read")
    not_pdf = report([Item("gia.pdf", "application/pdf", b"<html>not a pdf</html>")], pki.trust())
    assert not_pdf.attachments[0].signatures[0].reason == "not a PDF file (no %PDF- header)"


def test_a_huge_pdf_is_unverifiable_without_being_opened(pki: DocumentPki, official: bytes) -> None:
    result = report([Item("lon.pdf", "application/pdf", official)], pki.trust(), PdfLimits(max_bytes=1000))
    [signature] = result.attachments[0].signatures
    assert signature.verdict == "unverifiable"
    assert signature.reason == f"the PDF is {len(official)} bytes, over the limit of 1000"


def test_too_many_revisions_or_signatures_are_unverifiable(pki: DocumentPki, official: bytes) -> None:
    many = official
    for _ in range(4):
        many = add_annotation(many)
    result = report([Item("nhieu.pdf", "application/pdf", many)], pki.trust(), PdfLimits(max_revisions=4))
    assert result.attachments[0].signatures[0].reason == "the PDF has 7 revisions, over the limit of 4"
    result = report(
        [Item("nhieu.pdf", "application/pdf", official)], pki.trust(), PdfLimits(max_signatures=1)
    )
    assert result.attachments[0].signatures[0].reason == "the PDF carries 2 signatures, over the limit of 1"


def test_a_slow_pdf_is_stopped_at_the_deadline(pki: DocumentPki, official: bytes) -> None:
    # A signed 30 MB PDF, within the size limit, takes longer to judge than a 0.2 s deadline allows.
    slow = devca.sign_official_pdf(devca.make_pdf(padding=30 * 1024 * 1024), pki.person(), pki.seal(), pki.ca)
    # The validating helper process is started once per process; its start is not what is timed.
    assert report([Item("nhanh.pdf", "application/pdf", official)], pki.trust()).official
    started = datetime.now(UTC)
    result = report(
        [Item("cham.pdf", "application/pdf", slow), Item("nhanh.pdf", "application/pdf", slow)],
        pki.trust(),
        PdfLimits(timeout_s=0.2),
    )
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    for attachment in result.attachments:
        assert attachment.signatures[0].verdict == "unverifiable"
        assert attachment.signatures[0].reason == "validation took longer than 0.2 s (the limit); stopped"
    assert not result.official


def test_a_child_past_the_deadline_does_not_outlive_the_request(
    pki: DocumentPki, official: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child that never gets its PDF waits for it, past the deadline: it is stopped (killed, and its
    # connection closed), not left waiting.
    async def header_only(writer, header, items, pending):  # type: ignore[no-untyped-def]
        writer.write(json.dumps(header).encode() + b"\n")
        await writer.drain()

    monkeypatch.setattr(pdf_bounded, "_feed", header_only)
    result = report([Item("a.pdf", "application/pdf", official)], pki.trust(), PdfLimits(timeout_s=0.5))
    assert result.attachments[0].signatures[0].reason.startswith("validation took longer than 0.5 s")
    zygote = pdf_bounded._ZYGOTE._process
    assert zygote is not None
    _, alive = psutil.wait_procs(psutil.Process(zygote.pid).children(), timeout=10)
    assert alive == []


def test_a_compression_bomb_is_unverifiable(pki: DocumentPki, official: bytes) -> None:
    import re
    import zlib

    # A later revision whose cross-reference stream inflates to 400 MB.
    bomb = zlib.compress(b"\0" * (400 * 1024 * 1024), 9)
    previous = int(re.findall(rb"startxref\s+(\d+)", official)[-1])
    crafted = (
        official + b"\n99 0 obj\n<< /Type /XRef /Size 100 /W [1 4 2] /Prev %d /Root 1 0 R /Length %d "
        b"/Filter /FlateDecode >>\nstream\n"
        % (previous, len(bomb))
        + bomb
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (len(official) + 1)
    )
    result = report([Item("bom.pdf", "application/pdf", crafted)], pki.trust(), PdfLimits(max_memory_mb=300))
    [signature] = result.attachments[0].signatures
    assert signature.verdict == "unverifiable"
    assert signature.reason.startswith("the PDF cannot be read: Decoded stream data exceeds the limit")
    assert not result.official


def test_the_validating_process_cannot_grow_past_its_memory_cap(pki: DocumentPki, official: bytes) -> None:
    # 64 MB of address space cannot even hold this 40 MB PDF next to the PDF library: the child
    # runs out, says so, and the package is answered with the PDF unverifiable.
    big = official + b"%" + b"0" * (40 * 1024 * 1024) + b"\n"
    result = report([Item("a.pdf", "application/pdf", big)], pki.trust(), PdfLimits(max_memory_mb=64))
    [signature] = result.attachments[0].signatures
    assert (signature.verdict, signature.reason) == ("unverifiable", "validation needs more than 64 MB")
