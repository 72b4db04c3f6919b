"""Per-operation DataLoaders that batch N loads into one GET with repeated query parameters.

The downstream contract (json-server 0.17 conventions, DESIGN.md) filters a list by exact match and
ORs repeated parameters: ``GET /tracks?id=3&id=9`` returns tracks 3 and 9, and
``GET /tracks?albumId=1&albumId=2`` the tracks of both albums. A batch is split into chunks so that no
chunk exceeds the service's ``max_batch_size`` keys or ``max_url_length`` bytes of URL; chunks are
fetched concurrently. Results come back in key order; a missing key is ``None`` (by id) or ``[]``
(by field). When one chunk fails, only its keys fail, each with the chunk's error.

Loaders are never shared across operations: a shared loader would leak one principal's data to
another and grow without bound. :class:`Loaders` is created per operation and makes each loader on
first use. Across operations, the entity cache (:mod:`bff.cache`) answers what it can first, so a
batch fetches only the misses; when a chunk fails, cached entries past their lifetime but within the
stale window are served instead, as :class:`~bff.stale.StaleRecord`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Hashable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote_plus

from aiodataloader import DataLoader

from bff.cache import EntityCache, Hit, entity_key, index_key, lifetime_s
from bff.downstream import Call, JSONResponse, ServiceClient
from bff.stale import StaleRecord

Record = dict[str, Any]
"""One downstream record, as decoded from JSON."""

__all__ = ["Loaders", "Record", "chunk_keys", "load_one"]

T = TypeVar("T")


def load_one(loader: DataLoader[str, Record | None], key: str | None) -> asyncio.Future[Record | None]:
    """``loader.load(key)``: the loader's future of the record, a completed one holding ``None`` if no key.

    The future is the loader's own, shared by every load of the key in the operation: once its batch
    has finished it is done, and a resolver may read it (:meth:`asyncio.Future.result`) without
    awaiting (see :mod:`schema.relations`).
    """
    if key is None:
        future: asyncio.Future[Record | None] = loader.loop.create_future()
        future.set_result(None)
        return future
    return loader.load(key)


def chunk_keys(
    keys: Sequence[str], *, field: str, base_length: int, max_batch_size: int, max_url_length: int
) -> list[list[str]]:
    """Split ``keys`` into chunks for ``?field=k1&field=k2...`` requests.

    ``base_length`` is the URL's length in bytes before the ``?``. Each chunk holds at most
    ``max_batch_size`` keys and its URL at most ``max_url_length`` bytes; a single key always forms
    a chunk of its own even if its URL alone is longer.
    """
    name = quote_plus(field)
    chunks: list[list[str]] = []
    current: list[str] = []
    length = base_length
    for key in keys:
        added = len(name) + 1 + len(quote_plus(key)) + 1  # "field=key" plus "?" or "&"
        if current and (len(current) >= max_batch_size or length + added > max_url_length):
            chunks.append(current)
            current, length = [], base_length
        current.append(key)
        length += added
    if current:
        chunks.append(current)
    return chunks


class Loaders:
    """The DataLoaders of one GraphQL operation, keyed by service, resource and field.

    ``call`` (request id, forwarded headers, deadline) goes with every downstream request the
    loaders make; ``cache`` is the app's entity cache (``None`` disables it).
    """

    def __init__(self, call: Call, cache: EntityCache | None = None) -> None:
        self.call = call
        self.cache = cache
        self._by_id: dict[tuple[str, str], DataLoader[str, Record | None]] = {}
        self._by_field: dict[tuple[str, str, str], DataLoader[str, list[Record]]] = {}
        self._derived: dict[tuple[object, int], tuple[Record, Any]] = {}
        self._memo: dict[Hashable, Any] = {}

    def by_id(self, client: ServiceClient, resource: str) -> DataLoader[str, Record | None]:
        """Loader of ``resource`` records by ``id`` (``GET /resource?id=..&id=..``)."""
        key = (client.name, resource)
        loader = self._by_id.get(key)
        if loader is None:
            loader = DataLoader(self._batch_by_id(client, resource))
            self._by_id[key] = loader
        return loader

    def by_field(self, client: ServiceClient, resource: str, field: str) -> DataLoader[str, list[Record]]:
        """Loader of the ``resource`` records whose ``field`` equals each key (a foreign key).

        Every record found also primes :meth:`by_id` for ``resource``, so a later load by id of
        the same record makes no request.
        """
        key = (client.name, resource, field)
        loader = self._by_field.get(key)
        if loader is None:
            loader = DataLoader(self._batch_by_field(client, resource, field))
            self._by_field[key] = loader
        return loader

    def prime(self, client: ServiceClient, resource: str, records: Sequence[Record]) -> None:
        """Put records fetched some other way (a list page) into the by-id loader."""
        loader = self.by_id(client, resource)
        for record in records:
            loader.prime(str(record["id"]), record)

    def derive(self, record: Record, make: Callable[[Record], T]) -> T:
        """``make(record)``, made once per record object for the operation (a node of a loaded record).

        A record the loaders hand out is one object wherever it is used, so several lines of the same
        track share one ``Track`` node. Kept by identity: a record loaded again (after ``clear``) is
        another object and gets its own.
        """
        key = (make, id(record))
        hit = self._derived.get(key)
        if hit is not None and hit[0] is record:
            made: T = hit[1]
            return made
        made = make(record)
        self._derived[key] = (record, made)
        return made

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, made once per ``key`` for the operation (what the schema derives from the query)."""
        if key in self._memo:
            made: T = self._memo[key]
            return made
        made = self._memo[key] = make()
        return made

    def _cache_for(self, client: ServiceClient) -> EntityCache | None:
        return self.cache if client.settings.cache_ttl_ms > 0 else None

    async def _fetch(
        self,
        client: ServiceClient,
        resource: str,
        field: str,
        keys: list[str],
        *,
        stale: Collection[str] = (),
    ) -> list[tuple[list[str], JSONResponse | Exception]]:
        """GET the records with ``field`` in ``keys``, chunk by chunk; a failed chunk yields its error.

        A chunk whose keys all have a stale cache entry (``stale``) is tried once, not retried: on a
        failure the stale entries are served at once instead of after every backoff.
        """
        if not keys:
            return []
        path = f"/{resource}"
        chunks = chunk_keys(
            keys,
            field=field,
            base_length=client.url_length(path, ()),
            max_batch_size=client.settings.max_batch_size,
            max_url_length=client.settings.max_url_length,
        )
        results = await asyncio.gather(
            *(
                client.get(
                    path,
                    call=self.call,
                    params=[(field, key) for key in chunk],
                    retry=not all(key in stale for key in chunk),
                )
                for chunk in chunks
            ),
            return_exceptions=True,
        )
        outcome: list[tuple[list[str], JSONResponse | Exception]] = []
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            outcome.append((chunk, result))
        return outcome

    async def _store(self, client: ServiceClient, response: JSONResponse, values: dict[str, Any]) -> None:
        cache = self._cache_for(client)
        if cache is None:
            return
        authorized = any(name.lower() == "authorization" for name, _ in self.call.headers)
        lifetime = lifetime_s(
            response.headers.get("Cache-Control"), client.settings.cache_ttl_ms / 1000, authorized=authorized
        )
        if lifetime is not None:
            await cache.store(values, lifetime_s=lifetime, stale_s=client.settings.stale_if_error_ms / 1000)

    def _batch_by_id(
        self, client: ServiceClient, resource: str
    ) -> Callable[[list[str]], Coroutine[Any, Any, list[Record | None]]]:
        def key_of(record_id: str) -> str:
            return entity_key(client.name, resource, record_id)

        async def batch_load(keys: list[str]) -> list[Any]:
            cache = self._cache_for(client)
            hits = await cache.lookup([key_of(k) for k in keys]) if cache else {}
            found: dict[str, Any] = {}
            for key in keys:
                hit = hits.get(key_of(key))
                if hit is not None and hit.fresh:
                    found[key] = hit.value
            missing = [key for key in keys if key not in found]
            stale = {key for key in missing if key_of(key) in hits}
            for chunk, result in await self._fetch(client, resource, "id", missing, stale=stale):
                if isinstance(result, Exception):
                    for key in chunk:
                        found[key] = _stale_or(hits.get(key_of(key)), client.name, result)
                    continue
                records = _records(result)
                for record in records:
                    found[str(record.get("id"))] = record
                await self._store(client, result, {key_of(str(r.get("id"))): r for r in records})
            return [found.get(key) for key in keys]

        return batch_load

    def _batch_by_field(
        self, client: ServiceClient, resource: str, field: str
    ) -> Callable[[list[str]], Coroutine[Any, Any, list[list[Record]]]]:
        def index_of(value: str) -> str:
            return index_key(client.name, resource, field, value)

        def key_of(record_id: str) -> str:
            return entity_key(client.name, resource, record_id)

        async def batch_load(keys: list[str]) -> list[Any]:
            cache = self._cache_for(client)
            cached = await self._cached_groups(cache, client.name, keys, index_of, key_of) if cache else {}
            groups: dict[str, Any] = {key: group for key, (group, fresh) in cached.items() if fresh}
            missing = [key for key in keys if key not in groups]
            found: list[Record] = []
            for chunk, result in await self._fetch(client, resource, field, missing, stale=cached.keys()):
                if isinstance(result, Exception):
                    for key in chunk:
                        stale = cached.get(key)
                        groups[key] = stale[0] if stale is not None else result
                    continue
                records = _records(result)
                fetched: dict[str, list[Record]] = {key: [] for key in chunk}
                for record in records:
                    group = fetched.get(str(record.get(field)))
                    if group is not None:
                        group.append(record)
                groups.update(fetched)
                found.extend(records)
                values: dict[str, Any] = {key_of(str(r.get("id"))): r for r in records}
                values.update({index_of(k): [str(r.get("id")) for r in g] for k, g in fetched.items()})
                await self._store(client, result, values)
            self.prime(client, resource, found)
            return [groups[key] for key in keys]

        return batch_load

    async def _cached_groups(
        self,
        cache: EntityCache,
        service: str,
        keys: list[str],
        index_of: Callable[[str], str],
        key_of: Callable[[str], str],
    ) -> dict[str, tuple[list[Record], bool]]:
        """Groups answerable from the cache: key -> (records, all fresh); stale ones are marked."""
        indexes = await cache.lookup([index_of(key) for key in keys])
        ids = {record_id for hit in indexes.values() for record_id in hit.value}
        entities = await cache.lookup([key_of(record_id) for record_id in sorted(ids)])
        out: dict[str, tuple[list[Record], bool]] = {}
        for key in keys:
            index = indexes.get(index_of(key))
            if index is None:
                continue
            hits = [entities.get(key_of(record_id)) for record_id in index.value]
            if any(hit is None for hit in hits):
                continue
            present = [hit for hit in hits if hit is not None]
            fresh = index.fresh and all(hit.fresh for hit in present)
            if fresh:
                out[key] = ([hit.value for hit in present], True)
            else:
                age = max([index.age_s, *(hit.age_s for hit in present)])
                out[key] = ([StaleRecord(hit.value, service=service, age_s=age) for hit in present], False)
        return out


def _records(response: JSONResponse) -> list[Record]:
    body = response.body
    return body if isinstance(body, list) else []


def _stale_or(hit: Hit | None, service: str, error: Exception) -> Any:
    """The stale record of ``hit`` when there is one, else ``error`` (failing that key)."""
    if hit is None:
        return error
    return StaleRecord(hit.value, service=service, age_s=hit.age_s)
