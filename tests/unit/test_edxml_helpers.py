"""DocumentIds, code lists, attachment decoding, and appending a TraceHeader."""

import base64
import io
import zipfile
from dataclasses import replace
from datetime import date, datetime

import pytest

from exchange.edxml.attachments import decode_attachment
from exchange.edxml.builder import build_edoc
from exchange.edxml.codes import BusinessType, Priority, StatusCode
from exchange.edxml.errors import AttachmentError, SchemaInvalid
from exchange.edxml.ids import is_uuid, parse_document_id
from exchange.edxml.model import Attachment
from exchange.edxml.package import parse_package
from exchange.edxml.trace import append_trace_header
from tests.edxml_factories import edoc_with_files, sample, small_edoc


def test_document_ids_in_the_forms_seen() -> None:
    parts = parse_document_id("000.00.00.G22,2015/09/30,7816/VPCP-TTĐT")
    assert parts is not None
    assert (parts.organ_id, parts.promulgated, parts.number_notation) == (
        "000.00.00.G22",
        date(2015, 9, 30),
        "7816/VPCP-TTĐT",
    )
    dashed = parse_document_id("000.00.01.H26,2026-11-20,15/SNV")
    assert dashed is not None
    assert dashed.promulgated == date(2026, 11, 20)
    impossible = parse_document_id("000.00.00.G22,2014/02/30,7806/VPCP-TTĐT")
    assert impossible is not None
    assert impossible.promulgated is None
    assert parse_document_id("6f1c2a4e-2b7d-4d0e-9a51-0c3f8f5b9e21") is None
    assert is_uuid("6f1c2a4e-2b7d-4d0e-9a51-0c3f8f5b9e21")
    assert not is_uuid("000.00.00.G22,2015/09/30,7816/VPCP")


def test_code_lists_have_vietnamese_labels() -> None:
    assert StatusCode("06").label == "Hoàn thành"
    assert StatusCode.TAKE_BACK.sent_by_sender
    assert BusinessType(1).label == "Thu hồi"
    assert Priority(3).label == "Hỏa tốc"
    assert all(code.label for code in StatusCode)


def test_zipped_attachments_are_opened_with_their_real_name() -> None:
    edoc = parse_package(sample("edoc_new.edxml")).edoc
    assert edoc.attachments is not None
    decoded = decode_attachment(edoc.attachments[0])
    assert decoded.was_zipped
    assert decoded.name == "1896_QD-TTg_m_294779.doc"
    assert decoded.content_type == "application/msword"
    assert len(decoded.data) == 388_347


