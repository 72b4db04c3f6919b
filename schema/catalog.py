"""Artists, albums, tracks, genres and media types (catalog service)."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from bff import PAGE_COST, Connection, connection, cost_hint, entity, to_many, to_one
from bff.loaders import Record
from bff_chinook.resolvers import resources
from bff_chinook.schema.common import Info, money, node, nodes, ref


@entity(resources.genres)
@strawberry.type
class Genre:
    """A music genre."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> Genre:
        """Build from a ``genres`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])


@entity(resources.media_types)
@strawberry.type
class MediaType:
    """The file format a track is sold in."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> MediaType:
        """Build from a ``mediaTypes`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])


@entity(resources.artists)
@strawberry.type
class Artist:
    """A recording artist."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> Artist:
        """Build from an ``artists`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])

    albums: list[Album] = to_many(
        resources.albums,
        by="artistId",
        key=lambda artist: artist.id,
        build=lambda record: Album.from_record(record),
        description="The artist's albums.",
        size=5,
    )


@entity(resources.albums)
@strawberry.type
class Album:
    """An album of tracks by one artist."""

    id: strawberry.ID
    title: str
    artist_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, record: Record) -> Album:
        """Build from an ``albums`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])), title=record["title"], artist_id=ref(record["artistId"])
        )

    artist: Artist | None = to_one(
        resources.artists,
        key=lambda album: album.artist_id,
        build=Artist.from_record,
        description="The album's artist.",
    )
    tracks: list[Track] = to_many(
        resources.tracks,
        by="albumId",
        key=lambda album: album.id,
        build=lambda record: Track.from_record(record),
        description="The album's tracks.",
        size=15,
    )


@entity(resources.tracks)
@strawberry.type
class Track:
    """A track for sale."""

    id: strawberry.ID
    name: str
    composer: str | None
    milliseconds: int = strawberry.field(description="Duration in milliseconds.")
    bytes: int = strawberry.field(description="File size in bytes.")
    unit_price: Decimal = strawberry.field(description="Price of one copy.")
    album_id: strawberry.Private[str | None]
    genre_id: strawberry.Private[str | None]
    media_type_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, record: Record) -> Track:
        """Build from a ``tracks`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            name=record["name"],
            composer=record.get("composer"),
            milliseconds=record["milliseconds"],
            bytes=record["bytes"],
            unit_price=money(record["unitPrice"]),
            album_id=ref(record.get("albumId")),
            genre_id=ref(record.get("genreId")),
            media_type_id=ref(record.get("mediaTypeId")),
        )

    album: Album | None = to_one(
        resources.albums,
        key=lambda track: track.album_id,
        build=Album.from_record,
        description="The album the track is on.",
    )
    genre: Genre | None = to_one(
        resources.genres,
        key=lambda track: track.genre_id,
        build=Genre.from_record,
        description="The track's genre.",
    )
    media_type: MediaType | None = to_one(
        resources.media_types,
        key=lambda track: track.media_type_id,
        build=MediaType.from_record,
        description="The track's file format.",
    )


@strawberry.type
class Query:
    """Catalog service queries."""

    @strawberry.field(description="One artist by id; null when there is none.")
    async def artist(self, info: Info, id: strawberry.ID) -> Artist | None:
        record = await resources.artists.get(info.context, id)
        return node(info, Artist.from_record, record)

    @strawberry.field(
        description="Artists, a page at a time; `search` matches any text field.", metadata=PAGE_COST
    )
    async def artists(
        self, info: Info, first: int | None = None, after: str | None = None, search: str | None = None
    ) -> Connection[Artist]:
        filters = [("q", search)] if search else []
        return await connection(
            info, resources.artists, Artist.from_record, first=first, after=after, filters=filters
        )

    @strawberry.field(description="One album by id; null when there is none.")
    async def album(self, info: Info, id: strawberry.ID) -> Album | None:
        record = await resources.albums.get(info.context, id)
        return node(info, Album.from_record, record)

    @strawberry.field(description="One track by id; null when there is none.")
    async def track(self, info: Info, id: strawberry.ID) -> Track | None:
        record = await resources.tracks.get(info.context, id)
        return node(info, Track.from_record, record)

    @strawberry.field(
        description="Tracks, a page at a time; optionally of one genre and matching `search`.",
        metadata=PAGE_COST,
    )
    async def tracks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        genre_id: strawberry.ID | None = None,
        search: str | None = None,
    ) -> Connection[Track]:
        filters: list[tuple[str, str]] = []
        if genre_id is not None:
            filters.append(("genreId", str(genre_id)))
        if search:
            filters.append(("q", search))
        return await connection(
            info, resources.tracks, Track.from_record, first=first, after=after, filters=filters
        )

    @strawberry.field(description="Every genre.", metadata=cost_hint(size=resources.genres.list_size))
    async def genres(self, info: Info) -> list[Genre]:
        return nodes(info, Genre.from_record, await resources.genres.all(info.context))
