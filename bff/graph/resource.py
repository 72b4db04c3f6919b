"""``Resource``: one declaration per downstream REST resource, and everything that follows from it.

::

    users = Resource("jsonplaceholder", "users", fields={"id": int, "name": str, "email": str | None})
    posts = Resource("jsonplaceholder", "posts", list_size=100)

A resource gives the operation's DataLoaders by id (:meth:`Resource.get`) and by a field
(:meth:`Resource.where`), a whole list (:meth:`Resource.all`), offset pages with their total
(:meth:`Resource.page`), writes through the service's pipeline (:meth:`Resource.request`) and the
cache entries a write makes stale (:meth:`Resource.invalidate`). Relationship fields
(:func:`bff.graph.to_one`, :func:`bff.graph.to_many`) and Relay connections take a resource. Every
call follows the downstream contract (json-server 0.17 conventions, DESIGN.md):
``GET /{path}?id=1&id=2``, ``GET /{path}?{field}=v``, ``_start``/``_limit`` with ``X-Total-Count``.

``fields`` declares what the app's types read of a record, with JSON types (:mod:`bff.contract`):
every record read through the resource is checked, and one that breaks the declaration fails the
fields that would show it with ``DOWNSTREAM_CONTRACT`` instead of turning into silent nulls.
"""

from __future__ import annotations

from asyncio import Future
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bff.cache import entity_key, index_key
from bff.contract import RecordContract
from bff.downstream import JSONResponse, Params, ServiceClient
from bff.errors import DownstreamContract
from bff.graph.nodes import SharedNodes
from bff.loaders import Record, load_one

if TYPE_CHECKING:
    from aiodataloader import DataLoader

    from bff.context import Context

__all__ = ["Page", "Resource"]


@dataclass(frozen=True, slots=True)
class Page:
    """``records`` starting at ``offset`` of ``total`` matches."""

    records: list[Record]
    offset: int
    total: int


