"""Subscriptions: live events from the event bus, filtered by the arguments.

Served over WebSockets (``graphql-transport-ws`` and the legacy ``graphql-ws``) and over Server-Sent
Events. Every event runs with fresh DataLoaders (:class:`bff.subscriptions.PerEventExecutor`), so
the fields selected under an event read current data.

Events are filtered by what the principal may see, as queries are (:mod:`bff.permissions`): a
customer's ``invoiceCreated`` and ``paymentUpdated`` receive only their own invoices' events, and
asking for another customer's invoices or an invoice that is not theirs fails with ``FORBIDDEN``
when the subscription starts; employees receive all; anonymous subscribers receive all unless
``BFF_AUTH_REQUIRED`` is on (``UNAUTHENTICATED``). Playlists are public, as over HTTP.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncGenerator
from typing import Final

import strawberry
from cachetools import LRUCache

from bff.context import Context
from bff.errors import BadUserInput, BFFError
from bff.graph.writes import check_id
from bff.subscriptions import bus_events
from bff_chinook.resolvers import resources
from bff_chinook.resolvers.access import check_customer_access, customer_scope
from bff_chinook.resolvers.topics import (
    CHARGE_CREATED,
    CHARGE_FAILED,
    CHARGE_SUCCEEDED,
    INVOICE_CREATED,
    PLAYLIST_UPDATED,
)
from bff_chinook.schema.common import Info, node, ref
from bff_chinook.schema.payments import Payment
from bff_chinook.schema.playlists import Playlist
from bff_chinook.schema.sales import Invoice

logger = logging.getLogger("bff.subscriptions")

INVOICE_OWNERS_CACHE_SIZE: Final = 256
"""Invoice owners one customer's ``paymentUpdated`` subscription remembers (an owner never changes)."""


def _checked_id(value: strawberry.ID | None, argument: str) -> str | None:
    if value is None:
        return None
    if check_id(str(value), argument) is not None:
        raise BadUserInput(f"{argument} {str(value)!r} is not a valid id", argument=argument)
    return str(value)


class _InvoiceOwners:
    """The customer of each invoice, from the sales service, each lookup with a fresh context."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._owners: LRUCache[str, str] = LRUCache(maxsize=INVOICE_OWNERS_CACHE_SIZE)

    async def owner(self, invoice_id: str) -> str | None:
        """The invoice's customer id; ``None`` when there is no such invoice. Raises ``BFFError``."""
        owner = self._owners.get(invoice_id)
        if owner is None:
            record = await resources.invoices.get(self._ctx.for_event(), invoice_id)
            owner = None if record is None else ref(record.get("customerId"))
            if owner is not None:
                self._owners[invoice_id] = owner
        return owner

    async def owned_by(self, invoice_id: str, customer_id: str) -> bool:
        """Whether the invoice is the customer's; ``False`` (logged) when the sales service fails."""
        try:
            return await self.owner(invoice_id) == customer_id
        except BFFError as exc:  # fail closed: an event nobody can vouch for is not delivered
            logger.warning("[request %s] payment event dropped: %s", self._ctx.request_id, exc)
            return False


@strawberry.enum(description="What happened to a playlist.")
class PlaylistChange(enum.Enum):
    CREATED = "CREATED"
    TRACK_ADDED = "TRACK_ADDED"
    TRACK_REMOVED = "TRACK_REMOVED"


@strawberry.type
class PlaylistUpdate:
    """One change to a playlist; ``playlist`` is read when the event is delivered."""

    change: PlaylistChange
    playlist_id: strawberry.ID
    track_id: strawberry.ID | None = strawberry.field(description="The track added or removed.")

    @strawberry.field(description="The playlist as it is now.")
    async def playlist(self, info: Info) -> Playlist | None:
        return node(info, Playlist.from_record, await resources.playlists.get(info.context, self.playlist_id))


@strawberry.type
class Subscription:
    """Live events."""

    @strawberry.subscription(
        description="New invoices (purchases); only one customer's when `customerId` is given. "
        "Customers receive only their own (another customer's `customerId` is FORBIDDEN)."
    )
    async def invoice_created(
        self, info: Info, customer_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Invoice, None]:
        wanted = _checked_id(customer_id, "customerId")
        if wanted is not None:
            check_customer_access(info.context, wanted)
        else:
            wanted = customer_scope(info.context)
        async for event in bus_events(info.context, INVOICE_CREATED):
            record = event.data["invoice"]
            if wanted is None or str(record.get("customerId")) == wanted:
                yield Invoice.from_record(record)

    @strawberry.subscription(
        description="Payments as they change (PENDING, then SUCCEEDED or FAILED); one invoice's when given. "
        "Customers receive only their own invoices' (another's `invoiceId` is FORBIDDEN)."
    )
    async def payment_updated(
        self, info: Info, invoice_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Payment, None]:
        wanted = _checked_id(invoice_id, "invoiceId")
        customer = customer_scope(info.context)
        owners = _InvoiceOwners(info.context)
        if wanted is not None and customer is not None:
            check_customer_access(info.context, await owners.owner(wanted))
            customer = None  # the one invoice wanted is the customer's: no lookups per event
        async for event in bus_events(info.context, CHARGE_CREATED, CHARGE_SUCCEEDED, CHARGE_FAILED):
            record = event.data["charge"]
            paid = str(record.get("invoiceId"))
            if wanted is not None and paid != wanted:
                continue
            if customer is None or await owners.owned_by(paid, customer):
                yield Payment.from_record(record)

    @strawberry.subscription(description="Changes to one playlist: created, track added, track removed.")
    async def playlist_updated(
        self, info: Info, playlist_id: strawberry.ID
    ) -> AsyncGenerator[PlaylistUpdate, None]:
        wanted = _checked_id(playlist_id, "playlistId")
        async for event in bus_events(info.context, PLAYLIST_UPDATED):
            data = event.data
            if str(data.get("playlistId")) == wanted:
                track_id = data.get("trackId")
                yield PlaylistUpdate(
                    change=PlaylistChange(data["change"]),
                    playlist_id=strawberry.ID(str(data["playlistId"])),
                    track_id=None if track_id is None else strawberry.ID(str(track_id)),
                )
