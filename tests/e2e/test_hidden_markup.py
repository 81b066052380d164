"""Comments and processing instructions inside a signed package are refused (real server, real HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from exchange import cert_registry
from exchange.edxml.builder import build_edoc
from exchange.trust.signing import Signer, sign_package
from tests.e2e.world import DEPT, FINANCE, World, open_world
from tests.edxml_factories import small_edoc

DOC = "000.00.01.H26,2026/11/22,8/SNV-VP"


@pytest.fixture
async def world(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> AsyncIterator[World]:
    conn = await asyncpg.connect(database_url)
    try:
        ca = cert_registry.read_certificates(dev_pki["ca"].read_bytes(), "ca.pem")
        await cert_registry.import_certificates(conn, ca, organ_id=None)
    finally:
        await conn.close()
    async with open_world(tmp_path, database_url, dev_pki) as opened:
        yield opened


def signed_with_subject(dev_pki: dict[str, Path], subject: str) -> bytes:
    edoc = replace(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC), subject=subject)
    signer = Signer.from_files(dev_pki[f"agency:{DEPT}"], dev_pki[f"agency_key:{DEPT}"])
    return sign_package(build_edoc(edoc), signer)


@pytest.mark.parametrize(
    ("hidden", "reason"),
    [(b"<!-- x -->", "a comment"), (b"<?x y?>", "a processing instruction")],
)
async def test_markup_the_signature_skips_is_refused(
    world: World, dev_pki: dict[str, Path], hidden: bytes, reason: str
) -> None:
    signed = signed_with_subject(dev_pki, "Chi 1000000 dong")
    tampered = signed.replace(b"Chi 1000000 dong", b"Chi 1000" + hidden + b"000 dong")
    assert tampered != signed
    status, refused = await world.client(DEPT).post_package(tampered)
    assert status == 422, refused
    assert refused["error"]["code"] == "comment_in_envelope"
    [detail] = refused["error"]["details"]
    assert detail["reason"] == reason
    assert detail["path"].endswith("/MessageHeader/Subject")
    assert await world.count("messages") == 0
    assert await world.count("deliveries") == 0
    # The untouched signed package is accepted, and so is an unsigned one with a comment (nothing
    # signed can be misread there; the rule is about what a signature does not cover).
    assert (await world.client(DEPT).post_package(signed))[0] == 201
    unsigned = build_edoc(small_edoc(sender=DEPT, recipients=(FINANCE,), document_id=DOC + "-u"))
    commented = unsigned.replace(b"</edXML:edXMLEnvelope>", b"<!-- ghi chu --></edXML:edXMLEnvelope>")
    assert commented != unsigned
    assert (await world.client(DEPT).post_package(commented))[0] == 201


async def test_a_comment_in_an_attachment_of_a_signed_package_is_refused(
    world: World, dev_pki: dict[str, Path]
) -> None:
    signed = signed_with_subject(dev_pki, "Van ban")
    start = signed.index(b">", signed.index(b"<edXML:ContentTransferEncoded")) + 1
    tampered = signed[: start + 4] + b"<!---->" + signed[start + 4 :]
    status, refused = await world.client(DEPT).post_package(tampered)
    assert (status, refused["error"]["code"]) == (422, "comment_in_envelope")
    assert await world.count("messages") == 0
