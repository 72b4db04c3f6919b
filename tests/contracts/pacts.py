"""What the BFF needs from each downstream service, as Pact interactions (consumer ``bff``).

One function per provider adds its interactions to a :class:`pact.Pact`; the consumer tests
(:mod:`tests.contracts.test_consumer`) replay the BFF's own code against Pact's mock server and
write ``contracts/bff-<provider>.json``; the provider tests verify those files against the demo
services and, for the interactions whose description starts with ``read:``, json-server 0.17.4.

Record bodies are matched by type from the resource declarations (:mod:`bff.contract`), so the
pacts ask for exactly the fields the schema reads, with their JSON types. Pact has no "this type or
null" matcher: the records asked for are ones whose nullable fields hold values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pact import Pact, match

from bff import Resource
from bff_chinook.resolvers import resources

CONSUMER = "bff"
PROVIDERS = ("customers", "catalog", "sales", "playlists", "payments")
WEBHOOKS = "payments-webhooks"
"""The provider of the payments webhooks, a message pact (the payments service sends them)."""

READ = "read: "
"""Descriptions of interactions that only read; json-server is verified against these."""

TOTAL = match.regex("347", regex=r"^\d+$")
LOCATION = r"^https?://[^/]+/{}/\d+$"

CUSTOMER = {"id": 1, "firstName": "Luís", "lastName": "Gonçalves", "email": "luisg@embraer.com.br",
            "company": "Embraer", "address": "Av. Brigadeiro Faria Lima, 2170",
            "city": "São José dos Campos", "state": "SP", "country": "Brazil", "postalCode": "12227-000",
            "supportRepId": 3}  # fmt: skip
EMPLOYEE = {"id": 2, "firstName": "Nancy", "lastName": "Edwards", "title": "Sales Manager",
            "email": "nancy@chinookcorp.com", "city": "Calgary", "country": "Canada",
            "reportsToId": 1}  # fmt: skip
TRACK = {"id": 1, "name": "For Those About To Rock (We Salute You)", "composer": "Angus Young",
         "milliseconds": 343719, "bytes": 11170334, "unitPrice": 0.99, "albumId": 1, "genreId": 1,
         "mediaTypeId": 1}  # fmt: skip
ALBUM = {"id": 1, "title": "For Those About To Rock We Salute You", "artistId": 1}
ARTIST = {"id": 1, "name": "AC/DC"}
INVOICE = {"id": 98, "invoiceDate": "2010-03-11T00:00:00Z", "billingCity": "São José dos Campos",
           "billingCountry": "Brazil", "total": 3.98, "customerId": 1}  # fmt: skip
LINE = {"id": 1, "unitPrice": 0.99, "quantity": 1, "trackId": 2, "invoiceId": 1}
PLAYLIST = {"id": 19, "name": "Road trip"}
ENTRY = {"id": 8716, "playlistId": 9, "trackId": 3402}
CHARGE = {"id": 1, "invoiceId": 5, "amount": 3.96, "currency": "USD", "status": "PENDING",
          "failureReason": None, "createdAt": "2026-11-02T10:00:00Z"}  # fmt: skip


def like(resource: Resource, example: dict[str, Any]) -> dict[str, Any]:
    """A body matcher of one record: each declared field of ``resource`` matched by its type."""
    out: dict[str, Any] = {}
    for name in resource.contract.fields:
        value = example[name]
        if isinstance(value, bool):
            out[name] = match.bool(value)
        elif isinstance(value, int):
            out[name] = match.int(value)
        elif isinstance(value, float):
            out[name] = match.number(value)
        elif isinstance(value, str):
            out[name] = match.str(value)
        else:
            out[name] = value
    return out


def batched(pact: Pact, description: str, path: str, field: str, values: Sequence[str], body: Any) -> None:
    """A GET of ``path`` with ``field`` repeated once per value, as the loaders batch it."""
    interaction = pact.upon_receiving(description).with_request("GET", path)
    for value in values:
        interaction.with_query_parameter(field, value)
    interaction.will_respond_with(200).with_body(body, content_type="application/json")


def created(
    pact: Pact, description: str, path: str, request: dict[str, Any], body: Any, **headers: str
) -> None:
    """A POST creating a record: 201, its ``Location``, the record."""
    interaction = pact.upon_receiving(description).with_request("POST", path)
    for name, value in headers.items():
        interaction.with_header(name, value)
    interaction.with_body(request, content_type="application/json")
    interaction.will_respond_with(201).with_header(
        "Location", match.regex(f"http://127.0.0.1:8000{path}/1", regex=LOCATION.format(path.strip("/")))
    ).with_body(body, content_type="application/json")


def customers(pact: Pact) -> None:
    batched(pact, "read: employees by id, batched", "/employees", "id", ["2", "3"],
            match.each_like(like(resources.employees, EMPLOYEE), min=2))  # fmt: skip
    batched(pact, "read: customers by id, batched", "/customers", "id", ["1", "10"],
            match.each_like(like(resources.customers, CUSTOMER), min=2))  # fmt: skip


def catalog(pact: Pact) -> None:
    batched(pact, "read: tracks by id, batched", "/tracks", "id", ["1", "3"],
            match.each_like(like(resources.tracks, TRACK), min=2))  # fmt: skip
    batched(pact, "read: tracks of albums, batched", "/tracks", "albumId", ["1", "4"],
            match.each_like(like(resources.tracks, TRACK), min=2))  # fmt: skip
    batched(pact, "read: albums by id, batched", "/albums", "id", ["1", "2"],
            match.each_like(like(resources.albums, ALBUM), min=2))  # fmt: skip
    (
        pact.upon_receiving("read: a page of artists with its total")
        .with_request("GET", "/artists")
        .with_query_parameter("_start", "0")
        .with_query_parameter("_limit", "2")
        .will_respond_with(200)
        .with_header("X-Total-Count", match.regex("275", regex=r"^\d+$"))
        .with_body(
            match.each_like(like(resources.artists, ARTIST), min=2, max=2), content_type="application/json"
        )
    )


def sales(pact: Pact) -> None:
    batched(pact, "read: invoices of customers, batched", "/invoices", "customerId", ["1", "5"],
            match.each_like(like(resources.invoices, INVOICE), min=2))  # fmt: skip
    batched(pact, "read: lines of invoices, batched", "/invoiceLines", "invoiceId", ["1", "2"],
            match.each_like(like(resources.invoice_lines, LINE), min=2))  # fmt: skip
    invoice = {k: v for k, v in INVOICE.items() if k != "id"} | {
        "purchaseKey": "purchaseTracks:anonymous:1:k1"
    }
    created(pact, "write: create an invoice", "/invoices", invoice, like(resources.invoices, INVOICE))
    line = {k: v for k, v in LINE.items() if k != "id"}
    created(pact, "write: create an invoice line", "/invoiceLines", line, like(resources.invoice_lines, LINE))
    (
        pact.upon_receiving("write: delete an invoice line")
        .given("invoice line 90001 exists")
        .with_request("DELETE", "/invoiceLines/90001")
        .will_respond_with(200)
    )


def playlists(pact: Pact) -> None:
    batched(pact, "read: entries of playlists, batched", "/playlistTracks", "playlistId", ["9", "18"],
            match.each_like(like(resources.playlist_tracks, ENTRY), min=2))  # fmt: skip
    created(
        pact,
        "write: create a playlist",
        "/playlists",
        {"name": "Road trip"},
        like(resources.playlists, PLAYLIST),
    )
    entry = {"playlistId": 9, "trackId": 1}
    created(pact, "write: add a track to a playlist", "/playlistTracks", entry,
            like(resources.playlist_tracks, ENTRY))  # fmt: skip
    (
        pact.upon_receiving("write: remove a track from a playlist")
        .given("playlist entry 90001 exists")
        .with_request("DELETE", "/playlistTracks/90001")
        .will_respond_with(200)
    )


def payments(pact: Pact) -> None:
    body = {"invoiceId": 5, "amount": 3.96, "currency": "USD"}
    charge = like(resources.charges, CHARGE) | {"status": "PENDING", "failureReason": None}
    created(
        pact, "write: charge an invoice", "/charges", body, charge, **{"Idempotency-Key": "payInvoice:k1"}
    )
    (
        pact.upon_receiving("read: charges by id")
        .given("charge 1 exists")
        .with_request("GET", "/charges")
        .with_query_parameter("id", "1")
        .will_respond_with(200)
        .with_body(match.each_like(like(resources.charges, CHARGE), min=1), content_type="application/json")
    )


def settled(kind: str, status: str, reason: str | None) -> dict[str, Any]:
    """The body of a settled-charge webhook, matched by type."""
    data = like(resources.charges, CHARGE) | {"status": status, "failureReason": reason}
    data["settledAt"] = match.str("2026-11-02T10:00:01Z")
    return {"type": kind, "timestamp": match.str("2026-11-02T10:00:01Z"), "data": data}


def webhooks(pact: Pact) -> None:
    for kind, status, reason in (
        ("charge.succeeded", "SUCCEEDED", None),
        ("charge.failed", "FAILED", match.str("card_declined")),
    ):
        outcome = kind.removeprefix("charge.")
        (
            pact.upon_receiving(f"a {kind} webhook", "Async")
            .with_body(settled(kind, status, reason), content_type="application/json")
            .with_metadata({"webhook-id": match.regex(f"msg_1_{outcome}", regex=rf"^msg_\d+_{outcome}$")})
        )


INTERACTIONS: dict[str, Callable[[Pact], None]] = {
    "customers": customers,
    "catalog": catalog,
    "sales": sales,
    "playlists": playlists,
    "payments": payments,
    WEBHOOKS: webhooks,
}
