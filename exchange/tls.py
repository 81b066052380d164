"""HTTPS for the server, and mutual TLS where client certificates identify systems."""

from __future__ import annotations

import hashlib
import ssl

from exchange.errors import ConfigError
from exchange.settings import ServerSettings


def server_ssl_context(server: ServerSettings) -> ssl.SSLContext | None:
    """The TLS context to serve with, or None for plain HTTP."""
    if not server.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(server.tls_certificate, server.tls_key or None)
        if server.tls_client_ca:
            context.load_verify_locations(server.tls_client_ca)
            # Optional: callers without a certificate still authenticate with an API key.
            context.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot set up TLS: {exc}") from None
    return context


def peer_certificate_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    """SHA-256 of the client certificate the TLS handshake verified, if any."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(der).digest() if der else None
