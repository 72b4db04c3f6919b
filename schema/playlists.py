"""Playlists (playlists service; their tracks come from the catalog service)."""

from __future__ import annotations

import strawberry

from bff.loaders import Record
from resolvers import playlists as playlists_service
from schema import relay
from schema.catalog import Track
from schema.common import Info, node, nodes
from schema.relations import prefetch


@strawberry.type
class Playlist:
    """A named list of tracks."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> Playlist:
        """Build from a ``playlists`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])

    @strawberry.field(description="The tracks on the playlist, in playlist order.")
    async def tracks(self, info: Info) -> list[Track]:
        records = await playlists_service.tracks_of_playlist(info.context, self.id)
        return await prefetch(info, nodes(info, Track.from_record, records))


@strawberry.type
class Query:
    """Playlists service queries."""

    @strawberry.field(description="One playlist by id; null when there is none.")
    async def playlist(self, info: Info, id: strawberry.ID) -> Playlist | None:
        record = await playlists_service.playlist(info.context, id)
        return node(info, Playlist.from_record, record)

    @strawberry.field(description="Playlists, a page at a time.")
    async def playlists(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Playlist]:
        offset, limit = relay.page_window(first, after)
        page = await playlists_service.playlists_page(info.context, offset=offset, limit=limit)
        return relay.Connection[Playlist].from_page(page, Playlist.from_record)