def _zip(entries: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()


def test_attachment_decoding_rules() -> None:
    plain = Attachment(
        "cid:1", base64.b64encode(b"%PDF").decode() + "\n", "a.pdf", content_type="application/pdf"
    )
    assert decode_attachment(plain).data == b"%PDF"
    real_zip = Attachment("cid:2", _zip({"x.txt": b"x"}), "hoso.zip", content_type="application/zip")
    assert not decode_attachment(real_zip).was_zipped

    with pytest.raises(AttachmentError, match="not valid base64"):
        decode_attachment(Attachment("cid:3", "!!!not base64", "a.pdf"))
    with pytest.raises(AttachmentError, match="cannot be opened"):
        decode_attachment(
            Attachment("cid:4", base64.b64encode(b"no zip").decode(), "a.txt", content_type="application/zip")
        )
    with pytest.raises(AttachmentError, match="2 files"):
        decode_attachment(
            Attachment("cid:5", _zip({"a": b"1", "b": b"2"}), "a.txt", content_type="application/zip")
        )
    bomb = Attachment("cid:6", _zip({"a.txt": b"0" * 100_000}), "a.txt", content_type="application/zip")
    with pytest.raises(AttachmentError, match="over the limit"):
        decode_attachment(bomb, max_unzipped=10_000)


def test_appending_a_trace_header_changes_no_other_byte() -> None:
    original = sample("edoc_update.edxml")
    moment = datetime(2026, 11, 21, 8, 15, 0)
    appended = append_trace_header(original, "000.00.00.H26", moment)

    inserted = (
        b"\n        <edXML:TraceHeader><edXML:OrganId>000.00.00.H26</edXML:OrganId>"
        b"<edXML:Timestamp>2026/11/21 08:15:00</edXML:Timestamp></edXML:TraceHeader>"
    )
    assert len(appended) == len(original) + len(inserted)
    at = appended.index(inserted)
    assert appended[:at] + appended[at + len(inserted) :] == original

    before = parse_package(original).edoc
    after = parse_package(appended).edoc
    assert after.trace_headers[:-1] == before.trace_headers
    assert after.trace_headers[-1].organ_id == "000.00.00.H26"
    assert replace(after, trace_headers=before.trace_headers) == before


def test_appending_ignores_lookalikes_in_comments_and_handles_the_default_namespace() -> None:
    built = build_edoc(small_edoc()).replace(
        b"<edXML:TraceHeaderList>",
        b"<edXML:TraceHeaderList><!-- </edXML:TraceHeader> --><![CDATA[ </x:TraceHeader> ]]>".replace(
            b"<![CDATA[ </x:TraceHeader> ]]>", b""
        ),
    )
    appended = append_trace_header(built, "000.00.00.H26", datetime(2026, 1, 1))
    headers = parse_package(appended).edoc.trace_headers
    assert [h.organ_id for h in headers] == ["000.00.01.H26", "000.00.00.H26"]

    unprefixed = built.replace(b"edXML:", b"").replace(
        b'xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"', b""
    )
    appended = append_trace_header(unprefixed, None, datetime(2026, 1, 1))
    assert b"<TraceHeader><Timestamp>2026/01/01 00:00:00</Timestamp></TraceHeader>" in appended
    assert len(parse_package(appended).edoc.trace_headers) == 2

    with pytest.raises(SchemaInvalid):
        append_trace_header(sample("status.edxml"), "000.00.00.H26", datetime(2026, 1, 1))


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, 5 * 1024 * 1024 + 7])
def test_an_attachment_read_in_pieces_gives_the_same_digest_head_and_bytes(size: int) -> None:
    import base64
    import hashlib
    import os

    from exchange.edxml.attachments import decode_attachment, decode_text
    from exchange.edxml.model import Attachment

    data = os.urandom(size)
    # Line breaks every 76 characters, as producers write base64; pieces are cut across them.
    attachment = Attachment("c1", base64.encodebytes(data).decode(), "x.bin", None, None, None, None, None)
    assert attachment.content is not None
    with decode_text(attachment.content, marker=data[-40:-20] if size > 40 else b"") as decoded:
        seen = decoded.summary
        assert (seen.sha256, seen.size, seen.head) == (hashlib.sha256(data).hexdigest(), size, data[:1024])
        assert seen.says is (size > 40)
        assert decoded.file.read() == data
    assert decode_attachment(attachment).data == data


def test_a_marker_split_between_two_pieces_is_seen() -> None:
    import base64

    from exchange.edxml.attachments import decode_text

    piece = 1024 * 1024 // 4 * 3  # the decoded size of one piece of base64
    data = b"x" * (piece - 4) + b"/ByteRange" + b"y" * 100
    text = base64.b64encode(data).decode()
    with decode_text(text, marker=b"/ByteRange") as found, decode_text(text, marker=b"/Nothing") as not_found:
        assert found.summary.says
        assert not not_found.summary.says


def test_an_attachment_that_is_not_base64_is_refused_when_read_in_pieces() -> None:
    from exchange.edxml.attachments import DecodedFile, decode_text

    for text in ("not base64!", "QUJD" * 10 + "Q", "ỏ" + "QUJD"):
        with decode_text(text) as decoded:
            assert decoded.error is not None, text
    for between in ([], ["  \r\n "]):  # padding ends one piece; more after it (spaces between or not)
        with DecodedFile() as split:
            for piece in ["QUI=", *between, "QUJD"]:
                split.add(piece)
            split.finish()
            assert split.error is not None
            assert "after the padding" in split.error
    with decode_text("QUJD\nREVG") as decoded:
        assert decoded.error is None
        assert decoded.file.read() == b"ABCDEF"


