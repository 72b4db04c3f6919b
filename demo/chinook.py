"""The Chinook data set shipped with the demo, and which service owns which resource.

``SERVICES`` is the table in ``DESIGN.md``: the demo runs one REST service per key, serving the listed
resources. ``DEMO_PORTS`` are the ports ``bff demo`` uses and the BFF's default service URLs point at.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from typing import Any

Record = dict[str, Any]

SERVICES: dict[str, tuple[str, ...]] = {
    "customers": ("customers", "employees"),
    "catalog": ("artists", "albums", "tracks", "genres", "mediaTypes"),
    "sales": ("invoices", "invoiceLines"),
    "playlists": ("playlists", "playlistTracks"),
}

DEMO_PORTS: dict[str, int] = {"customers": 8001, "catalog": 8002, "sales": 8003, "playlists": 8004}


def load_chinook() -> dict[str, list[Record]]:
    """Return a fresh copy of every Chinook resource: resource name -> records sorted by ``id``."""
    raw = resources.files("bff_chinook.demo").joinpath("data/chinook.json.gz").read_bytes()
    data: dict[str, list[Record]] = json.loads(gzip.decompress(raw))
    return data


def service_data(service: str, data: dict[str, list[Record]] | None = None) -> dict[str, list[Record]]:
    """Return the resources one service owns (from ``data``, or a fresh load)."""
    source = load_chinook() if data is None else data
    return {resource: source[resource] for resource in SERVICES[service]}
