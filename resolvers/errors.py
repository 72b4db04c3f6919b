"""Why a Chinook mutation refused its input: the ``UserErrorCode`` enum of the schema."""

from __future__ import annotations

import enum

__all__ = ["UserErrorCode"]


class UserErrorCode(enum.Enum):
    """Why a mutation refused its input; stable, for clients to switch on.

    The first four are the kit's (:class:`bff.graph.writes.KitUserErrorCode`), repeated so the schema
    lists every code a mutation may answer.
    """

    INVALID_ID = "INVALID_ID"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_USE = "IDEMPOTENCY_KEY_IN_USE"
    CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
    TRACK_NOT_FOUND = "TRACK_NOT_FOUND"
    INVOICE_NOT_FOUND = "INVOICE_NOT_FOUND"
    PLAYLIST_NOT_FOUND = "PLAYLIST_NOT_FOUND"
    NO_TRACKS = "NO_TRACKS"
    TOO_MANY_TRACKS = "TOO_MANY_TRACKS"
    DUPLICATE_TRACK = "DUPLICATE_TRACK"
    INVALID_NAME = "INVALID_NAME"
    TRACK_ALREADY_ON_PLAYLIST = "TRACK_ALREADY_ON_PLAYLIST"
    TRACK_NOT_ON_PLAYLIST = "TRACK_NOT_ON_PLAYLIST"
    INVOICE_ALREADY_PAID = "INVOICE_ALREADY_PAID"
