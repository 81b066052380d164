"""HTTPS and mutual TLS with the development CA, against a real server process."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from exchange.trust import devca
from tests.e2e.conftest import exchange, running_server


def https_get(url: str, ca: Path, client: tuple[Path, Path] | None = None) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def write_identity(directory: Path, name: str, issued: devca.Issued) -> tuple[Path, Path]:
    certificate, key = directory / f"{name}.pem", directory / f"{name}.key.pem"
    certificate.write_bytes(issued.cert_pem())
    key.write_bytes(issued.key_pem())
    return certificate, key


def test_https_and_mutual_tls(tmp_path: Path, database_url: str, dev_pki: dict[str, Path]) -> None:
    ca = devca.Issued(*_load(dev_pki["ca"], dev_pki["ca_key"]))
    registered = write_identity(tmp_path, "dept-dms", devca.issue_tls_client_cert(ca, system_name="dept-dms"))
    unregistered = write_identity(
        tmp_path, "stranger", devca.issue_tls_client_cert(ca, system_name="stranger")
    )
    rogue_ca = devca.make_ca("Rogue CA")
    foreign = write_identity(
        tmp_path, "foreign", devca.issue_tls_client_cert(rogue_ca, system_name="dept-dms")
    )

    added = exchange("system", "add", "dept-dms", "--role", "system", "--database-url", database_url)
    assert added.returncode == 0, added.stderr
    linked = exchange("system", "client-cert", "dept-dms", str(registered[0]), "--database-url", database_url)
    assert linked.returncode == 0, linked.stderr

    config = tmp_path / "tls.toml"
    config.write_text(
        "[server]\n"
        f'tls_certificate = "{dev_pki["server"]}"\n'
        f'tls_key = "{dev_pki["server_key"]}"\n'
        f'tls_client_ca = "{dev_pki["ca"]}"\n'
        "[trust]\n"
        f'axis_certificate = "{dev_pki["axis"]}"\n'
        f'axis_key = "{dev_pki["axis_key"]}"\n'
    )
    with running_server(["--config", str(config), "--database-url", database_url]) as server:
        assert server.url.startswith("https://")
        base = server.url.replace("127.0.0.1", "localhost")  # the name the server certificate carries
        assert https_get(f"{base}/readyz", dev_pki["ca"])[0] == 200

        status, body = https_get(f"{base}/v1/agencies", dev_pki["ca"], client=registered)
        assert status == 200, body

        status, body = https_get(f"{base}/v1/agencies", dev_pki["ca"], client=unregistered)
        assert status == 401
        assert body["error"]["message"] == "the client certificate is not registered to any system"

        assert https_get(f"{base}/v1/agencies", dev_pki["ca"])[0] == 401

        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
            https_get(f"{base}/v1/agencies", dev_pki["ca"], client=foreign)

        with pytest.raises((ssl.SSLError, urllib.error.URLError)):
            https_get(f"{base}/readyz", rogue_ca_file(tmp_path, rogue_ca))  # the server is not the rogue's
        assert server.stop() == 0


def rogue_ca_file(directory: Path, rogue: devca.Issued) -> Path:
    path = directory / "rogue-ca.pem"
    path.write_bytes(rogue.cert_pem())
    return path


def _load(certificate: Path, key: Path) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return (
        x509.load_pem_x509_certificate(certificate.read_bytes()),
        serialization.load_pem_private_key(key.read_bytes(), password=None),
    )
