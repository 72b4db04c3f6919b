"""Per-operation DataLoaders that batch N loads into one GET with repeated query parameters.

The downstream contract (json-server 0.17 conventions, DESIGN.md) filters a list by exact match and
ORs repeated parameters: ``GET /tracks?id=3&id=9`` returns tracks 3 and 9, and
``GET /tracks?albumId=1&albumId=2`` the tracks of both albums. A batch is split into chunks so that no
chunk exceeds the service's ``max_batch_size`` keys or ``max_url_length`` bytes of URL; chunks are
fetched concurrently. Results come back in key order; a missing key is ``None`` (by id) or ``[]``
(by field). When one chunk fails, only its keys fail, each with the chunk's error.

Loaders are never shared across operations: a shared loader would leak one principal's data to
another and grow without bound. :class:`Loaders` is created per operation and makes each loader on
first use. The loaders only batch: caching across operations, and stale entries standing in for a
failed chunk, are the downstream pipeline's (:mod:`bff.downstream.caching`), which tells which
records it served stale; the loaders mark those in the operation's :class:`~bff.stale.StaleLog`.

Every answer is checked against the resource's :class:`~bff.contract.RecordContract`: an answer that
is not a list fails its chunk, and a record that breaks its declaration fails the keys it would
have answered (by id: its id; by field: the group it is in), all with the answer's one
``DOWNSTREAM_CONTRACT`` error; the other keys of the chunk load as usual. An id that no record
answers is ``None`` only when every record of the answer could be keyed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote_plus

from aiodataloader import DataLoader

from bff.contract import Breach, RecordContract
from bff.downstream import Call, ServiceClient
from bff.errors import DownstreamContract
from bff.stale import StaleLog

Record = dict[str, Any]
"""One downstream record, as decoded from JSON."""

__all__ = ["Loaders", "Record", "chunk_keys", "load_one"]

T = TypeVar("T")


def load_one(loader: DataLoader[str, Record | None], key: str | None) -> asyncio.Future[Record | None]:
    """``loader.load(key)``: the loader's future of the record, a completed one holding ``None`` if no key.

    The future is the loader's own, shared by every load of the key in the operation: once its batch
    has finished it is done, and a resolver may read it (:meth:`asyncio.Future.result`) without
    awaiting (see :mod:`bff.graph.relations`).
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
    loaders make; ``stale`` is the operation's log of records served stale.
    """

    def __init__(self, call: Call, stale: StaleLog | None = None) -> None:
        self.call = call
        self.stale = stale if stale is not None else StaleLog()
        self._by_field: dict[tuple[str, str, str], DataLoader[str, Any]] = {}
        self._contracts: dict[tuple[str, str], RecordContract] = {}
        self._derived: dict[tuple[object, int], tuple[Record, Any]] = {}
        self._memo: dict[Hashable, Any] = {}
        # (service, resource) -> records primed but not yet put in the by-id loader, with their id field.
        self._unprimed: dict[tuple[str, str], list[tuple[Sequence[Record], str]]] = {}

    def by_id(
        self,
        client: ServiceClient,
        resource: str,
        *,
        id_field: str = "id",
        contract: RecordContract | None = None,
    ) -> DataLoader[str, Record | None]:
        """Loader of ``resource`` records by id (``GET /resource?id=..&id=..``).

        ``contract`` is the resource's declaration (:class:`bff.Resource` passes it); the first one
        given for a resource holds for all its loaders in the operation (default: ids only).
        """
        key = (client.name, resource, "")
        loader = self._by_field.get(key)
        if loader is None:
            checked = self._contract(client, resource, contract, id_field)
            loader = DataLoader(self._batch_by_id(client, resource, id_field, checked))
            self._by_field[key] = loader
        if self._unprimed:
            unprimed = self._unprimed.pop((client.name, resource), None)
            if unprimed is not None:
                for records, record_id_field in unprimed:
                    for record in records:
                        if isinstance(record, dict) and record_id_field in record:
                            loader.prime(str(record[record_id_field]), record)
        return loader

    def by_field(
        self, client: ServiceClient, resource: str, field: str, *, contract: RecordContract | None = None
    ) -> DataLoader[str, list[Record]]:
        """Loader of the ``resource`` records whose ``field`` equals each key (a foreign key).

        Every record found also primes :meth:`by_id` for ``resource``, so a later load by id of
        the same record makes no request.
        """
        key = (client.name, resource, field)
        loader = self._by_field.get(key)
        if loader is None:
            checked = self._contract(client, resource, contract, "id")
            loader = DataLoader(self._batch_by_field(client, resource, field, checked))
            self._by_field[key] = loader
        return loader

    def prime(
        self,
        client: ServiceClient,
        resource: str,
        records: Sequence[Record],
        *,
        id_field: str = "id",
        contract: RecordContract | None = None,
    ) -> None:
        """Put records fetched some other way (a list page, a write's answer) into the by-id loader.

        Lazily: they go in when the by-id loader is next asked for (:meth:`by_id`), in the order
        primed, so a list whose records are never loaded by id (most) costs no keying. ``contract``
        holds for the resource from here on, as for :meth:`by_id`.
        """
        if not records:
            return
        self._contract(client, resource, contract, id_field)
        self._unprimed.setdefault((client.name, resource), []).append((tuple(records), id_field))

    def _contract(
        self, client: ServiceClient, resource: str, given: RecordContract | None, id_field: str
    ) -> RecordContract:
        """The resource's contract for this operation: the first one given, else ids only."""
        key = (client.name, resource)
        found = self._contracts.get(key)
        if found is None:
            found = self._contracts[key] = given or RecordContract(id_field=id_field)
        return found

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

    async def _fetch(
        self, client: ServiceClient, resource: str, field: str, keys: list[str], contract: RecordContract
    ) -> list[tuple[list[str], list[Record] | Exception, Breach | None]]:
        """GET the records with ``field`` in ``keys``, chunk by chunk, each answer checked against
        ``contract``; a failed chunk yields its error, a chunk with breaking records its breach."""
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
            *(client.get(path, call=self.call, params=[(field, key) for key in chunk]) for chunk in chunks),
            return_exceptions=True,
        )
        outcome: list[tuple[list[str], list[Record] | Exception, Breach | None]] = []
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                outcome.append((chunk, result, None))
                continue
            if result.stale:
                self.stale.mark(result.stale)
            body = result.body
            if not isinstance(body, list):
                error = DownstreamContract(
                    f"{client.name} service answered GET {path} with no list", service=client.name
                )
                outcome.append((chunk, error, None))
                continue
            breach = contract.check(
                body, service=client.name, resource=resource, counter=client.contract_violations
            )
            outcome.append((chunk, body, breach))
        return outcome

    def _batch_by_id(
        self, client: ServiceClient, resource: str, id_field: str, contract: RecordContract
    ) -> Callable[[list[str]], Coroutine[Any, Any, list[Record | None]]]:
        async def batch_load(keys: list[str]) -> list[Any]:
            found: dict[str, Any] = {}
            for chunk, result, breach in await self._fetch(client, resource, id_field, keys, contract):
                if isinstance(result, Exception):
                    found.update(dict.fromkeys(chunk, result))
                    continue
                unkeyed = False
                for record in result:
                    if breach is None or not breach.broke(record):
                        found[str(record[id_field])] = record
                    elif isinstance(record, dict) and id_field in record:
                        found[str(record[id_field])] = breach.error
                    else:
                        unkeyed = True
                if unkeyed and breach is not None:
                    # A record without its id may be the answer to any key nothing else answered.
                    for key in chunk:
                        found.setdefault(key, breach.error)
            return [found.get(key) for key in keys]

        return batch_load

    def _batch_by_field(
        self, client: ServiceClient, resource: str, field: str, contract: RecordContract
    ) -> Callable[[list[str]], Coroutine[Any, Any, list[list[Record]]]]:
        async def batch_load(keys: list[str]) -> list[Any]:
            groups: dict[str, Any] = {}
            found: list[Record] = []
            for chunk, result, breach in await self._fetch(client, resource, field, keys, contract):
                if isinstance(result, Exception):
                    groups.update(dict.fromkeys(chunk, result))
                    continue
                fetched: dict[str, Any] = {key: [] for key in chunk}
                for record in result:
                    if breach is not None and breach.broke(record):
                        value = record.get(field) if isinstance(record, dict) else None
                        if str(value) in fetched:
                            fetched[str(value)] = breach.error
                        else:
                            # Not even its group is known: every group of the answer is in doubt.
                            fetched = dict.fromkeys(chunk, breach.error)
                            break
                        continue
                    group = fetched.get(str(record.get(field)))
                    if isinstance(group, list):
                        group.append(record)
                    found.append(record)
                groups.update(fetched)
            self.prime(client, resource, found, contract=contract)
            return [groups[key] for key in keys]

        return batch_load
