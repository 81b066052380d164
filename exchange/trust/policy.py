"""Signature policy: given an agency's policy and a verdict, accept or refuse the package.

- ``required``: only a valid signature is accepted.
- ``if-present`` (the default): an absent signature is accepted, a bad one refused.
- ``record``: the verdict is recorded, nothing is refused (many packages in circulation
  carry placeholder signatures).
- ``off``: the signature is not checked at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from exchange.edxml.aside import Aside
from exchange.model import SignaturePolicy
from exchange.trust.signatures import SignatureVerdict, TrustMaterial, Verdict, verify_signature


@dataclass(frozen=True)
class Decision:
    accepted: bool
    verdict: SignatureVerdict

    @property
    def reason(self) -> str:
        return self.verdict.reason


def check_signature(
    root: etree._Element,
    sender: str,
    policy: SignaturePolicy,
    trust: TrustMaterial,
    at: datetime,
    aside: Aside | None = None,
) -> Decision:
    """Verify (unless the policy is off) and decide (``aside``: see verify_signature)."""
    if policy is SignaturePolicy.OFF:
        verdict = SignatureVerdict(Verdict.NOT_CHECKED, "the sender's signature policy is off")
    else:
        verdict = verify_signature(root, sender, trust, at, aside)
    return Decision(admits(policy, verdict.verdict), verdict)


def admits(policy: SignaturePolicy, verdict: Verdict) -> bool:
    if policy in (SignaturePolicy.RECORD, SignaturePolicy.OFF):
        return True
    if policy is SignaturePolicy.REQUIRED:
        return verdict is Verdict.VALID
    return verdict in (Verdict.VALID, Verdict.ABSENT)
