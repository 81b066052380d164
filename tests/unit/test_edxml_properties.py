"""Property tests: whatever the bytes, the format layer answers with its own errors; what it
builds, it accepts."""

from __future__ import annotations

import base64
import random
from datetime import date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, Priority, StatusCode
from exchange.edxml.errors import EdxmlError
from exchange.edxml.model import (
    Attachment,
    Bussiness,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    Edoc,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    Reference,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    TraceHeader,
)
from exchange.edxml.package import parse_package
from tests.edxml_factories import sample, small_edoc, small_status

SEEDS = [build_edoc(small_edoc()), build_status(small_status()), sample("status.edxml")]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(data: bytes) -> str:
    """Parse, and say how it ended; anything but the module's own errors fails the test."""
    try:
        parse_package(data)
    except EdxmlError as error:
        return error.code
    return "accepted"


@FAST
@given(st.binary(max_size=2_000))
def test_random_bytes_get_only_format_errors(data: bytes) -> None:
    outcome(data)


@FAST
@given(st.sampled_from(SEEDS), st.data())
def test_byte_mutations_get_only_format_errors(seed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "duplicate"]))
        if action == "flip":
            mutated[position] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del mutated[position : position + data.draw(st.integers(1, 40))]
        elif action == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=20))
        else:
            mutated[position:position] = mutated[position : position + data.draw(st.integers(1, 80))]
        if not mutated:
            break
    outcome(bytes(mutated))


@FAST
@given(st.sampled_from(SEEDS), st.randoms(use_true_random=False), st.text(max_size=30))
def test_tree_mutations_get_only_format_errors(seed: bytes, rng: random.Random, text: str) -> None:
    root = etree.fromstring(seed)
    elements = [element for element in root.iter() if element is not root]
    victim = rng.choice(elements)
    action = rng.choice(["remove", "duplicate", "retext", "move"])
    parent = victim.getparent()
    if action == "remove":
        parent.remove(victim)
    elif action == "duplicate":
        parent.append(etree.fromstring(etree.tostring(victim)))
    elif action == "retext":
        try:
            victim.text = text
        except ValueError:  # lxml refuses text XML cannot carry (control characters)
            return
    else:
        target = rng.choice(elements)
        if target is victim or victim in target.iterancestors():
            return  # an element cannot move into itself
        target.append(victim)
    outcome(etree.tostring(root, encoding="UTF-8", xml_declaration=True))


# ---- built packages always validate --------------------------------------------------------

_XML_CHAR = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"
) | st.sampled_from(["\n", "\t"])
texts = st.text(_XML_CHAR, max_size=40)
non_blank = texts.filter(lambda s: any(c not in " \t\n\r" for c in s))
organ_ids = st.from_regex(r"[0-9A-Za-z][0-9A-Za-z._\-]{0,20}", fullmatch=True)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
timestamps = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)
optional = st.none() | texts
flags = st.none() | st.integers(0, 1)

organizations = st.builds(
    Organization, organ_ids, optional, optional, optional, optional, optional, optional, optional
)
staff = st.builds(StaffInfo, optional, optional, optional, optional, optional, optional)
response_fors = st.builds(
    ResponseFor, st.none() | organ_ids | st.just(""), optional, optional, st.none() | dates
)
bussinesses = st.builds(
    Bussiness,
    st.sampled_from(BusinessType),
    optional,
    optional,
    flags,
    st.none()
    | st.builds(
        BussinessDocumentInfo,
        flags,
        flags,
        st.none() | st.lists(st.builds(Receiver, organ_ids, st.integers(0, 1)), max_size=3).map(tuple),
    ),
    st.none()
    | st.lists(
        st.builds(ReplacementInfo, non_blank, st.none() | st.lists(organ_ids, max_size=3).map(tuple)),
        max_size=2,
    ).map(tuple),
    st.none() | staff,
)


@st.composite
def attachment_sets(draw: st.DrawFn) -> tuple[tuple[Reference, ...] | None, tuple[Attachment, ...] | None]:
    count = draw(st.integers(0, 3))
    attachments = tuple(
        Attachment(
            f"cid:{index}",
            base64.b64encode(draw(st.binary(max_size=200))).decode(),
            draw(optional),
            draw(optional),
            draw(optional),
        )
        for index in range(count)
    )
    references = tuple(
        Reference(a.content_id, a.content_type, attachment_name=a.attachment_name)
        for a in attachments
        if draw(st.booleans())
    )
    return (references if count or draw(st.booleans()) else None), (attachments if count else None)


@st.composite
def edocs(draw: st.DrawFn) -> Edoc:
    references, attachments = draw(attachment_sets())
    return Edoc(
        sender=draw(organizations),
        recipients=tuple(draw(st.lists(organizations, min_size=1, max_size=4))),
        document_id=draw(non_blank),
        code=Code(draw(non_blank), draw(optional)),
        promulgation_info=PromulgationInfo(draw(dates), draw(optional)),
        document_type=DocumentType(
            draw(non_blank), draw(st.none() | st.integers(-5, 30)), draw(st.none() | st.integers(-1, 30))
        ),
        subject=draw(non_blank),
        trace_headers=tuple(
            draw(st.lists(st.builds(TraceHeader, timestamps, st.none() | organ_ids), min_size=1, max_size=3))
        ),
        content=draw(optional),
        signer_info=draw(st.none() | st.builds(SignerInfo, optional, optional, optional)),
        due_date=draw(st.none() | dates),
        other_info=draw(
            st.none()
            | st.builds(
                OtherInfo,
                st.none() | st.sampled_from(Priority),
                optional,
                optional,
                st.none() | st.integers(0, 500),
                st.none() | st.integers(0, 500),
                st.none() | st.booleans(),
                st.none() | st.lists(texts, max_size=3).map(tuple),
            )
        ),
        response_for=tuple(draw(st.lists(response_fors, max_size=2))),
        steering_type=draw(st.none() | st.integers(0, 3)),
        response_for_task=draw(st.none() | st.lists(texts, max_size=2).map(tuple)),
        application_type=draw(optional),
        to_places=draw(st.none() | st.lists(texts, max_size=3).map(tuple)),
        bussiness=draw(st.none() | bussinesses),
        references=references,
        attachments=attachments,
    )


statuses = st.builds(
    Status,
    organizations,
    st.builds(ResponseFor, organ_ids, optional, non_blank, st.none() | dates),
    st.sampled_from(StatusCode),
    timestamps,
    st.none() | staff,
    optional,
)


@FAST
@given(edocs())
def test_built_edocs_validate_and_read_back(edoc: Edoc) -> None:
    parsed = parse_package(build_edoc(edoc))
    assert parsed.kind == "edoc"
    assert parsed.model == edoc


@FAST
@given(statuses)
def test_built_statuses_validate_and_read_back(status: Status) -> None:
    parsed = parse_package(build_status(status))
    assert parsed.kind == "status"
    assert parsed.model == status
