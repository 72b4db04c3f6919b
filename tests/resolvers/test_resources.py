"""The Chinook resource declarations cover every record field the types read, with the right types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bff import Resource
from bff_chinook.demo.chinook import load_chinook
from bff_chinook.resolvers import resources
from bff_chinook.schema.catalog import Album, Artist, Genre, MediaType, Track
from bff_chinook.schema.customers import Customer, Employee
from bff_chinook.schema.payments import Payment
from bff_chinook.schema.playlists import Playlist
from bff_chinook.schema.sales import Invoice, InvoiceLine


class Reading(dict[str, Any]):
    """A record that notes every field read from it."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


CHARGE = {
    "id": 1,
    "invoiceId": 5,
    "amount": 3.96,
    "currency": "USD",
    "status": "PENDING",
    "failureReason": None,
    "createdAt": "2026-11-02T10:00:00Z",
}

BUILDERS: list[tuple[Resource, str, Callable[[dict[str, Any]], Any]]] = [
    (resources.customers, "customers", Customer.from_record),
    (resources.employees, "employees", Employee.from_record),
    (resources.artists, "artists", Artist.from_record),
    (resources.albums, "albums", Album.from_record),
    (resources.tracks, "tracks", Track.from_record),
    (resources.genres, "genres", Genre.from_record),
    (resources.media_types, "mediaTypes", MediaType.from_record),
    (resources.invoices, "invoices", Invoice.from_record),
    (resources.invoice_lines, "invoiceLines", InvoiceLine.from_record),
    (resources.playlists, "playlists", Playlist.from_record),
    (resources.charges, "charges", Payment.from_record),
]


@pytest.mark.parametrize(("resource", "name", "build"), BUILDERS, ids=[name for _, name, _ in BUILDERS])
def test_the_declaration_covers_what_the_type_reads(
    resource: Resource, name: str, build: Callable[[dict[str, Any]], Any]
) -> None:
    """Building the type reads only declared fields, so a drifted field cannot become a silent null."""
    record = Reading(CHARGE if name == "charges" else load_chinook()[name][0])
    build(record)
    assert record.read <= set(resource.contract.fields), record.read - set(resource.contract.fields)


@pytest.mark.parametrize(
    "name",
    [
        "customers",
        "employees",
        "artists",
        "albums",
        "tracks",
        "genres",
        "mediaTypes",
        "invoices",
        "invoiceLines",
        "playlists",
        "playlistTracks",
    ],
)
def test_the_shipped_data_holds_the_declarations(name: str) -> None:
    """Every record of the demo data holds its resource's declaration."""
    resource = next(r for r in vars(resources).values() if isinstance(r, Resource) and r.path == name)
    records = load_chinook()[name]
    assert resource.contract.check(records, service=resource.service, resource=name) is None
