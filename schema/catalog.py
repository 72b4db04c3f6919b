"""Artists, albums, tracks, genres and media types (catalog service)."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from bff.loaders import Record
from resolvers import catalog as catalog_service
from schema import relay
from schema.common import Info, money, node, nodes, ref
from schema.relations import prefetch, to_many, to_one


@strawberry.type
class Genre:
    """A music genre."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> Genre:
        """Build from a ``genres`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])


@strawberry.type
class MediaType:
    """The file format a track is sold in."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> MediaType:
        """Build from a ``mediaTypes`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])


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
        key=lambda artist: artist.id,
        load=catalog_service.albums_of_artist,
        build=lambda record: Album.from_record(record),
        description="The artist's albums.",
    )


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
        key=lambda album: album.artist_id,
        load=catalog_service.artist,
        build=Artist.from_record,
        description="The album's artist.",
    )
    tracks: list[Track] = to_many(
        key=lambda album: album.id,
        load=catalog_service.tracks_of_album,
        build=lambda record: Track.from_record(record),
        description="The album's tracks.",
    )


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
        key=lambda track: track.album_id,
        load=catalog_service.album,
        build=Album.from_record,
        description="The album the track is on.",
    )
    genre: Genre | None = to_one(
        key=lambda track: track.genre_id,
        load=catalog_service.genre,
        build=Genre.from_record,
        description="The track's genre.",
    )
    media_type: MediaType | None = to_one(
        key=lambda track: track.media_type_id,
        load=catalog_service.media_type,
        build=MediaType.from_record,
        description="The track's file format.",
    )


@strawberry.type
class Query:
    """Catalog service queries."""

    @strawberry.field(description="One artist by id; null when there is none.")
    async def artist(self, info: Info, id: strawberry.ID) -> Artist | None:
        record = await catalog_service.artist(info.context, id)
        return node(info, Artist.from_record, record)

    @strawberry.field(description="Artists, a page at a time; `search` matches any text field.")
    async def artists(
        self, info: Info, first: int | None = None, after: str | None = None, search: str | None = None
    ) -> relay.Connection[Artist]:
        offset, limit = relay.page_window(first, after)
        page = await catalog_service.artists_page(info.context, offset=offset, limit=limit, search=search)
        return relay.Connection[Artist].from_page(page, Artist.from_record)

    @strawberry.field(description="One album by id; null when there is none.")
    async def album(self, info: Info, id: strawberry.ID) -> Album | None:
        record = await catalog_service.album(info.context, id)
        return node(info, Album.from_record, record)

    @strawberry.field(description="One track by id; null when there is none.")
    async def track(self, info: Info, id: strawberry.ID) -> Track | None:
        record = await catalog_service.track(info.context, id)
        return node(info, Track.from_record, record)

    @strawberry.field(description="Tracks, a page at a time; optionally of one genre and matching `search`.")
    async def tracks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        genre_id: strawberry.ID | None = None,
        search: str | None = None,
    ) -> relay.Connection[Track]:
        offset, limit = relay.page_window(first, after)
        page = await catalog_service.tracks_page(
            info.context, offset=offset, limit=limit, genre_id=genre_id, search=search
        )
        connection = relay.Connection[Track].from_page(page, Track.from_record)
        await prefetch(info, [edge.node for edge in connection.edges], under=("edges", "node"))
        return connection

    @strawberry.field(description="Every genre.")
    async def genres(self, info: Info) -> list[Genre]:
        return nodes(info, Genre.from_record, await catalog_service.genres(info.context))
