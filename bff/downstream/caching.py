"""The cache stage of the downstream pipeline: every GET answered from the entity cache when it can.

It sits outermost, before in-flight de-duplication, so a hit costs no request, no bulkhead slot and
no breaker check. It knows the downstream contract (json-server 0.17 conventions, DESIGN.md):

- A *batch* GET, ``/{resource}`` with one parameter repeated (``/tracks?id=3&id=9``,
  ``/tracks?albumId=1&albumId=2``), is answered per key: by ``id`` from entity entries, by another
  field from index entries (field value -> ids) plus entities. Only the keys missing from the cache
  are fetched, in one request; the answer is the cached and fetched records together.
- Any other GET (a page with ``_start``/``_limit``, ``/genres``, ``/tracks/3``) is cached whole,
  status headers included, under its URL and the resource's version (:func:`bff.cache.answer_key`).

Lifetimes follow :func:`bff.cache.lifetime_s`. When the fetch fails with a
:class:`~bff.errors.DownstreamError` (other than ``NOT_FOUND``) and every key it was for has an entry
kept past its lifetime (stale-if-error), those entries answer instead; such a fetch is tried once,
not retried, so stale data comes back at once. The answer lists the records served stale in
:attr:`~bff.downstream.client.JSONResponse.stale`.

Each answer is noted in the operation's :class:`~bff.downstream.freshness.Freshness` (its resource and
how long it stays fresh; stale or uncacheable answers spoil it), which decides whether a response
cache may keep the operation's whole result.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from bff.cache import EntityCache, Hit, answer_key, entity_key, index_key, lifetime_s
from bff.downstream.call import Call
from bff.downstream.freshness import STALE, UNCACHED_READ
from bff.downstream.response import JSONResponse, Params, StaleMark
from bff.downstream.urls import query_string
from bff.errors import DownstreamError, NotFound
from bff.settings import ServiceSettings
from bff.telemetry.downstream import ServiceTelemetry

__all__ = ["CacheStage", "Fetch"]

Fetch = Callable[[Params, bool], Awaitable[JSONResponse]]
"""The rest of the pipeline: ``fetch(params, retry)`` GETs the stage's path with ``params``."""

Record = dict[str, Any]

_KEPT_HEADERS = ("x-total-count", "link", "content-type", "etag")
"""Headers a whole answer keeps in the cache (what callers read: totals and page links)."""


def _batch_field(params: Params) -> str | None:
    """The one field a batch GET filters on, or ``None`` when ``params`` is not a batch."""
    names = {name for name, _ in params}
    if len(names) != 1:
        return None
    (name,) = names
    return None if name.startswith("_") or name == "q" else name


def _resource_of(path: str) -> str | None:
    """The resource of ``/resource`` or ``/resource/id``; ``None`` for other paths."""
    parts = path.strip("/").split("/")
    return parts[0] if parts[0] and len(parts) <= 2 else None


