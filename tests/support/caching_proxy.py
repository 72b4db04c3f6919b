"""A reverse proxy that makes json-server's answers cacheable, for tests: ``run_caching_proxy``.

json-server 0.17 answers every GET with ``Cache-Control: no-cache``. Services in the wild often allow
caching instead: in tailcallhq/graphql-benchmarks the GraphQL servers reach JSONPlaceholder, whose
answers say ``max-age=43200`` (12 hours), through an nginx (``nginx/nginx.conf``). Putting this proxy
in front of json-server gives the BFF such a service to talk to: same records, same status codes,
same headers, except that successful GETs say they may be cached.

The proxy itself stores nothing: every request is sent upstream, and ``CachingProxy.forwarded`` counts
them, so a test sees exactly how many requests a client's cache saved.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx
from aiohttp import web

__all__ = ["DEFAULT_CACHE_CONTROL", "CachingProxy", "run_caching_proxy"]

DEFAULT_CACHE_CONTROL = "public, max-age=43200"
"""The ``Cache-Control`` put on successful GETs: anyone may store them for 12 hours (43200 s)."""

# RFC 9110 section 7.6.1: these describe one connection, so a proxy must not pass them on; any other
# header named in a Connection header is hop-by-hop too. Proxy-Connection is its non-standard twin.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_HOST = "127.0.0.1"
_TIMEOUT = 30.0  # seconds for each upstream request, connect to last byte
# RFC 9110 section 15.4.5: a 304 carries the Cache-Control a 200 would, and it refreshes what a cache
# stores; section 9.3.2: HEAD answers with GET's headers. So these get the header too.
_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class CachingProxy:
    """A running proxy: its base URL and how many requests it has sent upstream so far."""

    url: str
    """``http://127.0.0.1:PORT``, without a trailing slash."""
    forwarded: int = 0
    """Requests sent upstream, whatever came back (an unreachable upstream counts too)."""


@contextlib.asynccontextmanager
async def run_caching_proxy(
    upstream: str,
    *,
    cache_control: str = DEFAULT_CACHE_CONTROL,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[CachingProxy]:
    """Run a proxy to ``upstream`` on a free 127.0.0.1 port and yield it; stop it when the block exits.

    Each request is sent on with its method, body, path and query string exactly as received
    (repeated parameters stay, in their order) below ``upstream``'s path, and with its headers
    except ``Host`` (httpx sets upstream's) and hop-by-hop ones. The answer comes back with the
    upstream status, raw body (still compressed if it was) and headers, hop-by-hop ones left out;
    ``Location`` and ``Link`` still name upstream, as json-server builds them from the ``Host`` it got.
    On GET and HEAD answers with a 2xx or 304 status, ``Cache-Control`` is replaced by ``cache_control``;
    json-server's ``Pragma: no-cache`` and ``Expires: -1`` stay, as ``max-age`` overrides ``Expires``
    (RFC 9111 section 5.3) and ``Pragma`` means nothing in a response.
    An upstream that cannot be reached or does not answer within 30 s gives 502.

    ``transport`` replaces the network for tests of the proxy itself (``httpx.MockTransport``).
    Raises ``ValueError`` when ``upstream`` is not an absolute http(s) URL without query or fragment.
    """
    base = httpx.URL(upstream)
    if base.scheme not in {"http", "https"} or not base.host or base.query or base.fragment:
        raise ValueError(f"upstream must be an http(s) URL without query or fragment: {upstream!r}")
    proxy = CachingProxy(url="")
    async with httpx.AsyncClient(transport=transport, timeout=_TIMEOUT, trust_env=False) as client:
        handler = functools.partial(
            _forward, client=client, base=base, proxy=proxy, cache_control=cache_control
        )
        runner = web.ServerRunner(web.Server(handler, access_log=None))
        await runner.setup()
        try:
            await web.TCPSite(runner, _HOST, 0).start()  # port 0: the kernel picks a free port
            proxy.url = f"http://{_HOST}:{runner.addresses[0][1]}"
            yield proxy
        finally:
            await runner.cleanup()


async def _forward(
    request: web.BaseRequest,
    *,
    client: httpx.AsyncClient,
    base: httpx.URL,
    proxy: CachingProxy,
    cache_control: str,
) -> web.StreamResponse:
    """Send ``request`` on below ``base``, count it in ``proxy``, and answer as ``run_caching_proxy`` says."""
    # raw_path is the request target as sent: percent-escapes, repeated and ordered parameters kept.
    url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + request.raw_path.encode())
    outgoing = httpx.Request(
        request.method, url, headers=_end_to_end(request.headers.items()), content=await request.read()
    )
    proxy.forwarded += 1
    try:
        # send(), not request(): that would add the client's default headers (Accept-Encoding,
        # User-Agent) to what the caller sent, and compressed bodies would come back to it unasked.
        answer = await client.send(outgoing, stream=True)
        try:
            if answer.is_stream_consumed:  # built from bytes by a test transport: read at once
                body = answer.content
            else:  # from the network: the raw bytes, so Content-Encoding still describes them
                body = b"".join([chunk async for chunk in answer.aiter_raw()])
        finally:
            await answer.aclose()
    except httpx.HTTPError as exc:
        return web.Response(status=502, text=f"upstream {base} failed: {exc!r}\n")
    # aiohttp sets Content-Length from the body it sends; a HEAD answer has none, so keep upstream's.
    dropped = set() if request.method == "HEAD" else {"content-length"}
    cacheable = request.method in _CACHEABLE_METHODS and (answer.is_success or answer.status_code == 304)
    if cacheable:
        dropped.add("cache-control")
    headers = [
        (name, value)
        for name, value in _end_to_end(answer.headers.multi_items())
        if name.lower() not in dropped
    ]
    if cacheable:
        headers.append(("Cache-Control", cache_control))
    return web.Response(status=answer.status_code, body=body, headers=headers)


def _end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return ``headers`` without ``Host`` and hop-by-hop headers (fixed ones and those in ``Connection``)."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    dropped = _HOP_BY_HOP | named | {"host"}
    return [(name, value) for name, value in pairs if name.lower() not in dropped]
