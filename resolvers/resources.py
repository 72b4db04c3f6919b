"""The Chinook resources: one declaration per downstream resource (DESIGN.md's service table).

Loaders, relationship fields, connections and cache invalidation all follow from these
(:class:`bff.Resource`). ``list_size`` is a whole list's expected length, for the cost limit.
"""

from __future__ import annotations

from bff import Resource

customers = Resource("customers", "customers")
employees = Resource("customers", "employees")

artists = Resource("catalog", "artists")
albums = Resource("catalog", "albums")
tracks = Resource("catalog", "tracks")
genres = Resource("catalog", "genres", list_size=25)
media_types = Resource("catalog", "mediaTypes")

invoices = Resource("sales", "invoices")
invoice_lines = Resource("sales", "invoiceLines")

playlists = Resource("playlists", "playlists")
playlist_tracks = Resource("playlists", "playlistTracks")

charges = Resource("payments", "charges")