@dataclass(frozen=True, slots=True)
class Resource:
    """A downstream resource: the ``service`` it lives in and its ``path`` there (``/{path}``).

    ``id_field`` names the records' id (json-server: ``id``). ``list_size`` is how many records
    :meth:`all` is expected to return, the cost of a field listing them (:mod:`bff.cost_map`);
    ``None`` counts ``BFF_DEFAULT_LIST_SIZE``. ``fields`` maps the record fields the app reads to
    their JSON types (``{"id": int, "title": str, "artistId": int | None}``, :mod:`bff.contract`);
    without it only the id is checked. A type that is not a JSON type raises ``TypeError`` here.
    """

    service: str
    path: str
    id_field: str = "id"
    list_size: int | None = None
    fields: Mapping[str, object] | None = field(default=None, compare=False)
    contract: RecordContract = field(init=False, compare=False, repr=False)
    """The declaration the records are checked against (:class:`~bff.contract.RecordContract`)."""
    shared_nodes: SharedNodes = field(init=False, compare=False, repr=False)
    """The nodes of its cached list answers, shared between operations (:func:`bff.graph.all_nodes`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "contract", RecordContract(self.fields, id_field=self.id_field))
        object.__setattr__(self, "shared_nodes", SharedNodes())

    def client(self, ctx: Context) -> ServiceClient:
        """The service's client; ``KeyError`` when the app did not declare the service."""
        return ctx.services[self.service]

    def get(self, ctx: Context, record_id: str | None) -> Future[Record | None]:
        """One record by id, batched with every other load of the operation (``None``: no such record).

        The operation's loader future: done once its batch is, so a resolver may read it at once.
        """
        loader = self._by_id(ctx)
        # Every to-one field of every item asks: the common case skips load_one's call.
        return loader.load(record_id) if record_id is not None else load_one(loader, None)

    async def get_many(self, ctx: Context, record_ids: Sequence[str]) -> list[Record | None]:
        """Several records by id, in the order asked; a missing one is ``None``."""
        return await self._by_id(ctx).load_many(list(record_ids))

    def where(self, ctx: Context, field: str, value: str) -> Future[list[Record]]:
        """The records whose ``field`` equals ``value`` (a foreign key), batched per field."""
        return self._by_field(ctx, field).load(value)

    async def all(self, ctx: Context, params: Params = ()) -> list[Record]:
        """``GET /{path}`` (with ``params``): every record, also primed for :meth:`get`.

        Raises ``DOWNSTREAM_CONTRACT`` when the answer is not a list.
        """
        response = await self.client(ctx).get(f"/{self.path}", call=ctx.call, params=params)
        records = self._list(ctx, response)
        self.prime(ctx, records)
        return records

    async def page(
        self, ctx: Context, *, offset: int, limit: int, filters: Sequence[tuple[str, str]] = ()
    ) -> Page:
        """Up to ``limit`` records from ``offset`` on (0-based), matching ``filters``, and the total.

        Sent as ``_start``/``_limit``; the service must answer ``X-Total-Count``, else
        ``DOWNSTREAM_CONTRACT``. The records are primed for :meth:`get`.
        """
        params = [*filters, ("_start", str(offset)), ("_limit", str(max(limit, 1)))]
        client = self.client(ctx)
        response = await client.get(f"/{self.path}", call=ctx.call, params=params)
        records = self._list(ctx, response)
        total_header = response.headers.get("X-Total-Count")
        if total_header is None or not total_header.isdigit():
            raise DownstreamContract(
                f"{client.name} service sent no X-Total-Count for /{self.path}", service=client.name
            )
        self.prime(ctx, records)
        return Page(records=records[:limit], offset=offset, total=int(total_header))

    async def request(
        self,
        ctx: Context,
        method: str,
        record_id: str | None = None,
        *,
        json_body: Any = None,
        params: Params | None = None,
        call: Any = None,
    ) -> JSONResponse:
        """``method /{path}`` (or ``/{path}/{record_id}``) through the service's pipeline.

        ``call`` replaces the operation's (for a deadline of its own or extra headers). Raises the
        :class:`~bff.errors.DownstreamError` tree.
        """
        path = f"/{self.path}" if record_id is None else f"/{self.path}/{record_id}"
        return await self.client(ctx).request(
            method, path, call=call or ctx.call, params=params, json_body=json_body
        )

    async def invalidate(
        self, ctx: Context, *, ids: Sequence[str] = (), fields: Mapping[str, str] | None = None
    ) -> None:
        """Forget what a write changed: records by id, lists by field value, and the resource's pages.

        Clears the app's entity cache (every operation after this one reads fresh data) and this
        operation's loaders (so the mutation's own payload does too).
        """
        by_field = dict(fields or {})
        service = self.service
        keys = [entity_key(service, self.path, record_id) for record_id in ids]
        keys += [index_key(service, self.path, name, value) for name, value in by_field.items()]
        await ctx.cache.invalidate(keys, resources=[(service, self.path)])
        loader = self._by_id(ctx)
        for record_id in ids:
            loader.clear(record_id)
        for name, value in by_field.items():
            self._by_field(ctx, name).clear(value)

    def prime(self, ctx: Context, records: Sequence[Record]) -> None:
        """Put records read some other way (a write's answer) into the operation's loader by id, so
        :meth:`get` finds them without a request."""
        ctx.loaders.prime(
            self.client(ctx), self.path, records, id_field=self.id_field, contract=self.contract
        )

    def _by_id(self, ctx: Context) -> DataLoader[str, Record | None]:
        return ctx.loaders.by_id(
            ctx.services[self.service], self.path, id_field=self.id_field, contract=self.contract
        )

    def _by_field(self, ctx: Context, name: str) -> DataLoader[str, list[Record]]:
        return ctx.loaders.by_field(self.client(ctx), self.path, name, contract=self.contract)

    def _list(self, ctx: Context, response: JSONResponse) -> list[Record]:
        """The records of a list answer; raises ``DOWNSTREAM_CONTRACT`` when it is no list or a record
        breaks the declaration (a list is shown whole or not at all)."""
        body = response.body
        if not isinstance(body, list):
            raise DownstreamContract(
                f"{self.service} service answered GET /{self.path} with no list", service=self.service
            )
        client = self.client(ctx)
        breach = self.contract.check(
            body, service=self.service, resource=self.path, counter=client.contract_violations
        )
        if breach is not None:
            raise breach.error
        if response.stale:
            ctx.stale.mark(response.stale)
        return body
