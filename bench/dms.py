"""Document-management systems as the reliability benchmarks see them, with their OWN records.

A sender resubmits a package after an uncertain outcome (a connection error, a timeout or a
503: the axis may or may not have stored it), as a real DMS would; the identical package gets
the original answer, so a resubmission never makes a second document. Recipients (a push
endpoint and pull consumers that download and acknowledge) record every document they
received and under which delivery id. Exactly-once is judged from these two records, never
from the server's tables (whose unique indexes would make such counts unable to fail).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.harness import serve_post

_DOCUMENT_ID = re.compile(rb"<(?:\w+:)?DocumentId>([^<]+)<")
UNCERTAIN = (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, ValueError)


def document_id_of(package: bytes) -> str:
    found = _DOCUMENT_ID.search(package)
    if found is None:
        raise ValueError("no DocumentId in the package")
    return found.group(1).decode()


@dataclass
class Senders:
    """What the senders know: which documents the axis acknowledged, and under which message id."""

    keys: dict[str, str]  # OrganId -> API key
    acknowledged: dict[str, str] = field(default_factory=dict)  # document id -> message id
    expected: dict[str, tuple[str, ...]] = field(default_factory=dict)  # document id -> its recipients
    answered_twice_differently: set[str] = field(default_factory=set)  # a second message id: duplicated
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # definite refusals by code
    uncertain: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # outcomes resubmitted
    resubmitted: int = 0
    failure_times: list[float] = field(default_factory=list)  # monotonic times of uncertain outcomes
    success_times: list[float] = field(default_factory=list)

    async def submit(
        self,
        session: aiohttp.ClientSession,
        urls: Callable[[], Sequence[str]],
        sender: str,
        package: bytes,
        recipients: tuple[str, ...],
        give_up_after_s: float = 120,
        pause_s: float = 0.5,
    ) -> None:
        """Post until the axis answers definitely (2xx or a refusal), trying the servers in turn.

        Like a well-behaved DMS it waits as long as a 503's ``Retry-After`` asks, and backs off
        (with jitter) after connection errors and timeouts, so an outage is not met with a storm.
        """
        document_id = document_id_of(package)
        self.expected[document_id] = recipients
        headers = {"Authorization": f"Bearer {self.keys[sender]}"}
        deadline = time.monotonic() + give_up_after_s
        attempt = 0
        backoff = pause_s
        while time.monotonic() < deadline:
            choices = urls()
            url = choices[(hash(document_id) + attempt) % len(choices)]
            attempt += 1
            retry_after = None
            try:
                async with session.post(f"{url}/v1/packages", data=package, headers=headers) as response:
                    body = await response.json()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except UNCERTAIN as exc:
                self._uncertain(type(exc).__name__)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # spreading retries, not security
                backoff = min(backoff * 2, 4.0)
                continue
            if status in (200, 201):
                self.success_times.append(time.monotonic())
                previous = self.acknowledged.setdefault(document_id, body["message_id"])
                if previous != body["message_id"]:
                    self.answered_twice_differently.add(document_id)
                return
            if status in (502, 503, 504):
                self._uncertain(f"http_{status}")
                wait = float(retry_after) if retry_after and retry_after.isdigit() else backoff
                await asyncio.sleep(wait * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 4.0)
                continue
            self.refused[f"http_{status}_{body.get('error', {}).get('code')}"] += 1
            return
        self.refused["gave_up"] += 1

    def _uncertain(self, kind: str) -> None:
        self.uncertain[kind] += 1
        self.resubmitted += 1
        self.failure_times.append(time.monotonic())

    def unavailable_s(self) -> float:
        """From the first uncertain answer to the first acknowledgement after the last one."""
        if not self.failure_times:
            return 0.0
        first, last = self.failure_times[0], self.failure_times[-1]
        recovered = next((t for t in sorted(self.success_times) if t > last), last)
        return round(recovered - first, 2)


class Recipients:
    """What the recipients received: (document id, recipient) -> the delivery ids it came under."""

    def __init__(
        self, keys: dict[str, str], pull: Sequence[str], fail_every: Callable[[], bool] | None = None
    ):
        self.keys = keys
        self.pull = list(pull)
        self.received: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.errors: dict[str, int] = defaultdict(int)
        self._fail = fail_every or (lambda: False)

    async def push_endpoint(self) -> tuple[web.AppRunner, str]:
        """One endpoint for every push recipient; ``?to=ORGANID`` tells them apart."""

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            if self._fail():
                return web.Response(status=503)
            key = (document_id_of(body), request.url.query.get("to", ""))
            self.received[key].add(request.headers.get("X-Exchange-Delivery-Id", ""))
            return web.Response(status=204)

        return await serve_post(receive, "/push")

    async def consume(
        self, session: aiohttp.ClientSession, urls: Callable[[], Sequence[str]], done: Callable[[], bool]
    ) -> None:
        """Every pull recipient lists its inbox, downloads and acknowledges, until ``done()``."""
        await asyncio.gather(*(self._one(session, urls, organ, done) for organ in self.pull))

    async def _one(
        self,
        session: aiohttp.ClientSession,
        urls: Callable[[], Sequence[str]],
        organ: str,
        done: Callable[[], bool],
    ) -> None:
        headers = {"Authorization": f"Bearer {self.keys[organ]}"}
        while not done():
            items: list[dict[str, Any]] = []
            url = random.choice(list(urls()))  # spreading load, not security
            try:
                async with session.get(f"{url}/v1/inbox?limit=100", headers=headers) as response:
                    if response.status == 200:
                        items = (await response.json())["items"]
                    else:
                        self.errors[f"inbox_http_{response.status}"] += 1
                for item in items:
                    await self._take(session, url, headers, organ, item["delivery_id"])
            except UNCERTAIN as exc:
                self.errors[type(exc).__name__] += 1
            if not items:
                await asyncio.sleep(0.1)  # an empty inbox: poll again shortly

    async def _take(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str], organ: str, delivery_id: str
    ) -> None:
        async with session.get(f"{url}/v1/deliveries/{delivery_id}/package", headers=headers) as response:
            if response.status != 200:
                self.errors[f"download_http_{response.status}"] += 1
                return
            package = await response.read()
        self.received[(document_id_of(package), organ)].add(delivery_id)
        async with session.post(
            f"{url}/v1/deliveries/{delivery_id}/ack", json={"result": "done"}, headers=headers
        ) as response:
            await response.read()
            if response.status != 200:
                self.errors[f"ack_http_{response.status}"] += 1  # still in the inbox: taken again

    def missing(self, senders: Senders) -> list[tuple[str, str]]:
        """(document, recipient) pairs acknowledged to a sender but not (yet) received."""
        return [
            (document, recipient)
            for document in senders.acknowledged
            for recipient in senders.expected[document]
            if not self.received.get((document, recipient))
        ]

    def received_twice(self) -> list[tuple[str, str]]:
        """A document that reached one recipient under two delivery ids: a second fan-out."""
        return [key for key, ids in self.received.items() if len(ids) > 1]


def verdict(senders: Senders, recipients: Recipients) -> dict[str, Any]:
    """Lost and duplicated documents, judged only from the senders' and recipients' records."""
    missing = recipients.missing(senders)
    twice = recipients.received_twice()
    unexpected = [key for key in recipients.received if key[0] not in senders.expected]
    duplicated = {document for document, _ in twice} | senders.answered_twice_differently
    return {
        "acknowledged": len(senders.acknowledged),
        "lost": len({document for document, _ in missing}),
        "duplicated": len(duplicated),
        "received_unasked": len(unexpected),
        "deliveries_received": sum(len(ids) for ids in recipients.received.values()),
        "resubmitted": senders.resubmitted,
        "uncertain_outcomes": dict(senders.uncertain),
        "refused": dict(senders.refused),
        "recipient_errors": dict(recipients.errors),
    }
