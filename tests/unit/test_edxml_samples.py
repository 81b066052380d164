"""The published packages: every valid one reads and round-trips; the malformed ones are refused."""

from pathlib import Path

import pytest

from exchange.edxml.builder import build_edoc, build_status
from exchange.edxml.codes import BusinessType, StatusCode
from exchange.edxml.errors import NotWellFormed
from exchange.edxml.model import Edoc
from exchange.edxml.package import parse_package
from tests.edxml_factories import MALFORMED_SAMPLES, VALID_SAMPLES, sample


def test_the_samples_are_there() -> None:
    assert len(VALID_SAMPLES) == 14
    assert len(MALFORMED_SAMPLES) == 2


@pytest.mark.parametrize("path", VALID_SAMPLES, ids=lambda p: p.name)
def test_valid_samples_parse_and_round_trip(path: Path) -> None:
    parsed = parse_package(path.read_bytes())
    assert parsed.kind == ("status" if path.name.startswith("status") else "edoc")
    build = build_edoc if isinstance(parsed.model, Edoc) else build_status
    rebuilt = parse_package(build(parsed.model))  # type: ignore[arg-type]
    assert rebuilt.model == parsed.model
    assert rebuilt.kind == parsed.kind


def test_what_the_edoc_samples_say() -> None:
    new = parse_package(sample("edoc_new.edxml")).edoc
    assert new.sender.organ_id == "002.00.20.H13"
    assert [r.organ_id for r in new.recipients] == ["28.22.H17"]
    assert new.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert new.business_type is BusinessType.NEW
    assert new.promulgation_info.promulgation_date.isoformat() == "2019-01-16"
    assert new.to_places == ("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP")
    assert new.attachments is not None
    assert new.attachments[0].attachment_name == "1896_QD-TTg_m_294779.doc"

    update = parse_package(sample("edoc_update.edxml")).edoc
    assert update.business_type is BusinessType.UPDATE
    assert update.bussiness is not None
    assert update.bussiness.document_info is not None
    assert [(r.organ_id, r.receiver_type) for r in update.bussiness.document_info.receivers or ()] == [
        ("000.00.00.H41", 0),
        ("000.00.00.H14", 1),
    ]

    replacement = parse_package(sample("edoc_replacement.edxml")).edoc
    assert replacement.business_type is BusinessType.REPLACE
    assert replacement.bussiness is not None
    assert [r.organ_ids for r in replacement.bussiness.replacements or ()] == [
        ("000.00.00.H41", "000.00.00.H14")
    ] * 2

    revocation = parse_package(sample("edoc_revocation.edxml")).edoc
    assert revocation.business_type is BusinessType.REVOKE
    assert revocation.response_for[0].document_id == "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("status_inbox_01.edxml", "01"),
        ("status_rejection_02.edxml", "02"),
        ("status_acceptance_03.edxml", "03"),
        ("status_assignment_04.edxml", "04"),
        ("status_processing_05.edxml", "05"),
        ("status_finish_06.edxml", "06"),
        ("status_cancellation_13.edxml", "13"),
        ("status_change-acceptance_15.edxml", "15"),
        ("status_change-rejection_16.edxml", "16"),
    ],
)
def test_status_samples_carry_their_code(name: str, code: str) -> None:
    status = parse_package(sample(name)).status
    assert status.status_code is StatusCode(code)
    assert status.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"


def test_sample_signatures_are_seen_in_the_legacy_layout() -> None:
    parsed = parse_package(sample("edoc_new.edxml"))
    assert [(s.layout, s.line, s.empty) for s in parsed.signatures] == [("edxml-namespace", 84, False)]
    assert parse_package(sample("status.edxml")).signatures == ()


def test_stray_bytes_before_the_prolog_are_named_with_their_line() -> None:
    with pytest.raises(NotWellFormed) as refused:
        parse_package(sample("malformed/edoc_stray_bytes_before_prolog.edxml"))
    detail = refused.value.details[0]
    assert detail.line == 1
    assert detail.reason == "4 stray bytes b'1212' before the XML declaration"


def test_an_unbound_prefix_is_named_with_its_line() -> None:
    with pytest.raises(NotWellFormed) as refused:
        parse_package(sample("malformed/edoc_unbound_prefix.edxml"))
    detail = refused.value.details[0]
    assert detail.line == 116
    assert "Namespace prefix xlink" in detail.reason
    assert "not defined" in detail.reason
