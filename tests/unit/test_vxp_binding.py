"""How a VXP signature is bound to an operation, the OrganId hierarchy, and the replay retention bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exchange.edxml.ids import is_child_organ, organ_level
from exchange.settings import VxpSettings
from exchange.vxp.auth import _check_timestamp
from exchange.vxp.protocol import (
    Operation,
    SignedHeaders,
    Use,
    VxpFailure,
    check_body,
    check_signed_for,
    java_hex,
)

SEND = Operation("sendEdoc", Use.SEND, reads_body=True)
REGISTER = Operation("registerAgency", Use.CHANGE, reads_body=True)
UPDATE = Operation("updateStatus", Use.CHANGE)


def signed(**values: str) -> SignedHeaders:
    return SignedHeaders({k.replace("_", "-").lower(): v for k, v in values.items()}, "h")


@pytest.mark.parametrize(
    ("organ_id", "level"),
    [
        ("000.00.00.H26", 1),
        ("000.00.12.H26", 2),
        ("000.07.12.H26", 3),
        ("001.07.12.H26", 4),
        ("001.00.12.H26", None),  # level 4 set under an unset level 3
        ("000.07.00.H26", None),
        ("H26.00.12", None),
    ],
)
def test_organ_levels(organ_id: str, level: int | None) -> None:
    assert organ_level(organ_id) == level


@pytest.mark.parametrize(
    ("child", "parent", "expected"),
    [
        ("000.00.24.H44", "000.00.00.H44", True),
        ("000.46.24.H44", "000.00.24.H44", True),  # the QCVN sample: a commune under its district
        ("001.46.24.H44", "000.46.24.H44", True),
        ("000.46.24.H44", "000.00.00.H44", False),  # a grandchild is not a child
        ("000.46.25.H44", "000.00.24.H44", False),
        ("000.00.24.H45", "000.00.00.H44", False),
        ("000.00.00.G12", "000.00.02.H26", False),
        ("000.00.24.H44", "000.00.24.H44", False),
        ("000.00.00.H44", "000.00.24.H44", False),  # upwards
    ],
)
def test_children_by_the_organ_id_shape(child: str, parent: str, expected: bool) -> None:
    assert is_child_organ(child, parent) is expected


def test_the_signed_content_type_tells_send_edoc_from_the_rest() -> None:
    check_signed_for(signed(content_type="application/octet-stream", hash_file="ab"), SEND)
    check_signed_for(signed(content_type="application/json"), UPDATE)
    with pytest.raises(VxpFailure, match="sendEdoc is signed with application/octet-stream"):
        check_signed_for(signed(content_type="application/json", hash_file="ab"), SEND)
    with pytest.raises(VxpFailure, match="updateStatus is signed with application/json"):
        check_signed_for(signed(content_type="application/octet-stream"), UPDATE)
    with pytest.raises(VxpFailure, match="none"):
        check_signed_for(signed(), UPDATE)


def test_operations_that_read_a_body_need_hash_file_over_it() -> None:
    import hashlib

    with pytest.raises(VxpFailure, match="hash-file is required for registerAgency") as missing:
        check_signed_for(signed(content_type="application/json"), REGISTER)
    assert missing.value.http_status == 401
    body = b'{"code":"000.07.02.H26"}'
    digest = hashlib.sha256(body).digest()
    for form in (java_hex(digest), digest.hex()):  # the SDK's unpadded hex, or the ordinary one
        check_body(signed(hash_file=form), REGISTER, body)
    with pytest.raises(VxpFailure, match="does not match") as other:
        check_body(signed(hash_file=digest.hex()), REGISTER, body + b" ")
    assert other.value.http_status == 422
    # sendEdoc's hash covers the file; the SDK adds a CRLF on the wire.
    check_body(signed(hash_file=java_hex(digest)), SEND, body + b"\r\n")


def test_a_spent_signature_is_kept_until_its_timestamp_is_refused() -> None:
    settings = VxpSettings()
    seen = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    # The latest timestamp accepted at that moment (the most future one, in any zone).
    latest = seen.replace(tzinfo=None) + timedelta(seconds=settings.max_future_skew_s, days=1)
    _check_timestamp(latest.strftime("%d%m%YT%H%M%S+0000"), settings, seen)
    forgotten = seen + timedelta(seconds=settings.replay_retention_s + 1)
    with pytest.raises(VxpFailure, match="too old"):
        _check_timestamp(latest.strftime("%d%m%YT%H%M%S+0000"), settings, forgotten)
    assert settings.replay_retention_s > 30 * 24 * 3600
