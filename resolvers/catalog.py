"""The catalog service: artists, albums, tracks, genres and media types."""

from __future__ import annotations

from asyncio import Future

from bff.context import Context
from bff.loaders import Record, load_one
from resolvers.pages import Page, fetch_page


def _by_id(ctx: Context, resource: str, record_id: str | None) -> Future[Record | None]:
    return load_one(ctx.loaders.by_id(ctx.services.catalog, resource), record_id)


def artist(ctx: Context, artist_id: str | None) -> Future[Record | None]:
    """One artist by id (the operation's loader future: done once its batch is)."""
    return _by_id(ctx, "artists", artist_id)


def album(ctx: Context, album_id: str | None) -> Future[Record | None]:
    """One album by id."""
    return _by_id(ctx, "albums", album_id)


def track(ctx: Context, track_id: str | None) -> Future[Record | None]:
    """One track by id."""
    return _by_id(ctx, "tracks", track_id)


async def tracks(ctx: Context, track_ids: list[str]) -> list[Record | None]:
    """Several tracks by id, in the order asked; a missing one is ``None``."""
    return await ctx.loaders.by_id(ctx.services.catalog, "tracks").load_many(track_ids)


def genre(ctx: Context, genre_id: str | None) -> Future[Record | None]:
    """One genre by id."""
    return _by_id(ctx, "genres", genre_id)


def media_type(ctx: Context, media_type_id: str | None) -> Future[Record | None]:
    """One media type by id."""
    return _by_id(ctx, "mediaTypes", media_type_id)


def albums_of_artist(ctx: Context, artist_id: str) -> Future[list[Record]]:
    """The albums of one artist."""
    return ctx.loaders.by_field(ctx.services.catalog, "albums", "artistId").load(artist_id)


def tracks_of_album(ctx: Context, album_id: str) -> Future[list[Record]]:
    """The tracks of one album."""
    return ctx.loaders.by_field(ctx.services.catalog, "tracks", "albumId").load(album_id)


async def genres(ctx: Context) -> list[Record]:
    """Every genre (a small, fixed list)."""
    response = await ctx.services.catalog.get("/genres", call=ctx.call)
    records: list[Record] = response.body if isinstance(response.body, list) else []
    ctx.loaders.prime(ctx.services.catalog, "genres", records)
    return records


async def artists_page(ctx: Context, *, offset: int, limit: int, search: str | None) -> Page:
    """A page of artists, optionally matching a full-text ``search``."""
    filters = [("q", search)] if search else []
    return await fetch_page(ctx, ctx.services.catalog, "artists", offset=offset, limit=limit, filters=filters)


async def tracks_page(
    ctx: Context, *, offset: int, limit: int, genre_id: str | None, search: str | None
) -> Page:
    """A page of tracks, optionally of one genre and matching a full-text ``search``."""
    filters: list[tuple[str, str]] = []
    if genre_id is not None:
        filters.append(("genreId", genre_id))
    if search:
        filters.append(("q", search))
    return await fetch_page(ctx, ctx.services.catalog, "tracks", offset=offset, limit=limit, filters=filters)
