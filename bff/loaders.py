"""Per-operation DataLoaders that batch N loads into one GET with repeated query parameters.

The downstream contract (json-server 0.17 conventions, DESIGN.md) filters a list by exact match and
ORs repeated parameters: ``GET /tracks?id=3&id=9`` returns tracks 3 and 9, and
``GET /tracks?albumId=1&albumId=2`` the tracks of both albums. A batch is split into chunks so that no
chunk exceeds the service's ``max_batch_size`` keys or ``max_url_length`` bytes of URL; chunks are
fetched concurrently. Results come back in key order; a missing key is ``None`` (by id) or ``[]``
(by field). When one chunk fails, only its keys fail, each with the chunk's error.

Loaders are never shared across operations: a shared loader would leak one principal's data to
another and grow without bound. :class:`Loaders` is created per operation and makes each loader on
first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import quote_plus

from aiodataloader import DataLoader

from bff.downstream import Call, ServiceClient

Record = dict[str, Any]
"""One downstream record, as decoded from JSON."""

__all__ = ["Loaders", "Record", "chunk_keys"]


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
    loaders make.
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        self._by_id: dict[tuple[str, str], DataLoader[str, Record | None]] = {}
        self._by_field: dict[tuple[str, str, str], DataLoader[str, list[Record]]] = {}

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

    async def _fetch(self, client: ServiceClient, resource: str, field: str, keys: list[str]) -> list[Any]:
        """Fetch all records with ``field`` in ``keys``; a failed chunk yields its exception."""
        path = f"/{resource}"
        chunks = chunk_keys(
            keys,
            field=field,
            base_length=client.url_length(path, ()),
            max_batch_size=client.settings.max_batch_size,
            max_url_length=client.settings.max_url_length,
        )

        async def one(chunk: list[str]) -> list[Record]:
            response = await client.get(path, call=self.call, params=[(field, key) for key in chunk])
            body = response.body
            return body if isinstance(body, list) else []

        results = await asyncio.gather(*(one(chunk) for chunk in chunks), return_exceptions=True)
        outcome: list[Any] = []
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            outcome.append((chunk, result))
        return outcome

    def _batch_by_id(
        self, client: ServiceClient, resource: str
    ) -> Callable[[list[str]], Coroutine[Any, Any, list[Record | None]]]:
        async def batch_load(keys: list[str]) -> list[Any]:
            found: dict[str, Any] = {}
            for chunk, result in await self._fetch(client, resource, "id", keys):
                if isinstance(result, Exception):
                    found.update(dict.fromkeys(chunk, result))
                    continue
                for record in result:
                    found[str(record.get("id"))] = record
            return [found.get(key) for key in keys]

        return batch_load

    def _batch_by_field(
        self, client: ServiceClient, resource: str, field: str
    ) -> Callable[[list[str]], Coroutine[Any, Any, list[list[Record]]]]:
        async def batch_load(keys: list[str]) -> list[Any]:
            groups: dict[str, Any] = {key: [] for key in keys}
            found: list[Record] = []
            for chunk, result in await self._fetch(client, resource, field, keys):
                if isinstance(result, Exception):
                    groups.update(dict.fromkeys(chunk, result))
                    continue
                for record in result:
                    group = groups.get(str(record.get(field)))
                    if isinstance(group, list):
                        group.append(record)
                found.extend(result)
            self.prime(client, resource, found)
            return [groups[key] for key in keys]

        return batch_load
