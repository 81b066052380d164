"""What a recipient receives, read from the database a chunk at a time.

The original bytes plus this axis's TraceHeader (edoc only), never held whole: the place
of the TraceHeader is found from the head of the stored body, then pushes, downloads,
forwarding and the VXP facade stream prefix, TraceHeader and the rest. Each chunk is
read on a connection taken from the pool for that read alone, so a slow recipient holds
no database connection while it reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

from exchange.clock import VIETNAM
from exchange.edxml.trace import Splice, find_splice
from exchange.store import messages as message_store
from exchange.store.db import Connection, Pool
from exchange.store.messages import MessageRow


class BodyMissing(LookupError):
    """The message or its bytes are gone (retention removed them)."""


@dataclass(frozen=True)
class OutgoingPackage:
    """A stored message as a recipient gets it; ``stream(pool)`` reads it."""

    message: MessageRow
    chunk_count: int
    head: bytes  # the first chunk, read with the message
    splice: Splice | None  # None: sent as stored (status packages)

    @property
    def size(self) -> int:
        return self.message.size_bytes + (len(self.splice.insertion) if self.splice is not None else 0)

    def stream(self, pool: Pool) -> PackageStream:
        return PackageStream(self, pool)


@dataclass(frozen=True)
class PackageStream:
    """An OutgoingPackage with the pool to read it from: what adapters send."""

    package: OutgoingPackage
    pool: Pool

    @property
    def size(self) -> int:
        return self.package.size

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, in order; BodyMissing if they are removed meanwhile (the stream stops short)."""
        package, position = self.package, 0
        pending = package.splice
        for seq in range(package.chunk_count):
            chunk = package.head if seq == 0 else await self._chunk(seq)
            if chunk is None:
                raise BodyMissing(f"the body of message {package.message.id} was removed")
            if pending is not None and pending.offset <= position + len(chunk):
                cut = pending.offset - position
                if cut:
                    yield chunk[:cut]
                yield pending.insertion
                position, chunk, pending = position + cut, chunk[cut:], None
            if chunk:
                yield chunk
            position += len(chunk)

    async def _chunk(self, seq: int) -> bytes | None:
        async with self.pool.acquire() as conn:
            return await message_store.body_chunk(conn, self.package.message.id, seq)

    async def sha256(self) -> bytes:
        """The SHA-256 of what ``chunks`` yields (one pass over the stored bytes)."""
        digest = hashlib.sha256()
        async for chunk in self.chunks():
            digest.update(chunk)
        return digest.digest()

    async def read(self) -> bytes:
        """All of it at once: only for what must be whole (a base64 JSON field of a small package)."""
        return b"".join([chunk async for chunk in self.chunks()])


async def load_package(conn: Connection, message_id: UUID, trace_organ_id: str) -> OutgoingPackage:
    """The message and where its TraceHeader goes; BodyMissing when either is gone."""
    found = await message_store.message_with_head(conn, message_id)
    if found is None:
        raise BodyMissing(f"message {message_id} or its body is missing")
    message, count, head = found
    splice = None
    if message.kind == "edoc":
        splice = await _find_splice(conn, message, count, head, trace_organ_id)
    return OutgoingPackage(message, count, head, splice)


async def _find_splice(
    conn: Connection, message: MessageRow, count: int, head: bytes, trace_organ_id: str
) -> Splice:
    """The header decides, and it comes first: almost always within the first chunk."""
    hop = message.received_at.astimezone(VIETNAM).replace(tzinfo=None)
    for seq in range(1, count + 1):
        splice = find_splice(head, trace_organ_id or None, hop, complete=seq == count)
        if splice is not None:
            return splice
        if seq < count:
            chunk = await message_store.body_chunk(conn, message.id, seq)
            if chunk is None:
                raise BodyMissing(f"the body of message {message.id} was removed")
            head += chunk
    raise BodyMissing(f"the body of message {message.id} has no chunks")
