"""The whole-response cache (``BFF_RESPONSE_CACHE``, off by default): a query answered without running.

The operation schema (:mod:`bff.operation.schema`) asks :meth:`ResponseCache.lookup` after the
operation pipeline admitted the operation, so the safelist, rate limits and budgets still hold for
every request. A hit is the stored result; a miss returns a :class:`Pending` that stores the result
once it ran, when all of these hold:

- the operation is a query (never a mutation or a subscription) run over HTTP (``execute``);
- nobody is signed in: with a principal, what fields show may depend on who asks, and the kit cannot
  tell which resolvers read it, so authenticated operations always run;
- the result has no errors, no extensions (``stale`` among them) and ``data``;
- every downstream answer it used came through the entity cache with a lifetime a shared cache may
  keep (``Cache-Control`` ``max-age``/``s-maxage``, or the service's ``CACHE_TTL_MS``; never
  ``no-store`` or ``private``), as :class:`~bff.downstream.freshness.Freshness` records; an operation
  that used no downstream answer has no lifetime and is not kept (as Apollo Server keeps no root field
  without a cache hint);
- it fits ``BFF_RESPONSE_CACHE_BYTES`` (its data as compact JSON).

Key: the operation name, the variables as canonical JSON (keys sorted) and the document text.
Lifetime: the shortest remaining lifetime of the answers used. Invalidation: an entry holds
the version of every resource it read, taken before the read (:meth:`bff.cache.EntityCache.version`);
a mutation that invalidates a resource (:meth:`bff.graph.Resource.invalidate`) replaces its version,
so the next lookup misses. Least recently used entries go first when the bytes run out.

Over HTTP, a cached or stored answer says so as a shared cache would (RFC 9111 §5.1, §5.2.2.9):
``Cache-Control: max-age=<lifetime s>, public`` and, on a hit, ``Age: <seconds since stored>``; with
``Vary: Authorization, X-Api-Key`` (§4.1), as it is an anonymous answer: a shared cache in front of
the BFF (a CDN keeping public GET answers) must not hand it to a request that names a principal.

Counts: :attr:`ResponseCache.lookups` (``outcome``: ``hit``, ``miss``, ``stored``) and
:attr:`ResponseCache.bypassed` (``reason``: ``not_query``, ``authenticated``, ``errors``,
``extensions``, ``uncacheable``, ``stale``, ``uncached_read``, ``no_downstream``, ``too_large``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import hdrs, web
from cachetools import TLRUCache
from graphql import OperationType
from strawberry.types import ExecutionResult

from bff.counters import Counter
from bff.settings import Settings

if TYPE_CHECKING:
    # Not at run time: bff.telemetry.metrics declares this module's counters and is imported by them.
    from bff.context import Context
    from bff.operation.pipeline import Admitted

__all__ = ["RESPONSE_HEADERS", "Pending", "ResponseCache", "response_cache_counters", "send_headers"]

RESPONSE_HEADERS: Final = web.RequestKey("bff.response_cache_headers", dict[str, str])
"""Headers :func:`send_headers` adds to the HTTP answer of a cached or stored operation."""

VARY: Final = "Authorization, X-Api-Key"
"""The request headers that name a principal (:data:`bff.auth.API_KEY_HEADER`, not imported: bff.auth
imports this module through the metrics), whose requests the response cache never answers."""

NOT_QUERY = "not_query"
AUTHENTICATED = "authenticated"
ERRORS = "errors"
EXTENSIONS = "extensions"
NO_DOWNSTREAM = "no_downstream"
TOO_LARGE = "too_large"

SizeObserver = Callable[[int, int], None]
"""``observer(entries, size_bytes)``: called after the cache changed."""


def response_cache_counters() -> tuple[Counter, Counter]:
    """The kit's two counters of the response cache: lookups by outcome, bypasses by reason."""
    return (
        Counter(
            "bff_response_cache_lookups_total",
            "Whole-response cache (BFF_RESPONSE_CACHE): hits, misses, and misses whose result was stored.",
            ("outcome",),
        ),
        Counter(
            "bff_response_cache_bypassed_total",
            "Operations the whole-response cache did not serve or keep, by reason.",
            ("reason",),
        ),
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    """A stored result: its ``data``, the resource versions it was built from, when and for how long."""

    data: Any
    versions: tuple[tuple[str, str, str], ...]
    stored_at: float
    lifetime_s: float
    size: int


class ResponseCache:
    """The app's whole-response cache, holding at most ``max_bytes`` (estimated; see module doc).

    ``clock`` gives wall-clock seconds; ``observer`` hears the entry count and bytes after changes.
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        clock: Callable[[], float] = time.time,
        observer: SizeObserver | None = None,
    ) -> None:
        self._entries: TLRUCache[str, _Entry] = TLRUCache(
            maxsize=max(max_bytes, 1),
            ttu=lambda _key, entry, _now: entry.stored_at + entry.lifetime_s,
            timer=clock,
            getsizeof=_size_of,
        )
        self._clock = clock
        self.observer = observer
        self.lookups, self.bypassed = response_cache_counters()

    @classmethod
    def from_settings(cls, settings: Settings) -> ResponseCache | None:
        """The cache ``BFF_RESPONSE_CACHE`` asks for, of ``BFF_RESPONSE_CACHE_BYTES``; ``None`` when off."""
        return cls(settings.response_cache_bytes) if settings.response_cache else None

    @property
    def size_bytes(self) -> int:
        """What the entries weigh now (their data as compact JSON, plus their keys)."""
        return int(self._entries.currsize)

    @property
    def entries(self) -> int:
        """How many results are kept now (expired ones may count until they are next touched)."""
        return len(self._entries)

    async def lookup(
        self,
        admitted: Admitted | None,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        context: Context,
    ) -> ExecutionResult | Pending | None:
        """The stored result of this operation, a :class:`Pending` to store it once it ran, or ``None``
        when it may not be cached (counted in :attr:`bypassed`). ``admitted`` is ``None`` for an
        operation the pipeline did not see (a context that is not bff's): it is not cached."""
        if admitted is None:
            return None
        operation = admitted.operation
        if operation is None or operation.operation is not OperationType.QUERY:
            self.bypassed.inc(NOT_QUERY)
            return None
        if context.current_principal is not None:
            self.bypassed.inc(AUTHENTICATED)
            return None
        key = _key(admitted.query, operation_name, variables)
        entry = self._entries.get(key)
        if entry is not None:
            current = await context.cache.versions([(s, r) for s, r, _ in entry.versions])
            if current == [version for _, _, version in entry.versions]:
                self.lookups.inc("hit")
                age_s = max(0.0, self._clock() - entry.stored_at)
                context.request[RESPONSE_HEADERS] = _headers(entry.lifetime_s, age_s)
                return ExecutionResult(data=entry.data, errors=None)
            self._entries.pop(key, None)
            self._observe()
        self.lookups.inc("miss")
        context.call.freshness.watch()
        return Pending(self, key, context, self._clock())

    def keep(self, key: str, result: ExecutionResult, context: Context, started_at: float) -> None:
        """Store ``result`` under ``key`` when it may be kept (module docstring), else count why not.

        ``started_at`` is when the operation started: every answer it used was read after it, so an
        entry counted from then on expires no later than the first of them.
        """
        freshness = context.call.freshness
        reason = _unkept(result, context)
        if reason is None:
            reason = freshness.spoiled
        if reason is None and (not freshness.reads or not math.isfinite(freshness.lifetime_s)):
            reason = NO_DOWNSTREAM
        if reason is None:
            data_json = json.dumps(result.data, separators=(",", ":"), ensure_ascii=False, default=str)
            size = len(data_json.encode()) + len(key)
            if size > self._entries.maxsize:
                reason = TOO_LARGE
            else:
                versions = tuple(
                    (service, resource, freshness.versions.get((service, resource), ""))
                    for service, resource in sorted(freshness.reads)
                )
                lifetime = freshness.lifetime_s
                self._entries[key] = _Entry(result.data, versions, started_at, lifetime, size)
                self.lookups.inc("stored")
                self._observe()
                context.request[RESPONSE_HEADERS] = _headers(lifetime, None)
                return
        self.bypassed.inc(reason)

    def _observe(self) -> None:
        if self.observer is not None:
            self.observer(len(self._entries), int(self._entries.currsize))


class Pending:
    """A miss: :meth:`store` keeps the operation's result if it may be kept."""

    __slots__ = ("_cache", "_context", "_key", "_started_at")

    def __init__(self, cache: ResponseCache, key: str, context: Context, started_at: float) -> None:
        self._cache = cache
        self._key = key
        self._context = context
        self._started_at = started_at

    def store(self, result: ExecutionResult) -> None:
        """Keep ``result`` when every condition of the module docstring holds; count why not otherwise."""
        self._cache.keep(self._key, result, self._context, self._started_at)


async def send_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: add the response cache's headers to a successful answer of the operation."""
    headers = request.get(RESPONSE_HEADERS)
    if headers and response.status == 200:
        response.headers.update(headers)
        # Added, not set: CORS may have said Vary: Origin already.
        response.headers.add(hdrs.VARY, VARY)


def _unkept(result: ExecutionResult, context: Context) -> str | None:
    """Why ``result`` itself may not be kept, or ``None``."""
    if result.errors or result.data is None:
        return ERRORS
    if result.extensions or context.stale.entries:
        return EXTENSIONS
    return None


def _key(query: str, operation_name: str | None, variables: Mapping[str, Any] | None) -> str:
    """The entry's key: the text itself (no hash to compute; its length counts in the entry's size).
    Names hold no newline and compact JSON none unescaped, so the parts cannot run into each other."""
    canonical = (
        json.dumps(variables, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if variables
        else "{}"
    )
    return f"{operation_name or ''}\n{canonical}\n{query}"


def _headers(lifetime_s: float, age_s: float | None) -> dict[str, str]:
    headers = {"Cache-Control": f"max-age={int(lifetime_s)}, public"}
    if age_s is not None:
        headers["Age"] = str(int(age_s))
    return headers


def _size_of(entry: _Entry) -> int:
    return entry.size
