"""The VXP wire format against the facts recorded from the SDK (spec/vxp-api.md)."""

import hashlib

import pytest

from adapters.vxp_client import VxpClient, gson_json, sdk_timestamp
from exchange.vxp.hashmap import hashmap_order
from exchange.vxp.protocol import VxpFailure, ascii_text, hash_file, java_hex, read_headers, verify

BASE = ["timestamp", "systemid", "Content-Type"]


@pytest.mark.parametrize(
    ("json_keys", "extra", "observed"),
    [
        (
            ["from", "servicetype", "messagetype"],
            ["hash-file"],
            "systemid;servicetype;messagetype;hash-file;from;timestamp;Content-Type",
        ),
        (
            ["from", "to", "servicetype", "messagetype"],
            ["hash-file"],
            "systemid;servicetype;messagetype;hash-file;from;to;timestamp;Content-Type",
        ),
        (["servicetype", "messagetype"], [], "systemid;servicetype;messagetype;timestamp;Content-Type"),
        (["filePath", "docId"], [], "systemid;docId;filePath;timestamp;Content-Type"),
        (["status", "docId"], [], "systemid;docId;timestamp;Content-Type;status"),
        (
            ["servicetype", "messagetype", "docId"],
            [],
            "systemid;servicetype;messagetype;docId;timestamp;Content-Type",
        ),
        (["AgencyCode"], [], "systemid;AgencyCode;timestamp;Content-Type"),
        (["level"], [], "systemid;level;timestamp;Content-Type"),
        ([], [], "systemid;timestamp;Content-Type"),
    ],
)
def test_header_order_is_the_observed_hashmap_order(
    json_keys: list[str], extra: list[str], observed: str
) -> None:
    assert ";".join(hashmap_order(BASE + json_keys + extra)) == observed


def test_the_worked_example_signs_identically() -> None:
    client = VxpClient.__new__(VxpClient)
    client._secret, client._keep = "s3cret", True
    client._headers = {"timestamp": "21112026T182931+0809", "systemid": "test.system"}
    headers = dict(client.signed_headers("application/json", {}))
    assert headers["XroadVnpt-sign-header"] == (
        '{"XroadVnpt-systemid":"test.system","XroadVnpt-timestamp":"21112026T182931+0809",'
        '"XroadVnpt-Content-Type":"application/json"}'
    )
    assert (
        headers["XroadVnpt-hash-header"] == "6f91aad920286527f9a62cbe5d92413ec5d77595e60a8eac85a7680715b6c172"
    )
    params, signed, digest = read_headers(list(headers.items()))
    assert verify(params, signed, digest, "s3cret").system_id == "test.system"
    with pytest.raises(VxpFailure, match="not the HMAC"):
        verify(params, signed, digest, "other")
    with pytest.raises(VxpFailure, match="differs from its signed value"):
        verify({**params, "systemid": "someone.else"}, signed, digest, "s3cret")
    with pytest.raises(VxpFailure, match="not covered"):
        verify({**params, "docid": "x"}, signed, digest, "s3cret")


def test_hash_file_drops_zero_padding_as_the_sdk_does() -> None:
    digest = bytes.fromhex("cc7bdd662415e725c750bf6c0e64c36a87ad21bf38d00a593f9f10203572747f")
    assert java_hex(digest) == "cc7bdd662415e725c750bf6ce64c36a87ad21bf38d0a593f9f10203572747f"
    assert hash_file(b"x") == java_hex(hashlib.sha256(b"x").digest())


def test_sdk_values_and_text() -> None:
    from datetime import datetime

    assert sdk_timestamp(datetime(2026, 11, 21, 18, 29, 31, 809_000)) == "21112026T182931+0809"
    assert gson_json({"XroadVnpt-to": '["000.00.00.G22"]'}) == '{"XroadVnpt-to":"[\\"000.00.00.G22\\"]"}'
    assert ascii_text("Lỗi xác thực: Đơn vị") == "Loi xac thuc: Don vi"