def test_attachments_decoded_from_the_package_bytes_are_those_the_reader_reads() -> None:
    """Decoded straight from the bytes, without a tree: the same attachments in the same order,
    the same bytes, whatever the chunking; a comment inside the text is skipped (as signed)."""
    import base64
    import os

    from exchange.edxml.attachments import decode_from_package
    from exchange.edxml.builder import build_edoc
    from exchange.edxml.package import parse_package

    files = [os.urandom(n) for n in (0, 5, 70_000)]
    data = build_edoc(edoc_with_files(files, "bin"))
    half = base64.encodebytes(files[2]).decode()[:4000].encode()
    commented = data.replace(half, half + b"<!-- inserted -->", 1)
    for package in (data, commented):
        read = parse_package(package).edoc.attachments
        assert read is not None
        for size in (7, 4096, len(package)):
            chunks = [package[i : i + size] for i in range(0, len(package), size)]
            decoded = decode_from_package(chunks, {0, 1, 2})
            assert [decoded[n].file.read() for n in range(3)] == files
            for one in decoded.values():
                one.close()
            only = decode_from_package(chunks, {2})
            assert list(only) == [2]
            only[2].close()
    # Read from the tree, the comment cuts the text short: decoding it gives something else.
    cut = parse_package(commented).edoc.attachments
    assert cut is not None
    assert cut[2].content is not None
    assert len(cut[2].content) < len(base64.encodebytes(files[2]))


def _package_with_text(text: bytes) -> bytes:
    from exchange.edxml.builder import build_edoc
    from tests.edxml_factories import small_edoc

    data = build_edoc(small_edoc(body=b"%PDF"))
    start = data.index(b">", data.index(b"<edXML:ContentTransferEncoded")) + 1
    end = data.index(b"</edXML:ContentTransferEncoded>")
    return data[:start] + text + data[end:]


def test_base64_with_crlf_line_breaks_is_read_though_written_as_references() -> None:
    import base64
    import os

    from exchange.edxml.attachments import decode_from_package

    raw = os.urandom(300_000)
    lines = base64.encodebytes(raw)
    # CRLF as bytes, and CRLF written as references (an entitizing serializer: 3 pieces a line).
    for text in (lines.replace(b"\n", b"\r\n"), lines.replace(b"\n", b"&#13;&#10;")):
        decoded = decode_from_package([_package_with_text(text)], {0})
        assert decoded[0].file.read() == raw
        decoded[0].close()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # The same base64 written as character references: a call into Python every few bytes.
        (b"".join(b"QUJD&#68;" for _ in range(20_000)), "not plain base64"),
        (b"QUJD" * 1000 + b"QUI", "short of a group of 4"),
        (b"QUI=" + b"QUJD" * 1000, "padding"),
        (b"QUJD" * 1000 + b"!!!!", "not valid base64"),
    ],
)
def test_a_text_read_from_the_bytes_that_is_not_plain_base64_is_refused(text: bytes, reason: str) -> None:
    import time

    from exchange.edxml.attachments import decode_from_package
    from exchange.edxml.errors import AttachmentError

    started = time.process_time()
    with pytest.raises(AttachmentError) as refused:
        decode_from_package([_package_with_text(text)], {0})
    assert reason in str(refused.value.details) + refused.value.message
    assert refused.value.status == 422
    # Refused at the first pieces, not after reading them all (a bound with room for a slow machine).
    assert time.process_time() - started < 5


@pytest.mark.parametrize(("run", "refused"), [(47, False), (46, True)])
def test_the_piece_rule_holds_at_24_characters_a_piece_and_refuses_just_past_it(
    run: int, refused: bool
) -> None:
    """Runs of ``run`` characters, each followed by one written as a reference: two pieces per
    run + 1 characters, so 47 gives 24 characters a piece (the most allowed) and 46 gives 23.5."""
    from exchange.edxml.attachments import decode_from_package
    from exchange.edxml.errors import AttachmentError

    text = ((b"QUJD" * 12)[:run] + b"&#65;") * 4000
    if refused:
        with pytest.raises(AttachmentError, match="pieces"):
            decode_from_package([_package_with_text(text)], {0})
        return
    decoded = decode_from_package([_package_with_text(text)], {0})
    assert decoded[0].summary.size == len(text.replace(b"&#65;", b"A")) * 3 // 4
    decoded[0].close()
