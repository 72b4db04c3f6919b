"""``Resource``: one declaration per downstream REST resource, and everything that follows from it.

::

    users = Resource("jsonplaceholder", "users")
    posts = Resource("jsonplaceholder", "posts", list_size=100)

A resource gives the operation's DataLoaders by id (:meth:`Resource.get`) and by a field
(:meth:`Resource.where`), a whole list (:meth:`Resource.all`), offset pages with their total
(:meth:`Resource.page`), writes through the service's pipeline (:meth:`Resource.request`) and the
cache entries a write makes stale (:meth:`Resource.invalidate`). Relationship fields
(:func:`bff.graph.to_one`, :func:`bff.graph.to_many`) and Relay connections take a resource. Every
call follows the downstream contract (json-server 0.17 conventions, DESIGN.md):
``GET /{path}?id=1&id=2``, ``GET /{path}?{field}=v``, ``_start``/``_limit`` with ``X-Total-Count``.
"""

from __future__ import annotations

from asyncio import Future
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bff.cache import entity_key, index_key
from bff.downstream import JSONResponse, Params, ServiceClient
from bff.errors import DownstreamContract
from bff.loaders import Record, load_one

if TYPE_CHECKING:
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
    ``None`` counts ``BFF_DEFAULT_LIST_SIZE``.
    """

    service: str
    path: str
    id_field: str = "id"
    list_size: int | None = None

    def client(self, ctx: Context) -> ServiceClient:
        """The service's client; ``KeyError`` when the app did not declare the service."""
        return ctx.services[self.service]

    def get(self, ctx: Context, record_id: str | None) -> Future[Record | None]:
        """One record by id, batched with every other load of the operation (``None``: no such record).

        The operation's loader future: done once its batch is, so a resolver may read it at once.
        """
        loader = ctx.loaders.by_id(self.client(ctx), self.path, id_field=self.id_field)
        return load_one(loader, record_id)

    async def get_many(self, ctx: Context, record_ids: Sequence[str]) -> list[Record | None]:
        """Several records by id, in the order asked; a missing one is ``None``."""
        loader = ctx.loaders.by_id(self.client(ctx), self.path, id_field=self.id_field)
        return await loader.load_many(list(record_ids))

    def where(self, ctx: Context, field: str, value: str) -> Future[list[Record]]:
        """The records whose ``field`` equals ``value`` (a foreign key), batched per field."""
        return ctx.loaders.by_field(self.client(ctx), self.path, field).load(value)

    async def all(self, ctx: Context, params: Params = ()) -> list[Record]:
        """``GET /{path}`` (with ``params``): every record, also primed for :meth:`get`.

        Raises ``DOWNSTREAM_CONTRACT`` when the answer is not a list.
        """
        response = await self.client(ctx).get(f"/{self.path}", call=ctx.call, params=params)
        records = self._list(ctx, response)
        ctx.loaders.prime(self.client(ctx), self.path, records, id_field=self.id_field)
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
        ctx.loaders.prime(client, self.path, records, id_field=self.id_field)
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
        client = self.client(ctx)
        loader = ctx.loaders.by_id(client, self.path, id_field=self.id_field)
        for record_id in ids:
            loader.clear(record_id)
        for name, value in by_field.items():
            ctx.loaders.by_field(client, self.path, name).clear(value)

    def _list(self, ctx: Context, response: JSONResponse) -> list[Record]:
        body = response.body
        if not isinstance(body, list):
            raise DownstreamContract(
                f"{self.service} service answered GET /{self.path} with no list", service=self.service
            )
        if response.stale:
            ctx.stale.mark(response.stale)
        return body
