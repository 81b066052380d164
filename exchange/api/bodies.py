"""Package bodies in and out of HTTP: received as a stream, sent as a stream.

A package is read from the request a piece at a time into a PackageBody (memory, then a
temporary file), hashed and counted as it comes; one over ``limits.max_package_bytes`` is
refused with 413 without reading past the limit: at once when Content-Length says so (even
before ``100 Continue`` for clients that ask), or as soon as a chunked body grows beyond it.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import IO

from aiohttp import web
from aiohttp.http import HttpVersion11

from exchange.api.connections import drop_unread_body
from exchange.api.keys import SETTINGS
from exchange.edxml.aside import Aside
from exchange.edxml.errors import EdxmlError
from exchange.edxml.parser import FeedParser, Limits
from exchange.errors import ExchangeError
from exchange.logs import get_logger
from exchange.package_body import PackageBody, too_large

log = get_logger(__name__)
# How much is taken from the socket at a time.
READ_BYTES = 64 * 1024


async def receive_package(request: web.Request, limits: Limits, *, trailer: bytes = b"") -> PackageBody:
    """The request body as a PackageBody, for the caller to close, parsed as it arrives (``root``,
    its attachment texts set aside: see exchange.edxml.aside).

    Each piece goes to the spool and to the hardened parser, so a package that crosses a parser
    limit (elements, depth, attributes, text) or is not XML is refused at that point: the rest of
    its body is never read, and the refusal costs in proportion to the limits, not to the body.
    ``trailer``: bytes a protocol adds after the package (the VXP SDK's CRLF), dropped when they
    end the body.
    """
    limit = request.app[SETTINGS].limits.max_package_bytes
    length = request.content_length
    if length is not None and length > limit + len(trailer):
        raise too_large(length, limit)
    body = PackageBody(limit)
    aside = Aside(source=body.chunks)
    parser = FeedParser(limits, aside)
    try:
        held = b""  # the last bytes, kept back until it is known whether they are the trailer
        async for piece in request.content.iter_chunked(READ_BYTES):
            if trailer:
                piece = held + piece
                held, piece = piece[-len(trailer) :], piece[: -len(trailer)]
            body.write(piece)
            parser.feed(piece)
        if held != trailer:
            body.write(held)
            parser.feed(held)
        body.finish()
        if body.size:
            body.root, body.aside = parser.close(), aside
    except EdxmlError:
        body.close()
        drop_unread_body(request)  # refused: the rest of the body is not even read
        raise
    except BaseException:
        body.close()
        raise
    return body


def expect_package(
    refusal: Callable[[ExchangeError], web.StreamResponse], trailer: bytes = b""
) -> Callable[[web.Request], Awaitable[web.StreamResponse | None]]:
    """An ``Expect: 100-continue`` handler: a declared length over the limit is refused before the
    client sends a byte of the body; otherwise the client is told to go on (aiohttp's default).
    Runs before the middlewares, so ``refusal`` renders the error in the route's own terms."""

    async def expect(request: web.Request) -> web.StreamResponse | None:
        limit = request.app[SETTINGS].limits.max_package_bytes
        length = request.content_length
        if length is not None and length > limit + len(trailer):
            response = refusal(too_large(length, limit))
            response.force_close()  # the body was never sent: this connection cannot carry on
            return response
        if request.version == HttpVersion11:  # as aiohttp's default handler does
            expected = request.headers.get("Expect", "")
            if expected.lower() != "100-continue":
                raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expected}")
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the real answer starts now
        return None

    return expect


async def send_stream(
    request: web.Request,
    chunks: AsyncIterable[bytes],
    size: int,
    content_type: str,
    headers: dict[str, str] | None = None,
    charset: str | None = None,
) -> web.StreamResponse:
    """Answer with ``size`` bytes read from ``chunks`` as they come (Content-Length set, so a
    body cut short is seen as such by the client)."""
    response = web.StreamResponse(headers=headers or {})
    response.content_type = content_type
    if charset is not None:
        response.charset = charset
    response.content_length = size
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except LookupError as missing:  # removed while it was being sent (retention): too late for a 410
        log.warning("http.body_missing", path=request.path, error=str(missing))
        if request.transport is not None:
            request.transport.close()  # short of its Content-Length: the client sees the cut
        return response
    except ConnectionError:  # the client went away mid-download: its business, not a failure here
        log.info("http.client_gone", path=request.path)
        return response
    await response.write_eof()
    return response


async def base64_json(prefix: bytes, chunks: AsyncIterable[bytes], suffix: bytes) -> AsyncIterator[bytes]:
    """``prefix``, the bytes of ``chunks`` in base64 (no line breaks), ``suffix``: a JSON answer whose
    last string is a package, written without the package ever being held whole."""
    yield prefix
    rest = b""
    async for chunk in chunks:
        data = rest + chunk
        whole = len(data) - len(data) % 3  # base64 works on 3 bytes at a time
        rest = data[whole:]
        if whole:
            yield base64.b64encode(data[:whole])
    yield base64.b64encode(rest) + suffix


async def file_chunks(source: IO[bytes], size: int = READ_BYTES * 16) -> AsyncIterator[bytes]:
    while chunk := source.read(size):
        yield chunk


def base64_size(size: int) -> int:
    return (size + 2) // 3 * 4
