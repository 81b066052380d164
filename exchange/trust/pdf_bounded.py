"""Running PDF signature validation within known bounds, off the event loop.

A crafted PDF (deep object graphs, thousands of revisions, compression bombs) can cost
unbounded time or memory inside a PDF library, and a thread cannot be stopped. So the
PDFs of a package are judged in a child process (``python -m exchange.trust.pdf_signatures``)
that caps its own address space, under one deadline for the package: a child that runs
past it is killed, and the PDFs it had not answered for are ``unverifiable``. Cheap checks
(not a PDF, over the size limit, no signature dictionary at all) are made here first so
that most packages never start a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
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
    may_hold_signatures,
)

# A child answers with one short line per PDF; anything longer is not an answer.
_MAX_LINE = 4 * 1024 * 1024


async def validate_attachments(
    items: Sequence[Item], trust: DocumentTrust, sender: str, at: datetime, limits: PdfLimits
) -> AttachmentReport:
    """Judge every attachment of a package from ``sender`` as of ``at``; never longer than the limits."""
    results: dict[int, list[PdfSignature] | str] = {}
    pending: list[int] = []
    for index, item in enumerate(items):
        if not looks_like_pdf(item):
            continue
        if not item.data.lstrip()[:8].startswith(b"%PDF-"):
            results[index] = "not a PDF file (no %PDF- header)"
        elif len(item.data) > limits.max_bytes:
            results[index] = f"the PDF is {len(item.data)} bytes, over the limit of {limits.max_bytes}"
        elif not may_hold_signatures(item.data):
            results[index] = []
        else:
            pending.append(index)
    if pending:
        results.update(await _in_child(items, pending, trust, at, limits))
    return describe_items(items, results, sender, at)


async def _in_child(
    items: Sequence[Item], pending: list[int], trust: DocumentTrust, at: datetime, limits: PdfLimits
) -> dict[int, list[PdfSignature] | str]:
    header = {
        "limits": asdict(limits),
        "trust": trust.as_dict(),
        "at": at.isoformat(),
        "sizes": [[index, len(items[index].data)] for index in pending],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange.trust.pdf_signatures",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=_MAX_LINE,
    )
    answers: dict[int, list[PdfSignature] | str] = {}
    try:
        await asyncio.wait_for(_converse(process, header, items, pending, answers), limits.timeout_s)
    except TimeoutError:
        late = f"validation took longer than {limits.timeout_s:g} s (the limit); stopped"
        answers.update({index: late for index in pending if index not in answers})
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
    died = f"the validating process ended without an answer (exit status {process.returncode})"
    answers.update({index: died for index in pending if index not in answers})
    return answers


async def _converse(
    process: asyncio.subprocess.Process,
    header: dict[str, Any],
    items: Sequence[Item],
    pending: list[int],
    answers: dict[int, list[PdfSignature] | str],
) -> None:
    assert process.stdin is not None
    assert process.stdout is not None
    feeder = asyncio.create_task(_feed(process.stdin, header, items, pending))
    try:
        while len(answers) < len(pending):
            line = await process.stdout.readline()
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
    stdin: asyncio.StreamWriter, header: dict[str, Any], items: Sequence[Item], pending: list[int]
) -> None:
    try:
        stdin.write(json.dumps(header).encode() + b"\n")
        for index in pending:
            stdin.write(items[index].data)
            await stdin.drain()
    finally:
        stdin.close()
