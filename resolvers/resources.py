"""The Chinook resources: one declaration per downstream resource (DESIGN.md's service table).

Loaders, relationship fields, connections and cache invalidation all follow from these
(:class:`bff.Resource`). ``list_size`` is a whole list's expected length, for the cost limit.
``fields`` are the record fields the types and mutations read, with their JSON types: a record
that breaks them is ``DOWNSTREAM_CONTRACT`` on the fields that would show it (:mod:`bff.contract`),
and ``contracts/`` holds the same expectations as consumer pacts the services are verified against.
"""

from __future__ import annotations

from bff import Resource

customers = Resource(
    "customers",
    "customers",
    fields={
        "id": int,
        "firstName": str,
        "lastName": str,
        "email": str | None,
        "company": str | None,
        "address": str | None,
        "city": str | None,
        "state": str | None,
        "country": str | None,
        "postalCode": str | None,
        "supportRepId": int | None,
    },
)
employees = Resource(
    "customers",
    "employees",
    fields={
        "id": int,
        "firstName": str,
        "lastName": str,
        "title": str | None,
        "email": str | None,
        "city": str | None,
        "country": str | None,
        "reportsToId": int | None,
    },
)

artists = Resource("catalog", "artists", fields={"id": int, "name": str})
albums = Resource("catalog", "albums", fields={"id": int, "title": str, "artistId": int | None})
tracks = Resource(
    "catalog",
    "tracks",
    fields={
        "id": int,
        "name": str,
        "composer": str | None,
        "milliseconds": int,
        "bytes": int,
        "unitPrice": float,
        "albumId": int | None,
        "genreId": int | None,
        "mediaTypeId": int | None,
    },
)
genres = Resource("catalog", "genres", list_size=25, fields={"id": int, "name": str})
media_types = Resource("catalog", "mediaTypes", fields={"id": int, "name": str})

invoices = Resource(
    "sales",
    "invoices",
    fields={
        "id": int,
        "invoiceDate": str,
        "billingCity": str | None,
        "billingCountry": str | None,
        "total": float,
        "customerId": int | None,
    },
)
invoice_lines = Resource(
    "sales",
    "invoiceLines",
    fields={"id": int, "unitPrice": float, "quantity": int, "trackId": int | None, "invoiceId": int | None},
)

playlists = Resource("playlists", "playlists", fields={"id": int, "name": str})
playlist_tracks = Resource(
    "playlists", "playlistTracks", fields={"id": int, "playlistId": int, "trackId": int}
)

charges = Resource(
    "payments",
    "charges",
    fields={
        "id": int,
        "invoiceId": int | str,
        "amount": float,
        "currency": str,
        "status": str,
        "failureReason": str | None,
        "createdAt": str | None,
    },
)
