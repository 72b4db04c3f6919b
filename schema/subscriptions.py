"""Subscriptions: live events from the event bus, filtered by the arguments.

Served over WebSockets (``graphql-transport-ws`` and the legacy ``graphql-ws``) and over Server-Sent
Events. Every event runs with fresh DataLoaders (:class:`bff.subscriptions.PerEventExecutor`), so
the fields selected under an event read current data.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator

import strawberry

from bff.errors import BadUserInput
from bff.events import CHARGE_CREATED, CHARGE_FAILED, CHARGE_SUCCEEDED, INVOICE_CREATED, PLAYLIST_UPDATED
from bff.subscriptions import bus_events
from resolvers import playlists as playlists_service
from resolvers.writes import check_id
from schema.common import Info, node
from schema.payments import Payment
from schema.playlists import Playlist
from schema.sales import Invoice


def _checked_id(value: strawberry.ID | None, argument: str) -> str | None:
    if value is None:
        return None
    if check_id(str(value), argument) is not None:
        raise BadUserInput(f"{argument} {str(value)!r} is not a valid id", argument=argument)
    return str(value)


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
        return node(
            info, Playlist.from_record, await playlists_service.playlist(info.context, self.playlist_id)
        )


@strawberry.type
class Subscription:
    """Live events."""

    @strawberry.subscription(
        description="New invoices (purchases); only one customer's when `customerId` is given."
    )
    async def invoice_created(
        self, info: Info, customer_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Invoice, None]:
        wanted = _checked_id(customer_id, "customerId")
        async for event in bus_events(info.context, INVOICE_CREATED):
            record = event.data["invoice"]
            if wanted is None or str(record.get("customerId")) == wanted:
                yield Invoice.from_record(record)

    @strawberry.subscription(
        description="Payments as they change (PENDING, then SUCCEEDED or FAILED); one invoice's when given."
    )
    async def payment_updated(
        self, info: Info, invoice_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Payment, None]:
        wanted = _checked_id(invoice_id, "invoiceId")
        async for event in bus_events(info.context, CHARGE_CREATED, CHARGE_SUCCEEDED, CHARGE_FAILED):
            record = event.data["charge"]
            if wanted is None or str(record.get("invoiceId")) == wanted:
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