class CacheStage:
    """The cache stage for one service; built by :class:`~bff.downstream.client.ServiceClient`.

    ``telemetry`` counts hits (fresh entries served), misses (keys or answers fetched) and stale
    serves, per record for a batch and per answer otherwise.
    """

    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        cache: EntityCache,
        *,
        telemetry: ServiceTelemetry | None = None,
    ) -> None:
        self.service = service
        self.cache = cache
        self._telemetry = telemetry
        self._default_s = settings.cache_ttl_ms / 1000
        self._stale_s = settings.stale_if_error_ms / 1000

    async def get(self, path: str, params: Params, call: Call, fetch: Fetch) -> JSONResponse:
        """``GET path?params`` through the cache; ``fetch`` is called for what the cache lacks.

        Raises what ``fetch`` raises when no stale entry can stand in.
        """
        resource = _resource_of(path)
        freshness = call.freshness
        if resource is None:
            freshness.spoil(UNCACHED_READ)
            return await fetch(params, True)
        if freshness.watching and (self.service, resource) not in freshness.versions:
            # Before the read: a mutation between the two then shows as a newer version.
            freshness.versions[(self.service, resource)] = await self.cache.version(self.service, resource)
        field = _batch_field(params) if path.strip("/") == resource else None
        if field is not None:
            return await self._batch(resource, field, [value for _, value in params], call, fetch)
        return await self._whole(resource, path, params, call, fetch)

    def _lifetime(self, response: JSONResponse, call: Call) -> float | None:
        authorized = any(name.lower() == "authorization" for name, _ in call.headers)
        return lifetime_s(response.headers.get("Cache-Control"), self._default_s, authorized=authorized)

    async def _whole(
        self, resource: str, path: str, params: Params, call: Call, fetch: Fetch
    ) -> JSONResponse:
        version = await self.cache.version(self.service, resource)
        url = f"{path}?{query_string(params)}" if params else path
        key = answer_key(self.service, resource, version, url)
        hit = (await self.cache.lookup([key])).get(key)
        telemetry = self._telemetry
        if hit is not None and hit.fresh:
            if telemetry is not None:
                telemetry.cache_hits(1)
            call.freshness.used(self.service, resource, hit.fresh_s)
            return _answer(hit.value)
        if telemetry is not None:
            telemetry.cache_misses(1)
        try:
            response = await fetch(params, hit is None)
        except NotFound:
            raise
        except DownstreamError:
            if hit is None:
                raise
            if telemetry is not None:
                telemetry.cache_stale(1)
            call.freshness.spoil(STALE)
            stale = _answer(hit.value)
            body = stale.body
            records = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
            marks = tuple(StaleMark(record, self.service, hit.age_s) for record in records)
            return JSONResponse(stale.status, stale.headers, body, stale=marks)
        lifetime = self._lifetime(response, call)
        call.freshness.used(self.service, resource, lifetime)
        if lifetime is not None:
            kept = [(name, value) for name, value in response.headers.items() if name in _KEPT_HEADERS]
            value = (response.status, kept, response.body)
            await self.cache.store({key: value}, lifetime_s=lifetime, stale_s=self._stale_s)
        return response

    async def _batch(
        self, resource: str, field: str, values: list[str], call: Call, fetch: Fetch
    ) -> JSONResponse:
        by_id = field == "id"
        cached = await (self._entities(resource, values) if by_id else self._groups(resource, field, values))
        records: list[Record] = []
        stale: list[StaleMark] = []
        missing: list[str] = []
        wanted = dict.fromkeys(values)
        fresh_s = math.inf
        for value in wanted:
            found = cached.get(value)
            if found is None or not found[1]:
                missing.append(value)
            else:
                records.extend(found[0])
                fresh_s = min(fresh_s, found[3])
        telemetry = self._telemetry
        if telemetry is not None:
            telemetry.cache_hits(len(wanted) - len(missing))
            telemetry.cache_misses(len(missing))
        if len(missing) < len(wanted):
            call.freshness.used(self.service, resource, fresh_s)
        if not missing:
            return JSONResponse(200, httpx.Headers(), records)
        all_stale = all(value in cached for value in missing)
        try:
            response = await fetch([(field, value) for value in missing], not all_stale)
        except NotFound:
            raise
        except DownstreamError:
            if not all_stale:
                raise
            if telemetry is not None:
                telemetry.cache_stale(len(missing))
            call.freshness.spoil(STALE)
            for value in missing:
                group, _, age_s, _ = cached[value]
                records.extend(group)
                stale.extend(StaleMark(record, self.service, age_s) for record in group)
            return JSONResponse(200, httpx.Headers(), records, stale=tuple(stale))
        fetched: list[Record] = response.body if isinstance(response.body, list) else []
        records.extend(fetched)
        lifetime = self._lifetime(response, call)
        call.freshness.used(self.service, resource, lifetime)
        if lifetime is not None:
            await self._store(resource, field, missing, fetched, lifetime)
        return JSONResponse(response.status, response.headers, records)

    async def _store(
        self,
        resource: str,
        field: str,
        asked: Sequence[str],
        fetched: list[Record],
        lifetime: float,
    ) -> None:
        identified = [record for record in fetched if isinstance(record, dict) and "id" in record]
        values: dict[str, Any] = {
            entity_key(self.service, resource, str(record["id"])): record for record in identified
        }
        if field != "id":
            groups: dict[str, list[str]] = {value: [] for value in asked}
            for record in identified:
                group = groups.get(str(record.get(field)))
                if group is not None:
                    group.append(str(record["id"]))
            values.update({index_key(self.service, resource, field, v): ids for v, ids in groups.items()})
        await self.cache.store(values, lifetime_s=lifetime, stale_s=self._stale_s)

    async def _entities(
        self, resource: str, ids: Sequence[str]
    ) -> dict[str, tuple[list[Record], bool, float, float]]:
        """Cached records by id: id -> ([record], fresh, age in seconds, seconds it stays fresh)."""
        keys = {record_id: entity_key(self.service, resource, record_id) for record_id in ids}
        hits = await self.cache.lookup(list(dict.fromkeys(keys.values())))
        return {
            record_id: ([hit.value], hit.fresh, hit.age_s, hit.fresh_s)
            for record_id, key in keys.items()
            if (hit := hits.get(key)) is not None
        }

    async def _groups(
        self, resource: str, field: str, values: Sequence[str]
    ) -> dict[str, tuple[list[Record], bool, float, float]]:
        """Cached groups by field value: value -> (records, all fresh, oldest age in seconds, seconds
        the first of them to go stale stays fresh).

        A group is there only when its index and every record it names are.
        """
        indexes = await self.cache.lookup([index_key(self.service, resource, field, v) for v in values])
        ids = sorted({record_id for hit in indexes.values() for record_id in hit.value})
        entities = await self.cache.lookup([entity_key(self.service, resource, i) for i in ids])
        out: dict[str, tuple[list[Record], bool, float, float]] = {}
        for value in values:
            index = indexes.get(index_key(self.service, resource, field, value))
            if index is None:
                continue
            hits: list[Hit | None] = [
                entities.get(entity_key(self.service, resource, record_id)) for record_id in index.value
            ]
            present = [hit for hit in hits if hit is not None]
            if len(present) != len(hits):
                continue
            fresh = index.fresh and all(hit.fresh for hit in present)
            age = max([index.age_s, *(hit.age_s for hit in present)])
            fresh_s = min([index.fresh_s, *(hit.fresh_s for hit in present)])
            out[value] = ([hit.value for hit in present], fresh, age, fresh_s)
        return out


def _answer(value: tuple[int, list[tuple[str, str]], Any]) -> JSONResponse:
    status, headers, body = value
    return JSONResponse(status, httpx.Headers(headers), body)
