"""The axis's own identity: the certificate and key it signs receipts, checkpoints and pushes with.

Production configures ``trust.axis_certificate`` and ``trust.axis_key``. Without them a
development certificate (from a development CA) is made once in ``<data_dir>/axis/`` and
reused by every process on that data directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from exchange.errors import ConfigError
from exchange.receipts import with_receipt_key
from exchange.settings import Settings
from exchange.trust import devca
from exchange.trust.signing import Signer

_CERTIFICATE = "axis-signing.pem"
_KEY = "axis-signing.key.pem"


def load_axis_signer(settings: Settings) -> Signer:
    """The axis identity, with the receipt key that ``trust.receipt_algorithm`` asks for."""
    return with_receipt_key(_load_identity(settings), settings.trust.receipt_algorithm)


def _load_identity(settings: Settings) -> Signer:
    trust = settings.trust
    if bool(trust.axis_certificate) != bool(trust.axis_key):
        raise ConfigError("trust.axis_certificate and trust.axis_key must be set together")
    if trust.axis_certificate:
        return _from_files(Path(trust.axis_certificate), Path(trust.axis_key))
    directory = settings.data_dir.resolve() / "axis"
    if not (directory / _CERTIFICATE).exists():
        _make_development_identity(directory)
    return _from_files(directory / _CERTIFICATE, directory / _KEY)


def _from_files(certificate: Path, key: Path) -> Signer:
    try:
        return Signer.from_files(certificate, key)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the axis signing certificate: {exc}") from None


def _make_development_identity(directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".axis-", dir=directory.parent))
    ca = devca.make_ca("Exchange Development CA (axis)")
    axis = devca.issue_signing_cert(ca, organ_id=None, common_name="exchange-axis (development)")
    (staging / "ca.pem").write_bytes(ca.cert_pem())
    (staging / _CERTIFICATE).write_bytes(axis.cert_pem())
    key_path = staging / _KEY
    key_path.write_bytes(axis.key_pem())
    key_path.chmod(0o600)
    try:
        # Atomic: when several processes start at once, one identity wins and all use it.
        os.rename(staging, directory)
    except OSError:
        shutil.rmtree(staging)
