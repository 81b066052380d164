"""Alerts: deliveries given up, overdue documents, agencies that keep failing, certificates
about to expire. Each is a structured log event and, when configured, a webhook POST; each
is sent once (an ``alerts_sent`` row), also with several server processes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
from cryptography import x509

from exchange.clock import now, today_in_vietnam
from exchange.logs import get_logger
from exchange.settings import AlertSettings
from exchange.store import operations as operations_store
from exchange.store.db import Pool
from exchange.store.deliveries import Claimed

log = get_logger(__name__)


class Alerter:
    def __init__(self, pool: Pool, settings: AlertSettings, axis_certificate: x509.Certificate) -> None:
        self._pool = pool
        self._settings = settings
        self._axis = axis_certificate
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def delivery_given_up(self, outcome: str, claim: Claimed) -> None:
        await self.send(
            f"delivery_{outcome}",
            "error",
            f"delivery:{claim.id}",
            {
                "delivery_id": str(claim.id),
                "message_id": str(claim.message_id),
                "organ_id": claim.recipient,
                "attempts": claim.attempts,
            },
        )

    async def sweep(self) -> None:
        """Look for overdue documents, failing agencies and expiring certificates."""
        async with self._pool.acquire() as conn:
            overdue = await operations_store.overdue_documents(conn, today_in_vietnam(), 500)
            hour = now().replace(minute=0, second=0, microsecond=0)
            failing = await operations_store.failing_agencies(
                conn, now() - timedelta(hours=1), self._settings.failing_agency_threshold
            )
            horizon = now() + timedelta(days=self._settings.certificate_warning_days)
            expiring = await operations_store.expiring_certificates(conn, horizon)
        for document in overdue:
            await self.send(
                "document_overdue",
                "warning",
                f"overdue:{document.id}",
                {
                    "message_id": str(document.id),
                    "document_id": document.document_id,
                    "sender": document.sender,
                    "due_date": document.due_date.isoformat(),
                },
            )
        for organ_id, count in failing:
            await self.send(
                "agency_failing",
                "error",
                f"failing:{organ_id}:{hour.isoformat()}",
                {"organ_id": organ_id, "given_up_last_hour": count},
            )
        for certificate in expiring:
            fingerprint = certificate.fingerprint.hex()
            await self.send(
                "certificate_expiring",
                "warning",
                f"expiring:{fingerprint}",
                {
                    "fingerprint": fingerprint,
                    "subject": certificate.subject,
                    "role": certificate.role,
                    "organ_id": certificate.organ_id,
                    "not_after": certificate.not_after.isoformat(),
                },
            )
        if self._axis.not_valid_after_utc < horizon:
            await self.send(
                "certificate_expiring",
                "critical",
                f"expiring:axis:{self._axis.serial_number}",
                {
                    "subject": self._axis.subject.rfc4514_string(),
                    "role": "axis",
                    "not_after": self._axis.not_valid_after_utc.isoformat(),
                },
            )

    async def send(self, alert: str, severity: str, key: str, details: dict[str, Any]) -> bool:
        """Raise an alert once per key; returns whether it was new."""
        async with self._pool.acquire() as conn:
            if not await operations_store.mark_alert_sent(conn, key):
                return False
        log.warning(f"alert.{alert}", severity=severity, **details)
        if self._settings.webhook_url and self._session is not None:
            body = {"alert": alert, "severity": severity, "details": details, "at": now().isoformat()}
            try:
                async with self._session.post(self._settings.webhook_url, json=body) as response:
                    if response.status >= 300:
                        log.warning("alert.webhook_refused", status=response.status, alert=alert)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("alert.webhook_failed", error=str(exc), alert=alert)
        return True
