"""The registry's vocabulary: roles, delivery modes, policies, and the rows the store returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Role(enum.StrEnum):
    """What a calling system may do (mirrored by the ``system_role`` type in PostgreSQL)."""

    SYSTEM = "system"  # sends and receives for the OrganIds it serves
    AUDITOR = "auditor"  # reads everything, changes nothing
    ADMIN = "admin"  # manages the registry and operations


class DeliveryMode(enum.StrEnum):
    """How documents reach an agency (mirrored by ``delivery_mode``)."""

    PULL = "pull"  # its system polls the inbox
    PUSH = "push"  # the axis POSTs to its endpoint
    UPSTREAM = "upstream"  # served by another axis; packages are forwarded there


class AgencyState(enum.StrEnum):
    """Whether an agency may send and receive (the SQL view ``agencies_in_service`` says the same)."""

    ACTIVE = "active"  # in service
    PENDING = "pending"  # registered through the VXP facade, not yet approved by an admin
    DISABLED = "disabled"  # disabled or deleted, or its serving system is disabled: deliveries are held


class AttachmentSignaturePolicy(enum.StrEnum):
    """What the axis does with the signatures inside a sender's attachments
    (mirrored by ``attachment_signature_policy``)."""

    OFF = "off"  # not looked at
    RECORD = "record"  # judged and shown, nothing refused
    OFFICIAL_REQUIRED = "official-required"  # the main document must be official, or 422


class SignaturePolicy(enum.StrEnum):
    """What the axis does with a package's XML signature (mirrored by ``signature_policy``)."""

    REQUIRED = "required"
    IF_PRESENT = "if-present"
    RECORD = "record"
    OFF = "off"


@dataclass(frozen=True)
class System:
    """A registered caller: a DMS, an auditor tool or an operator."""

    id: int
    name: str
    role: Role
    active: bool
    created_at: datetime
    key_rotated_at: datetime
    organ_ids: tuple[str, ...] = ()
    relay: bool = False  # stands for an upstream axis: may act for senders no local system serves
    # Those of ``organ_ids`` in service now: what it may see as sender or recipient. A pending agency
    # (registered through VXP, unapproved) or a disabled one gives no visibility: its deliveries are
    # held, and reading is held with them.
    serving: tuple[str, ...] = ()
    # The registry's version number when this record was read, for a caller at its authentication:
    # intake checks the caller's packages under that version, without reading it again. None: unknown.
    registry_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "system_id": self.id,
            "name": self.name,
            "role": self.role.value,
            "active": self.active,
            "organ_ids": list(self.organ_ids),
            "created_at": self.created_at.isoformat(),
            "key_rotated_at": self.key_rotated_at.isoformat(),
        }


@dataclass(frozen=True)
class Agency:
    """A government body that sends or receives documents through the axis."""

    organ_id: str
    name: str
    parent: str | None
    system: str | None
    mode: DeliveryMode
    endpoint: str | None
    signature_policy: SignaturePolicy | None
    active: bool
    allow_sha1: bool | None = None
    max_attempts: int | None = None
    max_age_s: int | None = None
    pending: bool = False  # registered through the VXP facade, waiting for an admin's approval
    system_active: bool = True  # its serving system (if any) is not disabled
    foreign_document_ids: bool = False  # tolerate DocumentIds naming another agency (legacy producers)
    attachment_signature_policy: AttachmentSignaturePolicy | None = None  # None: the global default

    @property
    def state(self) -> AgencyState:
        """Pending approval, disabled (itself or its system), or in service: only the last sends, receives."""
        if self.pending:
            return AgencyState.PENDING
        if not self.active or not self.system_active:
            return AgencyState.DISABLED
        return AgencyState.ACTIVE

    @property
    def in_service(self) -> bool:
        return self.state is AgencyState.ACTIVE

    def as_dict(self) -> dict[str, Any]:
        return {
            "organ_id": self.organ_id,
            "name": self.name,
            "parent": self.parent,
            "system": self.system,
            "mode": self.mode.value,
            "endpoint": self.endpoint,
            "signature_policy": None if self.signature_policy is None else self.signature_policy.value,
            "active": self.active,
            "allow_sha1": self.allow_sha1,
            "max_attempts": self.max_attempts,
            "max_age_s": self.max_age_s,
            "pending": self.pending,
            "state": self.state.value,
            "foreign_document_ids": self.foreign_document_ids,
            "attachment_signature_policy": None
            if self.attachment_signature_policy is None
            else self.attachment_signature_policy.value,
        }


@dataclass(frozen=True)
class AgencySpec:
    """A checked request to register one agency (from a flag, an API call or an import row)."""

    organ_id: str
    name: str
    parent: str | None = None
    system: str | None = None
    mode: DeliveryMode = DeliveryMode.PULL
    endpoint: str | None = None
    signature_policy: SignaturePolicy | None = None
    active: bool = True
    allow_sha1: bool | None = None  # None: the global setting
    max_attempts: int | None = None  # None: the [delivery] settings
    max_age_s: int | None = None
    pending: bool = False
    foreign_document_ids: bool = False  # accept its DocumentIds that name another agency
    attachment_signature_policy: AttachmentSignaturePolicy | None = None  # None: the global setting
