"""The playlists service: playlists and the tracks on them (tracks themselves live in catalog)."""

from __future__ import annotations

from bff.context import Context
from bff.loaders import Record
from resolvers import catalog
from resolvers.pages import Page, fetch_page


async def playlist(ctx: Context, playlist_id: str | None) -> Record | None:
    """One playlist by id."""
    if playlist_id is None:
        return None
    return await ctx.loaders.by_id(ctx.services.playlists, "playlists").load(playlist_id)


async def playlists_page(ctx: Context, *, offset: int, limit: int) -> Page:
    """A page of playlists."""
    return await fetch_page(ctx, ctx.services.playlists, "playlists", offset=offset, limit=limit)


async def tracks_of_playlist(ctx: Context, playlist_id: str) -> list[Record]:
    """The tracks on one playlist, in playlist order; entries whose track is gone are skipped."""
    entries = await ctx.loaders.by_field(ctx.services.playlists, "playlistTracks", "playlistId").load(
        playlist_id
    )
    found = await catalog.tracks(ctx, [str(entry["trackId"]) for entry in entries])
    return [record for record in found if record is not None]
