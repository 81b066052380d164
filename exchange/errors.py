"""The axis's own errors. Each knows its HTTP status and stable code, so one
middleware (and one CLI handler) renders them all the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    """One problem inside a request: where it is and why it is wrong."""

    reason: str
    path: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"reason": self.reason}
        if self.path is not None:
            shown["path"] = self.path
        if self.line is not None:
            shown["line"] = self.line
        return shown

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (f"line {self.line}" if self.line else "", self.path or "") if part
        )
        return f"{where}: {self.reason}" if where else self.reason


class ExchangeError(Exception):
    """Base of every error the axis reports on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: Sequence[ErrorDetail] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the JSON body."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "details": [detail.as_dict() for detail in self.details],
            }
        }


class ConfigError(ExchangeError):
    """The configuration (file, environment or flags) cannot be used."""

    code = "config_error"


class BadRequest(ExchangeError):
    status = 400
    code = "bad_request"


class Unauthenticated(ExchangeError):
    status = 401
    code = "unauthenticated"


class Forbidden(ExchangeError):
    status = 403
    code = "forbidden"


class NotFound(ExchangeError):
    status = 404
    code = "not_found"


class Conflict(ExchangeError):
    status = 409
    code = "conflict"


class NotSealedYet(Conflict):
    """The audit entries an evidence bundle must prove are not anchored by a checkpoint yet."""

    code = "not_sealed_yet"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class InvalidInput(ExchangeError):
    """Well-formed input that breaks a rule: a bad OrganId, an unknown parent, a bad row."""

    status = 422
    code = "invalid_input"


class TooLong(InvalidInput):
    """A free-text field longer than its bound (exchange.bounds)."""

    code = "too_long"


class SenderNotOwned(InvalidInput):
    code = "sender_not_owned"


class UnknownRecipient(InvalidInput):
    code = "unknown_recipient"


class UnknownDocument(InvalidInput):
    code = "unknown_document"


class SignatureRejected(InvalidInput):
    code = "signature_rejected"


class AgencyPending(InvalidInput):
    """A sender or recipient registered through the VXP facade and not yet approved."""

    code = "agency_pending"


class AgencyDisabled(InvalidInput):
    """A sender or recipient disabled by an admin (or served by a disabled system)."""

    code = "agency_disabled"


class DeliveryHeld(Conflict):
    """A delivery to an agency that is not in service: kept, and served again once it is enabled."""

    code = "delivery_held"


class DocumentNotOfficial(InvalidInput):
    """The sender requires official documents and the main PDF is not one (which part is wrong in details)."""

    code = "document_not_official"


class DuplicateDocument(Conflict):
    code = "duplicate_document"


class DocumentIdNotSender(InvalidInput):
    """The DocumentId's OrganId part names another agency than the package's From."""

    code = "document_id_not_sender"


class NoRecipients(InvalidInput):
    """A submission whose scope names no recipient at all (VXP ``to: []``)."""

    code = "no_recipients"


class NotReceived(Conflict):
    """A progress status (01-06) about a copy that never reached the reporting recipient."""

    code = "not_received"


class AmbiguousDocument(Conflict):
    """A status that could be about documents of several senders; the axis does not guess."""

    code = "ambiguous_document"


class AckConflict(Conflict):
    """An acknowledgement that contradicts the one already given for the same copy."""

    code = "ack_conflict"


class Gone(ExchangeError):
    status = 410
    code = "withdrawn"


class DuplicateAgency(Conflict):
    code = "duplicate_agency"


class DuplicateSystem(Conflict):
    code = "duplicate_system"


class TooManyRequests(ExchangeError):
    """A caller over one of its limits: it may come back after ``retry_after`` seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, details: Sequence[ErrorDetail] = (), *, retry_after: float = 1) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class TooManyConnections(TooManyRequests):
    code = "too_many_connections"


class Busy(TooManyRequests):
    """The axis as a whole holds as much as it may; nobody in particular is at fault."""

    status = 503
    code = "busy"


class DatabaseUnavailable(ExchangeError):
    status = 503
    code = "database_unavailable"
