"""The tracks on a playlist: its entries in the playlists service, the tracks from the catalog."""

from __future__ import annotations

from bff import Context
from bff.loaders import Record
from bff_chinook.resolvers.resources import playlist_tracks, tracks


async def tracks_of_playlist(ctx: Context, playlist_id: str) -> list[Record]:
    """The tracks on one playlist, in playlist order; entries whose track is gone are skipped."""
    entries = await playlist_tracks.where(ctx, "playlistId", playlist_id)
    found = await tracks.get_many(ctx, [str(entry["trackId"]) for entry in entries])
    return [record for record in found if record is not None]
