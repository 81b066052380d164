"""Packages for tests: sample files, and small valid models built in code."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from exchange.edxml.codes import BusinessType, StatusCode
from exchange.edxml.model import (
    Attachment,
    Bussiness,
    Code,
    DocumentType,
    Edoc,
    Organization,
    PromulgationInfo,
    Reference,
    ResponseFor,
    Status,
    TraceHeader,
)
from tests.conftest import SAMPLES

VALID_SAMPLES = sorted(SAMPLES.glob("*.edxml"))
MALFORMED_SAMPLES = sorted((SAMPLES / "malformed").glob("*.edxml"))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def small_edoc(
    sender: str = "000.00.01.H26",
    recipients: tuple[str, ...] = ("000.00.00.G22",),
    document_id: str = "000.00.01.H26,2026/11/20,15/SNV-VP",
    body: bytes = b"%PDF-1.7 test",
) -> Edoc:
    attachment = Attachment(
        content_id="cid:1",
        content=base64.b64encode(body).decode(),
        attachment_name="van-ban.pdf",
        content_type="application/pdf",
    )
    return Edoc(
        sender=Organization(sender, organ_name="Sở Nội vụ"),
        recipients=tuple(Organization(r) for r in recipients),
        document_id=document_id,
        code=Code("15", "SNV-VP"),
        promulgation_info=PromulgationInfo(date(2026, 11, 20), "Thành phố"),
        document_type=DocumentType("Công văn", 1, 0),
        subject="V/v thử nghiệm trục liên thông",
        trace_headers=(TraceHeader(datetime(2026, 11, 20, 9, 30, 0), sender),),
        bussiness=Bussiness(BusinessType.NEW, reason="Văn bản điện tử mới"),
        references=(Reference("cid:1", "application/pdf", attachment_name="van-ban.pdf"),),
        attachments=(attachment,),
    )


def edoc_with_files(files: list[bytes], extension: str = "pdf") -> Edoc:
    """small_edoc with ``files`` as its attachments (base64 in 76-character lines), in order."""
    names = [f"f{n}.{extension}" for n in range(len(files))]
    return replace(
        small_edoc(),
        references=tuple(Reference(f"cid:{n}", attachment_name=name) for n, name in enumerate(names)),
        attachments=tuple(
            Attachment(f"cid:{n}", base64.encodebytes(data).decode(), name)
            for n, (data, name) in enumerate(zip(files, names, strict=True))
        ),
    )


def small_status(
    sender: str = "000.00.00.G22",
    original_sender: str = "000.00.01.H26",
    document_id: str = "000.00.01.H26,2026/11/20,15/SNV-VP",
    code: StatusCode = StatusCode.ARRIVED,
) -> Status:
    return Status(
        sender=Organization(sender),
        response_for=ResponseFor(original_sender, "15/SNV-VP", document_id, date(2026, 11, 20)),
        status_code=code,
        timestamp=datetime(2026, 11, 20, 10, 0, 0),
        description=code.label,
    )


def sample_path(name: str) -> Path:
    return SAMPLES / name
