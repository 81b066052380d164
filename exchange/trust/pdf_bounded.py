"""Running PDF signature validation within known bounds, off the event loop.

A crafted PDF (deep object graphs, thousands of revisions, compression bombs) can cost
unbounded time or memory inside a PDF library, and a thread cannot be stopped. So the
PDFs of a package are judged in a child process that caps its own address space, under
one deadline for the package: a child that runs past it is killed, and the PDFs it had
not answered for are ``unverifiable``. Children are forked by a zygote
(``exchange.trust.pdf_zygote``, one per process, started on first use) that has pyHanko
loaded, so a child costs milliseconds to start. Cheap checks (not a PDF, over the size
limit, no signature dictionary at all) are made here first, so that most packages need
no child at all.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from exchange.trust.pdf_signatures import (
    AttachmentReport,
    DocumentTrust,
    Item,
    PdfLimits,
    PdfSignature,
    describe_items,
    looks_like_pdf,
)

# A child answers with one short line per PDF; anything longer is not an answer.
_MAX_LINE = 4 * 1024 * 1024
_ZYGOTE_START_S = 120.0


async def validate_attachments(
    items: Sequence[Item], trust: DocumentTrust, sender: str, at: datetime, limits: PdfLimits
) -> AttachmentReport:
    """Judge every attachment of a package from ``sender`` as of ``at``; never longer than the limits."""
    results: dict[int, list[PdfSignature] | str] = {}
    pending: list[int] = []
    for index, item in enumerate(items):
        if not looks_like_pdf(item):
            continue
        if not item.head.lstrip()[:8].startswith(b"%PDF-"):
            results[index] = "not a PDF file (no %PDF- header)"
        elif item.size > limits.max_bytes:
            results[index] = f"the PDF is {item.size} bytes, over the limit of {limits.max_bytes}"
        elif not item.may_be_signed:
            results[index] = []
        else:
            pending.append(index)
    if pending:
        results.update(await _in_child(items, pending, trust, at, limits))
    return describe_items(items, results, sender, at)


class _Zygote:
    """The zygote of this process: started on first use, again if it died, stopped at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: str | None = None
        self._registered = False

    def socket_path(self) -> str:
        """Where the running zygote listens (blocking: starts it when needed)."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            assert self._directory is not None
            return os.path.join(self._directory, "zygote.sock")

    def _start(self) -> None:
        self._stop()
        self._directory = tempfile.mkdtemp(prefix="exchange-pdf-")
        path = os.path.join(self._directory, "zygote.sock")
        self._process = subprocess.Popen(  # noqa: S603 (our own module, by sys.executable)
            [sys.executable, "-m", "exchange.trust.pdf_zygote", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], _ZYGOTE_START_S)
        if not ready or self._process.stdout.readline() != b"ready\n":
            self._stop()
            raise RuntimeError("the PDF validation zygote did not start")
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


_ZYGOTE = _Zygote()


async def _in_child(
    items: Sequence[Item], pending: list[int], trust: DocumentTrust, at: datetime, limits: PdfLimits
) -> dict[int, list[PdfSignature] | str]:
    header = {
        "limits": asdict(limits),
        "trust": trust.as_dict(),
        "at": at.isoformat(),
        "sizes": [[index, len(items[index].data)] for index in pending],
    }
    path = await asyncio.to_thread(_ZYGOTE.socket_path)
    reader, writer = await asyncio.open_unix_connection(path, limit=_MAX_LINE)
    answers: dict[int, list[PdfSignature] | str] = {}
    child: list[int] = []
    finished = False
    try:
        await asyncio.wait_for(
            _converse(reader, writer, header, items, pending, answers, child), limits.timeout_s
        )
        finished = True  # every answer, or the child is gone (its end of the socket closed)
    except TimeoutError:
        late = f"validation took longer than {limits.timeout_s:g} s (the limit); stopped"
        answers.update({index: late for index in pending if index not in answers})
    finally:
        if child and not finished:  # past the deadline, or the request was cancelled: stop it
            with contextlib.suppress(ProcessLookupError):
                os.kill(child[0], signal.SIGKILL)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    died = "the validating process ended without an answer"
    answers.update({index: died for index in pending if index not in answers})
    return answers


async def _converse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    header: dict[str, Any],
    items: Sequence[Item],
    pending: list[int],
    answers: dict[int, list[PdfSignature] | str],
    child: list[int],
) -> None:
    child.append(int(await reader.readline()))
    feeder = asyncio.create_task(_feed(writer, header, items, pending))
    try:
        while len(answers) < len(pending):
            line = await reader.readline()
            if not line:
                break
            answer = json.loads(line)
            index = int(answer["index"])
            if "unverifiable" in answer:
                answers[index] = str(answer["unverifiable"])
            else:
                answers[index] = [PdfSignature(**s) for s in answer["signatures"]]
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await feeder


async def _feed(
    writer: asyncio.StreamWriter, header: dict[str, Any], items: Sequence[Item], pending: list[int]
) -> None:
    writer.write(json.dumps(header).encode() + b"\n")
    for index in pending:
        writer.write(items[index].data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
