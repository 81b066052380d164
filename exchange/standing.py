"""Whether agencies may send and receive: one rule for intake, pulls and the facade.

An agency is in service when it is active, approved and its serving system is not
disabled (``Agency.state``; the SQL view ``agencies_in_service`` holds the same rule for
the queue queries). Packages from or to the others are refused; deliveries already
accepted for them are held, not failed, and resume when they are back in service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exchange.errors import AgencyDisabled, AgencyPending, DeliveryHeld, ErrorDetail, UnknownRecipient
from exchange.model import Agency, AgencyState

_TO = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To/OrganId"
_FROM = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From/OrganId"
_WHY = {
    AgencyState.PENDING: "is pending an admin's approval (registered through the VXP facade)",
    AgencyState.DISABLED: "is disabled (by an admin, or its system is)",
}


def check_sender(organ_id: str, agency: Agency | None) -> None:
    """A registered sender must be in service (an unregistered one is an upstream axis's)."""
    if agency is None or agency.in_service:
        return
    error = AgencyPending if agency.state is AgencyState.PENDING else AgencyDisabled
    raise error(
        f"the sender {organ_id} {_WHY[agency.state]} and cannot send",
        [ErrorDetail(f"{organ_id} is {agency.state.value}", path=_FROM)],
    )


def check_recipients(organ_ids: Sequence[str], registered: Mapping[str, Agency]) -> None:
    """Every recipient must be registered and in service; the refusal names each one that is not."""
    unknown = [o for o in organ_ids if o not in registered]
    if unknown:
        raise UnknownRecipient(
            "the package names recipients the axis cannot deliver to",
            [ErrorDetail(f"recipient {o} is not a registered agency", path=_TO) for o in unknown],
        )
    idle = [registered[o] for o in organ_ids if not registered[o].in_service]
    if not idle:
        return
    error = AgencyPending if any(a.state is AgencyState.PENDING for a in idle) else AgencyDisabled
    raise error(
        "the package names recipients that do not receive now",
        [ErrorDetail(f"recipient {a.organ_id} {_WHY[a.state]}", path=_TO) for a in idle],
    )


def check_held(agency: Agency | None, delivery_id: object) -> None:
    """A delivery to an agency not in service is held: kept, but not handed out until it is back."""
    if agency is not None and not agency.in_service:
        raise DeliveryHeld(
            f"delivery {delivery_id} is held: {agency.organ_id} {_WHY[agency.state]}; "
            "it is served again once the agency is back in service"
        )
