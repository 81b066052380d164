"""The pure rules of who reads what, and where the axis may push (no database)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from exchange.endpoints import address_refusal, endpoint_refusal
from exchange.model import Role, System
from exchange.store.deliveries import DeliveryRow
from exchange.store.messages import MessageRow
from exchange.visibility import may_read_body, may_see, visible_deliveries

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SENDER, ONE, TWO = "000.00.01.H26", "000.00.02.H26", "000.00.03.H26"


def system(role: Role, *organs: str) -> System:
    return System(1, f"s-{role}-{'-'.join(organs)}", role, True, NOW, NOW, organs, serving=organs)


MESSAGE = MessageRow(
    uuid.uuid4(), "edoc", SENDER, 1, "D", 0, None, None, "S", 0, None, bytes(32), 1, {}, None, NOW
)


def copy(recipient: str, state: str = "queued") -> DeliveryRow:
    return DeliveryRow(
        uuid.uuid4(),
        MESSAGE.id,
        recipient,
        "pull",
        state,
        0,
        0,
        None,
        None,
        None,
        NOW,
        NOW,
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_each_caller_sees_what_concerns_it() -> None:
    copies = [copy(ONE), copy(TWO)]
    assert visible_deliveries(system(Role.SYSTEM, ONE), MESSAGE, copies) == copies[:1]
    assert visible_deliveries(system(Role.SYSTEM, SENDER), MESSAGE, copies) == copies
    assert visible_deliveries(system(Role.AUDITOR), MESSAGE, copies) == copies
    assert visible_deliveries(None, MESSAGE, copies) == copies
    assert not may_see(system(Role.SYSTEM, "000.00.04.H26"), MESSAGE, copies)


def test_a_withdrawn_copy_opens_no_body() -> None:
    live, withdrawn = copy(ONE), copy(ONE, "withdrawn")
    assert may_read_body(system(Role.SYSTEM, ONE), MESSAGE, [live])
    assert not may_read_body(system(Role.SYSTEM, ONE), MESSAGE, [withdrawn])
    # Not even to a caller that also sent it, through that copy.
    assert not may_read_body(system(Role.SYSTEM, ONE, SENDER), MESSAGE, [withdrawn])
    assert may_read_body(system(Role.SYSTEM, SENDER), MESSAGE, [withdrawn])  # holds no copy: its own document
    assert not may_read_body(system(Role.SYSTEM, TWO), MESSAGE, [withdrawn])
    assert may_read_body(system(Role.AUDITOR), MESSAGE, [withdrawn])
    assert may_read_body(system(Role.SYSTEM, ONE), MESSAGE, [withdrawn, replace(live, recipient=ONE)])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "169.254.169.254",
        "fe80::1%eth0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "::ffff:10.0.0.1",
        "fc00::1",
        "224.0.0.1",
        "192.0.2.1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "203.113.1.1", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


def test_names_are_left_to_push_time_except_this_machine() -> None:
    assert endpoint_refusal("https://dms.hanoi.gov.vn/edoc") is None
    assert endpoint_refusal("http://LOCALHOST./x") is not None
    assert endpoint_refusal("http://a.localhost/x") is not None
    assert endpoint_refusal("http://[::ffff:127.0.0.1]:80/x") is not None
