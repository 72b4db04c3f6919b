"""``AiohttpTransport``: httpx's client API over aiohttp's HTTP/1.1 connection pool.

httpx stays the API every downstream call is written against (requests, responses, errors, and the
``transport=`` seam tests use), but its default transport (httpcore, h11 and anyio in Python)
costs about 1 ms of CPU per request here, several times aiohttp's client, whose parser is C and
whose keep-alive pool hands out a connection without polling every idle one. This transport sends
the request httpx built through one ``aiohttp.ClientSession`` and gives httpx the whole answer.

aiohttp's failures become httpx's, as httpcore's would (one table, :data:`_ERRORS`), so the
pipeline's error mapping and retries see what they saw before: timeouts as ``httpx.TimeoutException``,
refused connections as ``httpx.ConnectError``, a connection the server closed or reset as
``httpx.RemoteProtocolError`` or ``httpx.ReadError``. Redirects are not followed (httpx decides) and
bodies are passed on still encoded (httpx decodes them). HTTPS is verified against the system's
certificates (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), where httpx's transport used certifi's.
Requests to a proxy from ``HTTP(S)_PROXY`` still go through httpx's own proxy transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Final

import aiohttp
import httpx
from yarl import URL

__all__ = ["DEFAULT_MAX_BODY_BYTES", "AiohttpTransport", "BodyTooLarge", "read_bounded"]

_ERRORS: Final[tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientError, httpx.ReadError),
    (OSError, httpx.ReadError),
)
"""aiohttp's failure -> httpx's, first match wins (subclasses before their bases)."""

_MAX_HEAD_BYTES: Final = 100 * 1024
"""The longest status line or header httpcore's parser took (its 100 KiB head; aiohttp's default is
8,190 bytes a line and 128 headers, which refused answers with a large cookie or ``Link`` header)."""

_MANAGED_HEADERS: Final = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
"""Headers aiohttp writes itself from the URL, the body and its keep-alive pool."""


DEFAULT_MAX_BODY_BYTES: Final = 32_000_000
"""The bound of :class:`AiohttpTransport`'s answers when none is given (``ServiceSettings``' default)."""


class BodyTooLarge(httpx.TransportError):
    """An answer's body was longer than ``max_bytes``; the transport stopped reading it."""

    def __init__(self, max_bytes: int, request: httpx.Request) -> None:
        super().__init__(f"answer body over {max_bytes} bytes", request=request)
        self.max_bytes = max_bytes


DECODE_SLICE_BYTES: Final = 4_096
"""Encoded bytes httpx decodes at a time: gzip inflates at most about 1,000-fold, so one step of a
bomb stays near 4 MB and the client's body bound stops it early."""


class _Slices(httpx.AsyncByteStream):
    """An encoded body handed to httpx in :data:`DECODE_SLICE_BYTES` slices."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        view = memoryview(self._body)
        for start in range(0, len(view), DECODE_SLICE_BYTES):
            yield bytes(view[start : start + DECODE_SLICE_BYTES])


async def read_bounded(chunks: AsyncIterable[bytes], max_bytes: int, request: httpx.Request) -> bytes:
    """``chunks`` joined, or :class:`BodyTooLarge` as soon as they pass ``max_bytes`` (read no further)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(max_bytes, request)
    return bytes(body)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport sending through aiohttp; ``limits`` bounds its pool as httpx's would
    (``max_connections`` in all, idle ones closed after ``keepalive_expiry`` seconds).

    The session is made on the first request (aiohttp binds it to the running loop); call
    :meth:`aclose` once (``httpx.AsyncClient.aclose`` does).
    """

    def __init__(self, *, limits: httpx.Limits, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._limits = limits
        self._max_body_bytes = max_body_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 0.0,
        )
        # httpx keeps cookies as it does over its own transport; aiohttp adds no jar of its own.
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            max_line_size=_MAX_HEAD_BYTES,
            max_field_size=_MAX_HEAD_BYTES,
            # A header line takes at least 4 bytes ("a:\r\n"), so no more fit in httpcore's head.
            max_headers=_MAX_HEAD_BYTES // 4,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole answer; raises ``httpx.TransportError`` subclasses."""
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() not in _MANAGED_HEADERS
        ]
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as answer:
                content = await self._read(answer, request)
                return httpx.Response(
                    answer.status,
                    headers=list(answer.raw_headers),
                    stream=_Slices(content)
                    if "Content-Encoding" in answer.headers
                    else httpx.ByteStream(content),
                    request=request,
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": (answer.reason or "").encode()},
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            for failure, mapped in _ERRORS:
                if isinstance(exc, failure):
                    raise mapped(str(exc) or type(exc).__name__, request=request) from exc
            raise  # pragma: no cover - every caught type is in the table

    async def _read(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> bytes:
        """The answer's body as sent, or :class:`BodyTooLarge` past ``max_body_bytes`` (read no further)."""
        if answer.content_length is not None and answer.content_length > self._max_body_bytes:
            raise BodyTooLarge(self._max_body_bytes, request)
        return await read_bounded(answer.content.iter_any(), self._max_body_bytes, request)

    async def aclose(self) -> None:
        """Close the pool's connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
