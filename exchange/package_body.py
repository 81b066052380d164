"""A received package's bytes: in memory while small, in a temporary file beyond that.

Intake reads a package more than once (the parser, then the store), so the bytes are kept
where reading them again costs no memory: a spooled temporary file (``TMPDIR``, removed when
closed). The SHA-256 and the size are taken while the bytes arrive, and the configured
maximum is enforced as they do, so a body over the limit is never held whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import IO, TypeVar

from lxml import etree

from exchange.edxml.aside import Aside
from exchange.edxml.errors import PackageTooLarge
from exchange.edxml.parser import Limits, parse_xml

# Bodies up to this size stay in memory; larger ones go to a temporary file.
SPOOL_IN_MEMORY_BYTES = 1024 * 1024
# How much is read from the spool (to parse or to store) at a time.
CHUNK_BYTES = 1024 * 1024
# CPU-heavy work on a package larger than this (parsing, checking, decoding) runs in a worker thread.
OFF_LOOP_BYTES = 256 * 1024
T = TypeVar("T")


def too_large(size: int, limit: int) -> PackageTooLarge:
    return PackageTooLarge(
        f"the package is larger than {limit} bytes (limits.max_package_bytes)"
        + (f": {size} bytes" if size > limit else "")
    )


class PackageBody:
    """Bytes written once, in order, then read as often as needed; ``close`` frees them."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self._sha256: bytes | None = None
        self.size = 0
        # The tree, when the hardened parser read the body as it arrived (exchange.api.bodies) or
        # ``parse`` did, and the attachment texts it holds markers for (exchange.edxml.aside).
        self.root: etree._Element | None = None
        self.aside: Aside | None = None

    @classmethod
    def of(cls, data: bytes, max_bytes: int | None = None) -> PackageBody:
        """A body for bytes already in hand (a relayed package, a test)."""
        limit = max_bytes if max_bytes is not None else len(data)
        if len(data) > limit:
            raise too_large(len(data), limit)
        body = cls(limit)
        body._file.close()  # the spool made for a body that arrives; this one is in hand
        body._file = io.BytesIO(data)  # shares the bytes: no copy of what is already in memory
        body._hash.update(data)
        body.size = len(data)
        body.finish()
        return body

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; PackageTooLarge (413) as soon as the body would pass the maximum."""
        if self._sha256 is not None:
            raise RuntimeError("the body is complete")
        if self.size + len(chunk) > self._max:
            raise too_large(self.size + len(chunk), self._max)
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        self._sha256 = self._hash.digest()

    @property
    def sha256(self) -> bytes:
        if self._sha256 is None:
            raise RuntimeError("the body is not complete yet")
        return self._sha256

    def reader(self) -> IO[bytes]:
        """The bytes from the start, as a file (one reader at a time)."""
        self._file.seek(0)
        return self._file

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        source = self.reader()
        while chunk := source.read(size):
            yield chunk

    def parse(self, limits: Limits) -> etree._Element:
        """Parse the bytes (hardened, a chunk at a time) with the attachment texts set aside."""
        self.aside = Aside(source=self.chunks)
        self.root = parse_xml(self.reader(), limits, self.aside)
        return self.root

    @property
    def large(self) -> bool:
        return self.size > OFF_LOOP_BYTES

    async def work(self, work: Callable[[], T]) -> T:
        """``work`` on this package: in a worker thread when the package is large, so that the event
        loop serves the other requests meanwhile; here otherwise (a thread costs more than it)."""
        return await asyncio.to_thread(work) if self.large else work()

    def head(self, size: int) -> bytes:
        return self.reader().read(size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PackageBody:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
