"""Mutations, Shopify style: each returns a payload with the changed object and ``userErrors``.

``userErrors`` lists what the client can fix (``field`` is the path into the arguments, ``code`` is
stable); the object is null when there are any. Failures that are not the client's are GraphQL
errors with ``extensions.code`` (``DOWNSTREAM_*``, or ``MUTATION_FAILED`` with ``rolledBack``).
Who may do what is :mod:`bff_chinook.resolvers.access`' rule: ``FORBIDDEN`` for a customer buying
for someone else or paying another customer's invoice, ``UNAUTHENTICATED`` for anonymous changes
when sign-in is on.
"""

from __future__ import annotations

import strawberry

from bff import Info
from bff.graph.writes import MutationResult
from bff.permissions import require_principal
from bff_chinook.resolvers import payments as payments_service
from bff_chinook.resolvers import playlist_edits, purchases
from bff_chinook.resolvers.access import check_customer_access
from bff_chinook.resolvers.errors import UserErrorCode
from bff_chinook.schema.payments import Payment
from bff_chinook.schema.playlists import Playlist
from bff_chinook.schema.sales import Invoice

UserErrorCodeType = strawberry.enum(UserErrorCode, name="UserErrorCode", description="Why input was refused.")


@strawberry.type
class UserError:
    """A problem with the input that the client can fix."""

    field: list[str] | None = strawberry.field(
        description="Path to the input field, e.g. [input, trackIds, 2]."
    )
    message: str
    code: UserErrorCode


def _user_errors(result: MutationResult) -> list[UserError]:
    return [
        UserError(field=list(e.field) or None, message=e.message, code=UserErrorCode(e.code_name))
        for e in result.user_errors
    ]


@strawberry.input
class PurchaseTracksInput:
    """What to buy, for whom, and the key that makes a retry safe."""

    customer_id: strawberry.ID
    track_ids: list[strawberry.ID]
    idempotency_key: str = strawberry.field(description="Unique per purchase (a UUID); a retry reuses it.")


@strawberry.type
class PurchaseTracksPayload:
    """The new invoice (or the one a replayed key made), or what was wrong with the input."""

    invoice: Invoice | None
    user_errors: list[UserError]


@strawberry.input
class PayInvoiceInput:
    """Which invoice to pay, and the key that makes a retry safe."""

    invoice_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="Unique per payment attempt (a UUID).")


@strawberry.type
class PayInvoicePayload:
    """The charge, PENDING until settled (follow it with the ``paymentUpdated`` subscription)."""

    payment: Payment | None
    user_errors: list[UserError]


@strawberry.input
class CreatePlaylistInput:
    """A new playlist."""

    name: str


@strawberry.input
class PlaylistTrackInput:
    """A track on a playlist."""

    playlist_id: strawberry.ID
    track_id: strawberry.ID


@strawberry.type
class PlaylistPayload:
    """The playlist as it is now, or what was wrong with the input."""

    playlist: Playlist | None
    user_errors: list[UserError]


@strawberry.type
class Mutation:
    """Changes: purchases, payments and playlists."""

    @strawberry.mutation(
        description="Buy tracks: an invoice with one line per track, priced from the catalog."
    )
    async def purchase_tracks(self, info: Info, input: PurchaseTracksInput) -> PurchaseTracksPayload | None:
        check_customer_access(info.context, str(input.customer_id))
        result = await purchases.purchase_tracks(
            info.context,
            customer_id=str(input.customer_id),
            track_ids=[str(track_id) for track_id in input.track_ids],
            idempotency_key=input.idempotency_key,
        )
        invoice = None if result.record is None else Invoice.from_record(result.record)
        return PurchaseTracksPayload(invoice=invoice, user_errors=_user_errors(result))

    @strawberry.mutation(description="Pay an invoice: a charge of its total, PENDING until settled.")
    async def pay_invoice(self, info: Info, input: PayInvoiceInput) -> PayInvoicePayload | None:
        result = await payments_service.pay_invoice(
            info.context, invoice_id=str(input.invoice_id), idempotency_key=input.idempotency_key
        )
        payment = None if result.record is None else Payment.from_record(result.record)
        return PayInvoicePayload(payment=payment, user_errors=_user_errors(result))

    @strawberry.mutation(description="Create an empty playlist.")
    async def create_playlist(self, info: Info, input: CreatePlaylistInput) -> PlaylistPayload | None:
        require_principal(info.context)
        return _playlist_payload(await playlist_edits.create_playlist(info.context, name=input.name))

    @strawberry.mutation(description="Put a track at the end of a playlist.")
    async def add_track_to_playlist(self, info: Info, input: PlaylistTrackInput) -> PlaylistPayload | None:
        require_principal(info.context)
        return _playlist_payload(
            await playlist_edits.add_track(
                info.context, playlist_id=str(input.playlist_id), track_id=str(input.track_id)
            )
        )

    @strawberry.mutation(description="Take a track off a playlist.")
    async def remove_track_from_playlist(
        self, info: Info, input: PlaylistTrackInput
    ) -> PlaylistPayload | None:
        require_principal(info.context)
        return _playlist_payload(
            await playlist_edits.remove_track(
                info.context, playlist_id=str(input.playlist_id), track_id=str(input.track_id)
            )
        )


def _playlist_payload(result: MutationResult) -> PlaylistPayload:
    playlist = None if result.record is None else Playlist.from_record(result.record)
    return PlaylistPayload(playlist=playlist, user_errors=_user_errors(result))
