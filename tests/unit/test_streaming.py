"""The pure pieces of streaming: the TraceHeader splice from a head, the spooled body, base64 JSON,
signature checks on the intake's own tree."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml.algorithms import DigestAlgorithm
from signxml.exceptions import InvalidDigest
from signxml.verifier import SignatureConfiguration, XMLVerifier

from exchange.api.bodies import base64_json, base64_size
from exchange.edxml.aside import Aside
from exchange.edxml.builder import build_edoc
from exchange.edxml.errors import PackageTooLarge, SchemaInvalid
from exchange.edxml.package import parse_package
from exchange.edxml.parser import DEFAULT_LIMITS, NS
from exchange.edxml.trace import append_trace_header, find_splice
from exchange.package_body import SPOOL_IN_MEMORY_BYTES, PackageBody
from exchange.trust import devca, signatures
from exchange.trust.certificates import fingerprint
from exchange.trust.pdf_signatures import items_of
from exchange.trust.signatures import TrustMaterial, Verdict, verify_signature
from exchange.trust.signing import Signer, sign_package
from tests.edxml_factories import edoc_with_files, sample, small_edoc

MOMENT = datetime(2026, 11, 30, 8, 0, 0)
# Lookalikes that only a careful scan tells from markup, put where the header is read.
TRICKY = (
    b"<edXML:TraceHeaderList><!-- </edXML:TraceHeader></edXML:edXMLHeader> --><?pi </edXML:TraceHeader> ?>"
)


def packages() -> list[bytes]:
    built = build_edoc(small_edoc())
    return [
        sample("edoc_update.edxml"),
        sample("edoc_new.edxml"),
        built,
        built.replace(b"<edXML:TraceHeaderList>", TRICKY),
        built.replace(b"edXML:", b"").replace(b'xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"', b""),
    ]


@pytest.mark.parametrize("data", packages())
def test_every_head_either_waits_for_more_or_decides_as_the_whole_package_does(data: bytes) -> None:
    whole = find_splice(data, "000.00.00.H26", MOMENT, complete=True)
    assert whole is not None
    header_end = data.index(b"edXMLHeader>", whole.offset) + len(b"edXMLHeader>")
    # Every cut through the header (where it is decided), then a stride through the rest.
    cuts = [*range(header_end + 64), *range(header_end + 64, len(data) + 1, 997), len(data)]
    decided = [cut for cut in cuts if find_splice(data[:cut], "000.00.00.H26", MOMENT, complete=False)]
    assert all(find_splice(data[:cut], "000.00.00.H26", MOMENT, complete=False) == whole for cut in decided)
    # The header comes first: the place is known as soon as it ends, long before the attachments.
    assert decided[0] == header_end
    assert set(decided) == {cut for cut in cuts if cut >= header_end}


def test_a_package_without_a_trace_header_is_refused_once_its_header_is_read() -> None:
    status = sample("status.edxml")
    header_end = status.index(b"</edXML:edXMLHeader>") + len(b"</edXML:edXMLHeader>")
    assert find_splice(status[: header_end - 1], None, MOMENT, complete=False) is None
    with pytest.raises(SchemaInvalid):
        find_splice(status[:header_end], None, MOMENT, complete=False)
    with pytest.raises(SchemaInvalid):
        append_trace_header(status, None, MOMENT)


async def _pieces(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    position = 0
    for size in sizes:
        yield data[position : position + size]
        position += size
    yield data[position:]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400), sizes=st.lists(st.integers(min_value=0, max_value=50), max_size=12))
def test_base64_json_is_the_answer_json_would_give_however_the_bytes_are_cut(
    data: bytes, sizes: list[int]
) -> None:
    async def collect() -> bytes:
        return b"".join([part async for part in base64_json(b'{"data": "', _pieces(data, sizes), b'"}')])

    written = asyncio.run(collect())
    assert written == json.dumps({"data": base64.b64encode(data).decode()}).encode()
    assert len(written) == len(b'{"data": ""}') + base64_size(len(data))


def test_a_body_is_hashed_and_counted_as_it_comes_and_refused_past_its_limit() -> None:
    data = bytes(range(256)) * (SPOOL_IN_MEMORY_BYTES // 128)  # twice the in-memory size: on disk
    with PackageBody(len(data)) as body:
        for start in range(0, len(data), 4096):
            body.write(data[start : start + 4096])
        body.finish()
        assert body.size == len(data)
        assert body.sha256 == hashlib.sha256(data).digest()
        assert b"".join(body.chunks(1000)) == data
        assert body.reader().read() == data  # read again from the start
    with PackageBody(10) as small:
        small.write(b"0123456789")
        with pytest.raises(PackageTooLarge) as refused:
            small.write(b"!")
        assert refused.value.status == 413
        assert small.size == 10  # the byte over the limit was not kept
    with pytest.raises(PackageTooLarge):
        PackageBody.of(b"x" * 11, 10)


@pytest.mark.parametrize("legacy_layout", [False, True])
def test_verifying_a_signature_leaves_the_parsed_tree_as_it_was(legacy_layout: bool) -> None:
    """The verifier works on the intake's own tree (no copy of it first), so it must not change it;
    and a change to the content after signing is still seen."""
    ca = devca.make_ca()
    issued = devca.issue_signing_cert(ca, organ_id="000.00.01.H26", common_name="Sở Nội vụ")
    data = sign_package(
        build_edoc(small_edoc()), Signer(issued.certificate, issued.key), legacy_layout=legacy_layout
    )
    trust = TrustMaterial(trusted_cas=(ca.certificate,))
    root = parse_package(data).root
    before = etree.tostring(root)
    verdict = verify_signature(root, "000.00.01.H26", trust, datetime.now(UTC))
    assert verdict.verdict is Verdict.VALID, verdict.reason
    assert etree.tostring(root) == before

    assert b"JVBERi0xLjcgdGVzdA==" in data  # the attachment, "%PDF-1.7 test"
    changed = parse_package(data.replace(b"JVBERi0xLjcgdGVzdA==", b"JVBERi0xLjcgdGVzdQ==")).root
    assert verify_signature(changed, "000.00.01.H26", trust, datetime.now(UTC)).verdict is Verdict.INVALID


@pytest.mark.parametrize("legacy_layout", [False, True])
def test_the_lean_reference_check_signs_off_exactly_what_signxml_does(legacy_layout: bool) -> None:
    """The verifier hashes the canonical form as lxml writes it and hands back the tree itself as
    what was signed: that tree, canonicalised without its signature, is exactly signxml's signed
    bytes; a digest mismatch is found alike; and the tree is left as it was."""
    ca = devca.make_ca()
    issued = devca.issue_signing_cert(ca, organ_id="000.00.01.H26", common_name="Sở Nội vụ")
    data = sign_package(
        build_edoc(small_edoc()), Signer(issued.certificate, issued.key), legacy_layout=legacy_layout
    )
    root = parse_package(data).root
    before = etree.tostring(root)
    legacy = signatures._signature_elements(root)[0]
    # As the trust layer checks it: a legacy signature back in the XML-DSig namespace, as signed.
    context = signatures._as_xmldsig(legacy, "ds") if legacy_layout else contextlib.nullcontext(legacy)
    config = SignatureConfiguration(location=signatures.HEADER_PATH, expect_references=1)
    with context as signature:
        ours = signatures._Verifier().verify(root, x509_cert=issued.certificate, expect_config=config)
        theirs = XMLVerifier().verify(root, x509_cert=issued.certificate, expect_config=config)
        assert not isinstance(ours, list)
        assert not isinstance(theirs, list)
        assert ours.signed_xml is root
        with signatures._taken_out(signature):
            assert etree.tostring(root, method="c14n") == theirs.signed_data
        attachment = root.find(f".//{{{NS}}}ContentTransferEncoded")
        assert attachment is not None
        attachment.text, text = "JVBERi0xLjcgdGVzdQ==", attachment.text
        for verifier in (signatures._Verifier(), XMLVerifier()):
            with pytest.raises(InvalidDigest):
                verifier.verify(root, x509_cert=issued.certificate, expect_config=config)
        attachment.text = text
    assert etree.tostring(root) == before


def signed_with_attachments(files: list[bytes], legacy_layout: bool = False) -> tuple[bytes, devca.Issued]:
    ca = devca.make_ca()
    issued = devca.issue_signing_cert(ca, organ_id="000.00.01.H26", common_name="Sở Nội vụ")
    return sign_package(
        build_edoc(edoc_with_files(files)),
        Signer(issued.certificate, issued.key),
        legacy_layout=legacy_layout,
    ), issued


def parsed_aside(data: bytes) -> tuple[etree._Element, Aside]:
    body = PackageBody.of(data)
    root = body.parse(DEFAULT_LIMITS)
    assert body.aside is not None
    return root, body.aside


@pytest.mark.parametrize("legacy_layout", [False, True])
def test_a_tree_with_its_attachment_texts_set_aside_verifies_as_the_whole_tree_does(
    legacy_layout: bool,
) -> None:
    """The tree holds a 40-character marker where a large attachment's base64 stood (small ones stay);
    the digest, taken with the texts read again from the bytes, is the digest of the whole document."""
    files = [b"%PDF-1.7 " + bytes(range(256)) * 1300, b"", b"%PDF-1.4 x", b"%PDF-1.5 " + bytes(1_000_000)]
    data, issued = signed_with_attachments(files, legacy_layout)
    trust = TrustMaterial(pinned=frozenset({fingerprint(issued.certificate)}))
    root, aside = parsed_aside(data)
    texts = [node.text for node in root.iter(f"{{{NS}}}ContentTransferEncoded")]
    encoded = [base64.encodebytes(f).decode() for f in files]
    assert texts == [aside.marker(0), encoded[1] or None, encoded[2], aside.marker(1)]
    assert aside.ordinals == [0, 3]
    model = parse_package(data, aside=aside).edoc
    assert model.attachments is not None
    assert [a.content for a in model.attachments] == [None, "", encoded[2], None]
    whole = verify_signature(parse_package(data).root, "000.00.01.H26", trust, datetime.now(UTC))
    set_aside = verify_signature(root, "000.00.01.H26", trust, datetime.now(UTC), aside)
    assert whole.verdict is Verdict.VALID
    assert (set_aside.verdict, set_aside.reason) == (whole.verdict, whole.reason)
    assert ["".join(text) for text in aside.texts()] == [encoded[0], encoded[3]]
    items = items_of(model, [data])
    assert [item.sha256 for item in items] == [hashlib.sha256(f).hexdigest() for f in files]

    # One base64 character changed in the bytes is found, though the tree never held the text.
    tampered = data.replace(b"JVBERi0xLjUgAAAA", b"JVBERi0xLjUgAAAB")
    assert tampered != data
    root, aside = parsed_aside(tampered)
    verdict = verify_signature(root, "000.00.01.H26", trust, datetime.now(UTC), aside)
    assert verdict.verdict is Verdict.INVALID
    assert "digest mismatch" in verdict.reason


@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
@settings(max_examples=60, deadline=None)
def test_a_marker_cut_anywhere_between_writes_is_still_spliced(cuts: list[int]) -> None:
    """lxml writes the canonical form in pieces of its own choosing: a marker split between two
    writes, or several in one, gives the same digest as the whole canonical form would."""
    aside = Aside(ordinals=[0, 1], source=lambda: [b"unused"])
    texts = iter([iter(["AB&C", "D\r"]), iter([])])
    canonical = f"<a><b>{aside.marker(0)}</b>x<b>{aside.marker(1)}</b></a>".encode()
    expected = hashlib.sha256(b"<a><b>AB&amp;CD&#xD;</b>x<b></b></a>").digest()
    sink = signatures._Digesting(DigestAlgorithm.SHA256, aside)
    sink._texts = texts  # the texts as the bytes would give them
    bounds = sorted({min(cut, len(canonical)) for cut in cuts} | {0, len(canonical)})
    for start, end in itertools.pairwise(bounds):
        sink.write(canonical[start:end])
    assert sink.digest() == expected


def test_a_marker_out_of_its_place_is_refused() -> None:
    aside = Aside(ordinals=[0, 1], source=lambda: [b"unused"])
    sink = signatures._Digesting(DigestAlgorithm.SHA256, aside)
    with pytest.raises(ValueError, match="out of place"):
        sink.write(f"<a>{aside.marker(1)}</a>".encode())


@pytest.mark.parametrize("hops", [0, 3, 8])
def test_a_package_with_a_text_set_aside_verifies_after_as_many_hops_as_any_other(hops: int) -> None:
    """Undoing transit TraceHeaders reads the texts set aside again for each try: still every hop
    the axis undoes for a small package, and a change made in transit is still found."""
    data, issued = signed_with_attachments([b"%PDF-1.5 " + bytes(500_000)])
    for n in range(hops):
        data = append_trace_header(data, f"000.00.{n:02d}.G22", datetime.now(UTC))
    trust = TrustMaterial(pinned=frozenset({fingerprint(issued.certificate)}))
    root, aside = parsed_aside(data)
    assert aside.ordinals == [0]
    verdict = verify_signature(root, "000.00.01.H26", trust, datetime.now(UTC), aside)
    assert verdict.verdict is Verdict.VALID, verdict.reason
    assert verdict.transit_hops == hops
    changed = data.replace(b"JVBERi0xLjUgAAAA", b"JVBERi0xLjUgAAAB")
    root, aside = parsed_aside(changed)
    verdict = verify_signature(root, "000.00.01.H26", trust, datetime.now(UTC), aside)
    assert verdict.verdict is Verdict.INVALID


def test_a_text_is_set_aside_from_256_kib_of_the_package_and_kept_just_below() -> None:
    from exchange.edxml.aside import SET_ASIDE_BYTES

    root = parse_package(build_edoc(small_edoc())).root
    [node] = root.iter(f"{{{NS}}}ContentTransferEncoded")
    text = node.text
    below, at = Aside(), Aside()
    below.take(node, SET_ASIDE_BYTES - 1)
    assert (node.text, below.ordinals) == (text, [])
    at.take(node, SET_ASIDE_BYTES)
    assert (node.text, at.ordinals) == (at.marker(0), [0])
