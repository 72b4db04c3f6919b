"""Playlist mutations: create a playlist, add a track to one, remove a track from one.

Each success publishes ``playlist.updated`` (``change``: ``CREATED``, ``TRACK_ADDED`` or
``TRACK_REMOVED``) and invalidates the cached playlist and its track list.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bff.context import Context
from bff.graph.writes import MutationResult, UserErrorRecord, as_ref, check_id, publish
from bff.loaders import Record
from bff_chinook.resolvers.errors import UserErrorCode
from bff_chinook.resolvers.resources import playlist_tracks, playlists, tracks
from bff_chinook.resolvers.topics import PLAYLIST_UPDATED

__all__ = ["MAX_NAME_LENGTH", "add_track", "create_playlist", "remove_track"]

MAX_NAME_LENGTH: Final = 120
"""Longest playlist name, in characters."""


async def create_playlist(ctx: Context, *, name: str) -> MutationResult:
    """Create a playlist called ``name`` (trimmed; 1-120 characters)."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return MutationResult(
            user_errors=[
                UserErrorRecord(
                    ("input", "name"),
                    f"a playlist name has 1 to {MAX_NAME_LENGTH} characters",
                    UserErrorCode.INVALID_NAME,
                )
            ]
        )
    record: Record = (await playlists.request(ctx, "POST", json_body={"name": name})).body
    playlists.prime(ctx, [record])
    await playlists.invalidate(ctx)
    await publish(
        ctx, PLAYLIST_UPDATED, {"playlistId": str(record["id"]), "change": "CREATED", "trackId": None}
    )
    return MutationResult(record=record)


async def _check(
    ctx: Context, playlist_id: str, track_id: str
) -> tuple[Record | None, list[UserErrorRecord]]:
    """The playlist, or the user errors of a bad or unknown playlist or track."""
    errors = [
        error
        for error in (check_id(playlist_id, "input", "playlistId"), check_id(track_id, "input", "trackId"))
        if error is not None
    ]
    if errors:
        return None, errors
    playlist, track = await asyncio.gather(playlists.get(ctx, playlist_id), tracks.get(ctx, track_id))
    if playlist is None:
        errors.append(
            UserErrorRecord(
                ("input", "playlistId"), f"no playlist {playlist_id}", UserErrorCode.PLAYLIST_NOT_FOUND
            )
        )
    if track is None:
        errors.append(
            UserErrorRecord(("input", "trackId"), f"no track {track_id}", UserErrorCode.TRACK_NOT_FOUND)
        )
    return playlist, errors


async def _entries(ctx: Context, playlist_id: str, track_id: str) -> list[Record]:
    """The ``playlistTracks`` entries putting the track on the playlist, read fresh (not cached)."""
    response = await playlist_tracks.client(ctx).get(
        "/playlistTracks",
        call=ctx.call,
        params=[("playlistId", playlist_id), ("trackId", track_id)],
        cache=False,
    )
    body = response.body if isinstance(response.body, list) else []
    # Repeated different filters AND together in json-server; check both anyway.
    return [e for e in body if str(e.get("playlistId")) == playlist_id and str(e.get("trackId")) == track_id]


async def _changed(ctx: Context, playlist_id: str, change: str, track_id: str) -> None:
    await playlist_tracks.invalidate(ctx, fields={"playlistId": playlist_id})
    await publish(ctx, PLAYLIST_UPDATED, {"playlistId": playlist_id, "change": change, "trackId": track_id})


async def add_track(ctx: Context, *, playlist_id: str, track_id: str) -> MutationResult:
    """Put a track at the end of a playlist; ``TRACK_ALREADY_ON_PLAYLIST`` when it is there."""
    playlist, errors = await _check(ctx, playlist_id, track_id)
    if errors or playlist is None:
        return MutationResult(user_errors=errors)
    if await _entries(ctx, playlist_id, track_id):
        return MutationResult(
            user_errors=[
                UserErrorRecord(
                    ("input", "trackId"),
                    f"track {track_id} is on playlist {playlist_id} already",
                    UserErrorCode.TRACK_ALREADY_ON_PLAYLIST,
                )
            ]
        )
    entry = {"playlistId": as_ref(playlist_id), "trackId": as_ref(track_id)}
    await playlist_tracks.request(ctx, "POST", json_body=entry)
    await _changed(ctx, playlist_id, "TRACK_ADDED", track_id)
    return MutationResult(record=playlist)


async def remove_track(ctx: Context, *, playlist_id: str, track_id: str) -> MutationResult:
    """Take a track off a playlist; ``TRACK_NOT_ON_PLAYLIST`` when it is not there."""
    playlist, errors = await _check(ctx, playlist_id, track_id)
    if errors or playlist is None:
        return MutationResult(user_errors=errors)
    entries = await _entries(ctx, playlist_id, track_id)
    if not entries:
        return MutationResult(
            user_errors=[
                UserErrorRecord(
                    ("input", "trackId"),
                    f"track {track_id} is not on playlist {playlist_id}",
                    UserErrorCode.TRACK_NOT_ON_PLAYLIST,
                )
            ]
        )
    for entry in entries:
        await playlist_tracks.request(ctx, "DELETE", str(entry["id"]))
    await _changed(ctx, playlist_id, "TRACK_REMOVED", track_id)
    return MutationResult(record=playlist)
