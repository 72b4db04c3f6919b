"""Playlists (playlists service; their tracks come from the catalog service)."""

from __future__ import annotations

import strawberry

from bff import PAGE_COST, Connection, connection, cost_hint, entity, prefetch
from bff.loaders import Record
from bff_chinook.resolvers import resources
from bff_chinook.resolvers.playlists import tracks_of_playlist
from bff_chinook.schema.catalog import Track
from bff_chinook.schema.common import Info, node, nodes


@entity(resources.playlists)
@strawberry.type
class Playlist:
    """A named list of tracks."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> Playlist:
        """Build from a ``playlists`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])

    @strawberry.field(
        description="The tracks on the playlist, in playlist order.", metadata=cost_hint(size=500)
    )
    async def tracks(self, info: Info) -> list[Track]:
        records = await tracks_of_playlist(info.context, self.id)
        return await prefetch(info, nodes(info, Track.from_record, records))


@strawberry.type
class Query:
    """Playlists service queries."""

    @strawberry.field(description="One playlist by id; null when there is none.")
    async def playlist(self, info: Info, id: strawberry.ID) -> Playlist | None:
        record = await resources.playlists.get(info.context, id)
        return node(info, Playlist.from_record, record)

    @strawberry.field(description="Playlists, a page at a time.", metadata=PAGE_COST)
    async def playlists(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Playlist]:
        return await connection(info, resources.playlists, Playlist.from_record, first=first, after=after)
