"""From bytes to a checked package: parse (hardened), validate, read the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Literal

from lxml import etree

from exchange.edxml.aside import Aside
from exchange.edxml.errors import ErrorDetail, SchemaInvalid
from exchange.edxml.model import Edoc, Package, Status
from exchange.edxml.parser import DEFAULT_LIMITS, DSIG_NS, NS, Limits, element_path, parse_xml
from exchange.edxml.reader import read_edoc, read_status
from exchange.edxml.schema import Kind, package_kind, validate

SignatureLayout = Literal["xmldsig", "edxml-namespace", "digital-signature"]


@dataclass(frozen=True)
class SignatureSlot:
    """A signature element found in the header; whether it verifies is the trust layer's call."""

    layout: SignatureLayout
    line: int | None
    empty: bool


@dataclass(frozen=True)
class ParsedPackage:
    kind: Kind
    model: Package
    root: etree._Element
    signatures: tuple[SignatureSlot, ...]

    @property
    def edoc(self) -> Edoc:
        assert isinstance(self.model, Edoc)
        return self.model

    @property
    def status(self) -> Status:
        assert isinstance(self.model, Status)
        return self.model


def parse_package(
    data: bytes | IO[bytes],
    limits: Limits = DEFAULT_LIMITS,
    *,
    root: etree._Element | None = None,
    explain: bool = True,
    aside: Aside | None = None,
) -> ParsedPackage:
    """Parse, validate and read an edoc or status package (bytes, or a file of them read in
    chunks), or raise an EdxmlError.

    ``root``: the package already parsed by the same hardened parser (as it was received).
    ``explain=False``: a schema refusal gives lxml's reasons only (see schema.explain_invalid).
    ``aside``: the attachment texts ``root`` holds markers for, which the model leaves out.
    """
    if root is None:
        root = parse_xml(data, limits)
    if root.tag != f"{{{NS}}}edXML":
        raise SchemaInvalid(
            "the root element must be edXML in the QCVN 102:2016 namespace",
            [_detail(f"found {root.tag}", root)],
        )
    kind = package_kind(root)
    validate(root, kind, explain=explain)
    model: Package = read_status(root) if kind == "status" else read_edoc(root)
    if aside is not None and isinstance(model, Edoc):
        model = aside.left_out(model)
    return ParsedPackage(kind, model, root, _signature_slots(root))


def _detail(reason: str, node: etree._Element) -> ErrorDetail:
    return ErrorDetail(reason, element_path(node), node.sourceline)


def _signature_slots(root: etree._Element) -> tuple[SignatureSlot, ...]:
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    slots = []
    layouts: dict[str, SignatureLayout] = {
        f"{{{DSIG_NS}}}Signature": "xmldsig",
        f"{{{NS}}}Signature": "edxml-namespace",
        f"{{{NS}}}DigitalSignature": "digital-signature",
    }
    for child in header if header is not None else ():
        layout = layouts.get(child.tag) if isinstance(child.tag, str) else None
        if layout is not None:
            empty = len(child) == 0 and not (child.text or "").strip()
            slots.append(SignatureSlot(layout, child.sourceline, empty))
    return tuple(slots)
