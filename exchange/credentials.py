"""API keys: how they are made and how they are stored.

Keys are 256 random bits, so a plain SHA-256 is enough to store them: there is
nothing to brute-force, and a fast hash keeps authentication to one indexed
lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "exk_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()
