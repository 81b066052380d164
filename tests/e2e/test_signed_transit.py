"""A package signed by its sender stays verifiable through the axes: downloaded (one hop), forwarded
through a city and a national axis whose sender policy is `required` (two hops); a change in transit
is still refused."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from cryptography import x509

from exchange import cert_registry, registry
from exchange.edxml.builder import build_edoc
from exchange.edxml.package import parse_package
from exchange.edxml.trace import append_trace_header
from exchange.model import Role
from exchange.trust.signatures import TrustMaterial, Verdict, verify_signature
from exchange.trust.signing import Signer, sign_package
from tests.conftest import REPO, new_database
from tests.e2e.harness import Client, Server, write_config
from tests.e2e.test_chained_axes import CITY, CITY_SECRET, DEPT, MINISTRY, city_config, eventually
from tests.edxml_factories import small_edoc

CENTRAL, FINANCE = "000.00.00.G22", "000.00.02.H26"


async def register(
    url: str,
    ca: x509.Certificate,
    agencies: list[dict[str, Any]],
    systems: list[tuple[str, list[str], str | None]],
) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        await registry.add_agencies(conn, [registry.AgencyInput(a) for a in agencies])
        await cert_registry.import_certificates(conn, [ca], organ_id=None)
        return {
            name: (await registry.add_system(conn, name, Role.SYSTEM, organs, secret)).api_key
            for name, organs, secret in systems
        }
    finally:
        await conn.close()


def offline_check(path: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exchange", "check", "--verify", "--ca", str(ca), str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_signed_package_verifies_after_download_and_after_two_axes_under_required(
    tmp_path: Path, database_url: str, cluster_url: str, dev_pki: dict[str, Path]
) -> None:
    ca = x509.load_pem_x509_certificate(dev_pki["ca"].read_bytes())
    trust = TrustMaterial(trusted_cas=(ca,))
    national_url = new_database(cluster_url, f"national_signed_{id(tmp_path) % 100000}")
    national_keys = await register(
        national_url,
        ca,
        [
            {"organ_id": MINISTRY, "name": "Bộ Xây dựng"},
            {"organ_id": CENTRAL, "name": "Văn phòng Chính phủ"},
            {"organ_id": CITY, "name": "UBND Thành phố"},
            {"organ_id": DEPT, "name": "Sở Nội vụ", "parent": CITY, "signature_policy": "required"},
        ],
        [("bo-xay-dung", [MINISTRY], None), ("truc-thanh-pho", [CITY, DEPT], CITY_SECRET)],
    )
    city_keys = await register(
        database_url,
        ca,
        [
            {"organ_id": DEPT, "name": "Sở Nội vụ", "signature_policy": "required"},
            {"organ_id": FINANCE, "name": "Sở Tài chính"},
        ],
        [("so-noi-vu", [DEPT], None), ("so-tai-chinh", [FINANCE], None)],
    )
    signer = Signer.from_files(dev_pki[f"agency:{DEPT}"], dev_pki[f"agency_key:{DEPT}"])
    document_id = f"{DEPT},2026/11/30,90/SNV-VP"
    signed = sign_package(
        build_edoc(small_edoc(sender=DEPT, recipients=(MINISTRY, FINANCE), document_id=document_id)), signer
    )

    national = await Server.start(
        "--config",
        str(write_config(tmp_path / "national.toml", dev_pki, trace_organ_id=CENTRAL)),
        "--database-url",
        national_url,
    )
    city = await Server.start(
        "--config",
        str(city_config(tmp_path / "city.toml", dev_pki, national.url)),
        "--database-url",
        database_url,
    )
    try:
        async with aiohttp.ClientSession() as session:
            dept = Client(session, city.url, city_keys["so-noi-vu"])
            finance = Client(session, city.url, city_keys["so-tai-chinh"])
            ministry = Client(session, national.url, national_keys["bo-xay-dung"])
            status, accepted = await dept.post_package(signed)
            assert status == 201, accepted
            assert accepted["signature"]["verdict"] == "valid"

            # One hop: what a recipient of the city axis downloads.
            _, inbox = await finance.get_json("/v1/inbox?kind=edoc")
            [item] = inbox["items"]
            _, downloaded = await finance.get_bytes(f"/v1/deliveries/{item['delivery_id']}/package")
            verdict = verify_signature(parse_package(downloaded).root, DEPT, trust, datetime.now(UTC))
            assert (verdict.verdict, verdict.transit_hops) == (Verdict.VALID, 1), verdict.reason
            (tmp_path / "downloaded.edxml").write_bytes(downloaded)
            checked = offline_check(tmp_path / "downloaded.edxml", dev_pki["ca"])
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "; signed before 1 transit hop" in checked.stdout

            # Forwarded: the national axis, whose policy for the sender is `required`, accepted it.
            async def ministry_has_it() -> bool:
                _, inbox = await ministry.get_json("/v1/inbox?kind=edoc")
                return len(inbox["items"]) >= 1

            await eventually(ministry_has_it)
            _, inbox = await ministry.get_json("/v1/inbox?kind=edoc")
            [item] = inbox["items"]
            _, view = await ministry.get_json(f"/v1/messages/{item['message_id']}")
            assert view["signature"]["verdict"] == "valid"
            assert view["signature"]["transit_hops"] == 1
            _, package = await ministry.get_bytes(f"/v1/deliveries/{item['delivery_id']}/package")
            assert [h.organ_id for h in parse_package(package).edoc.trace_headers] == [DEPT, CITY, CENTRAL]
            verdict = verify_signature(parse_package(package).root, DEPT, trust, datetime.now(UTC))
            assert (verdict.verdict, verdict.transit_hops) == (Verdict.VALID, 2), verdict.reason
            assert verdict.reason.endswith("; signed before 2 transit hops")

            # The same package changed in transit is refused under `required`, and nothing is stored.
            relay = Client(session, national.url, national_keys["truc-thanh-pho"])
            tampered = append_trace_header(
                signed.replace("thử nghiệm".encode(), "thử-nghiệm".encode()), CITY, datetime.now(UTC)
            ).replace(b"90/SNV-VP", b"91/SNV-VP")
            status, refused = await relay.post_package(tampered)
            assert status == 422, refused
            assert refused["error"]["code"] == "signature_rejected"
            assert "digest mismatch" in refused["error"]["details"][0]["reason"]
            _, inbox = await ministry.get_json("/v1/inbox?kind=edoc")
            assert len(inbox["items"]) == 1
    finally:
        await city.stop()
        assert await national.stop() == 0
