"""Schema problems are reported with their line, path and a readable reason."""

from dataclasses import replace

import pytest
from lxml import etree

from exchange.edxml import schema
from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.errors import SchemaInvalid
from exchange.edxml.package import parse_package
from exchange.edxml.parser import NS
from tests.edxml_factories import sample, small_edoc, small_status


def edit(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    root = etree.fromstring(data)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def header(root: etree._Element) -> etree._Element:
    return root.find(f"{q('edXMLEnvelope')}/{q('edXMLHeader')}/{q('MessageHeader')}")


def refusal(data: bytes) -> SchemaInvalid:
    with pytest.raises(SchemaInvalid) as refused:
        parse_package(data)
    assert refused.value.status == 422
    return refused.value


def test_a_missing_sender_is_named() -> None:
    data = edit(build_edoc(small_edoc()), lambda root: header(root).remove(header(root).find(q("From"))))
    problem = refusal(data).details
    assert [(d.reason, d.path) for d in problem] == [
        ("From is required", "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader")
    ]
    assert problem[0].line == 5


def test_bad_values_name_line_and_path() -> None:
    def spoil(root: etree._Element) -> None:
        root.find(f".//{q('PromulgationDate')}").text = "20/11/2026"
        root.find(f".//{q('BussinessDocType')}").text = "7"

    problems = refusal(edit(build_edoc(small_edoc()), spoil)).details
    paths = {d.path: d for d in problems}
    date = paths["/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/PromulgationInfo/PromulgationDate"]
    assert date.reason == "'20/11/2026': must be a date written yyyy/MM/dd"
    assert date.line is not None
    business = paths["/edXML/edXMLEnvelope/edXMLHeader/TraceHeaderList/Bussiness/BussinessDocType"]
    assert business.reason == "'7': value has to be less than or equal than 3"


def test_an_unknown_status_code_is_refused() -> None:
    data = build_status(small_status()).replace(b"<edXML:StatusCode>01<", b"<edXML:StatusCode>07<")
    problem = refusal(data).details[0]
    assert problem.path == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/StatusCode"
    assert "07" in problem.reason


def test_a_calendar_impossible_date_is_refused() -> None:
    data = build_edoc(small_edoc()).replace(
        b"2026/11/20</edXML:PromulgationDate>", b"2026/02/30</edXML:PromulgationDate>"
    )
    problem = refusal(data).details[0]
    assert problem.reason == "'2026/02/30' is not a valid Y/m/d value"
    assert problem.path.endswith("/PromulgationInfo/PromulgationDate")


def test_counting_rules_that_xsd_cannot_express() -> None:
    def twice(root: etree._Element) -> None:
        subject = header(root).find(q("Subject"))
        header(root).append(etree.fromstring(etree.tostring(subject)))

    problem = refusal(edit(build_edoc(small_edoc()), twice)).details[0]
    assert problem.reason == "Subject may appear at most 1 time(s)"

    no_recipient = edit(
        build_edoc(small_edoc()), lambda root: header(root).remove(header(root).find(q("To")))
    )
    assert refusal(no_recipient).details[0].reason == "To is required"


def test_manifest_and_attachments_must_agree() -> None:
    def orphan(root: etree._Element) -> None:
        root.find(f".//{q('edXMLManifest')}/{q('Reference')}/{q('ContentId')}").text = "cid:2"

    problem = refusal(edit(build_edoc(small_edoc()), orphan)).details[0]
    assert problem.reason == "the manifest names '2' but no attachment has it"


def test_element_order_in_headers_is_tolerated() -> None:
    original = parse_package(sample("edoc_new.edxml")).edoc

    def shuffle(root: etree._Element) -> None:
        message = header(root)
        children = list(message)
        for child in children:
            message.remove(child)
        for child in reversed(children):
            message.append(child)

    reordered = parse_package(edit(sample("edoc_new.edxml"), shuffle)).edoc
    assert reordered == original


def test_foreign_elements_are_refused() -> None:
    def intrude(root: etree._Element) -> None:
        header(root).append(etree.Element(q("Surprise")))

    problem = refusal(edit(build_edoc(small_edoc()), intrude)).details[0]
    assert problem.path == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Surprise"
    assert "Unexpected child with tag 'edXML:Surprise'" in problem.reason


def test_reported_problems_are_capped() -> None:
    def many(root: etree._Element) -> None:
        for _ in range(200):
            header(root).append(etree.Element(q("Surprise")))

    assert len(refusal(edit(build_edoc(small_edoc()), many)).details) <= 50


def test_a_large_invalid_package_is_explained_without_the_slow_validator() -> None:
    """6 MB with a wrong date: lxml's own error log, said for people; xmlschema never runs."""

    def spoil(root: etree._Element) -> None:
        root.find(f".//{q('PromulgationDate')}").text = "20/11/2026"
        header(root).append(etree.Element(q("Surprise")))

    large = edit(build_edoc(small_edoc(body=b"%PDF" * 1_500_000)), spoil)
    before = replace(schema.WORK)
    problems = refusal(large).details
    assert (schema.WORK.runs, schema.WORK.elements, schema.WORK.declined) == (
        before.runs,
        before.elements,
        before.declined + 1,
    )
    paths = {d.path: d for d in problems}
    date = paths["/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/PromulgationInfo/PromulgationDate"]
    assert date.reason == "'20/11/2026': must be a date written yyyy/MM/dd"
    assert date.line is not None
    surprise = paths["/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/Surprise"]
    assert surprise.reason == "Element 'Surprise': This element is not expected."
    assert "{" not in str([d.reason for d in problems])  # no namespace URIs for a person to read


def test_the_readable_validator_is_given_a_bounded_amount_of_work() -> None:
    """Many elements (each costs xmlschema ~100 us): past the cap it is declined, below it bounded."""

    def many_recipients(count: int) -> bytes:
        data = build_edoc(
            small_edoc(recipients=tuple(f"000.00.{n % 100:02d}.H{n // 100:02d}" for n in range(count)))
        )
        return data.replace(b"<edXML:Code>", b"<edXML:Surprise/><edXML:Code>", 1)

    before = replace(schema.WORK)
    assert refusal(many_recipients(3_000)).details[0].path.endswith("/MessageHeader/Surprise")
    assert schema.WORK.runs == before.runs
    assert schema.WORK.declined == before.declined + 1

    before = replace(schema.WORK)
    refusal(many_recipients(5))
    assert schema.WORK.runs == before.runs + 1
    assert 0 < schema.WORK.elements - before.elements <= schema.READABLE_MAX_ELEMENTS
    assert schema.WORK.text_chars - before.text_chars <= schema.READABLE_MAX_TEXT_CHARS
