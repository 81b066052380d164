"""PDFs for tests: made with pyHanko's writer, signed by a development document CA, and changed after
signing in the ways the validator must notice."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from exchange.trust import devca
from exchange.trust.devca import Issued
from exchange.trust.pdf_signatures import DocumentTrust

SENDER = "000.00.01.H26"
SENDER_NAME = "Sở Nội vụ"
OTHER = "000.00.02.H26"
OTHER_NAME = "Sở Tài chính"


@dataclass
class DocumentPki:
    """A document CA with a person's and an organisation's certificate per agency, made on demand."""

    ca: Issued = field(default_factory=lambda: devca.make_ca("Test Document CA"))
    _people: dict[str, Issued] = field(default_factory=dict)
    _seals: dict[str, Issued] = field(default_factory=dict)

    def person(self, organ_id: str = SENDER) -> Issued:
        if organ_id not in self._people:
            self._people[organ_id] = devca.issue_document_cert(
                self.ca,
                kind="person",
                common_name=f"Nguyễn Văn {organ_id[-6:]}",
                organization=_name(organ_id),
                organ_id=organ_id,
            )
        return self._people[organ_id]

    def seal(self, organ_id: str = SENDER) -> Issued:
        if organ_id not in self._seals:
            self._seals[organ_id] = devca.issue_document_cert(
                self.ca,
                kind="organization",
                common_name=_name(organ_id),
                organization=_name(organ_id),
                organ_id=organ_id,
            )
        return self._seals[organ_id]

    def trust(self, crls: tuple[bytes, ...] = ()) -> DocumentTrust:
        return DocumentTrust((self.ca.cert_der(),), crls)

    def official(self, pdf: bytes | None = None, organ_id: str = SENDER) -> bytes:
        return devca.sign_official_pdf(
            pdf or devca.make_pdf(), self.person(organ_id), self.seal(organ_id), self.ca
        )


def _name(organ_id: str) -> str:
    return {SENDER: SENDER_NAME, OTHER: OTHER_NAME}.get(organ_id, organ_id)


def expired_person(pki: DocumentPki) -> Issued:
    now = datetime.now(UTC)
    return devca.issue_document_cert(
        pki.ca,
        kind="person",
        common_name="Trần Thị Hết Hạn",
        organization=SENDER_NAME,
        organ_id=SENDER,
        not_before=now - timedelta(days=400),
        not_after=now - timedelta(days=1),
    )


def add_annotation(pdf: bytes) -> bytes:
    """An incremental update adding a text annotation (a sticky note) to the first page."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    page_ref, _ = writer.find_page_for_modification(0)
    name = generic.pdf_name
    annotation = generic.DictionaryObject(
        {
            name("/Type"): name("/Annot"),
            name("/Subtype"): name("/Text"),
            name("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in (100, 100, 120, 120)]),
            name("/Contents"): generic.TextStringObject("added after signing"),
        }
    )
    writer.register_annotation(page_ref, writer.add_object(annotation))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add_page(pdf: bytes) -> bytes:
    """An incremental update appending a page."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    writer.insert_page(devca._page(writer, "a page added after signing"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def change_signed_byte(pdf: bytes) -> bytes:
    """Change one byte of the page text, inside the range the first signature covers."""
    at = pdf.index(b") Tj ET")
    return pdf[: at - 1] + bytes([pdf[at - 1] ^ 0x01]) + pdf[at:]


def zipped(name: str, data: bytes) -> bytes:
    """How the VNPT library wraps an attachment: a zip with one entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()
