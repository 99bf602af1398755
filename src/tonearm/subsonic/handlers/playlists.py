"""Playlists: getPlaylists, getPlaylist, createPlaylist, updatePlaylist, deletePlaylist.

Reads come from the playlist tables (this package is a read model); every change goes through
PlaylistService, so its rules hold here too: a private playlist exists only for its owner and
collaborators (anyone else gets 70, as for an unknown id, so ids cannot be probed); the owner
changes everything, collaborators change the tracks, anyone else who can see it gets 50.

- `getPlaylists` lists the caller's own playlists and those they collaborate on (Tonearm's "your
  playlists"; other listeners' public playlists are found by search, not listed here). An admin
  may ask for another user's: their public playlists only (admins do not read private data).
- Playlists the recommender writes (Discover Weekly, Daily Mix: `generator` set) are remade on
  schedule: they cannot be edited or deleted (50).
- `owner` is the owner's username (their e-mail address) when the caller is the owner, which is
  how apps decide a playlist is theirs to edit; for anyone else it is the owner's display name,
  so a public playlist never shows its owner's e-mail address.
- Entries are the tracks the caller may see, in playlist order; a track made private by its
  uploader is left out (and `songIndexToRemove` counts positions in that same list).
- Subsonic's new playlists are private (its default); `public=true` makes one public.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.library.tables import playlist_collaborators, playlist_entries, playlists
from tonearm.kernel.ids import is_valid_id
from tonearm.subsonic import objects
from tonearm.subsonic.protocol import (
    GENERIC,
    NOT_AUTHORIZED,
    Call,
    SubsonicError,
    iso,
    method,
    missing,
    not_found,
)

P, E, C = playlists, playlist_entries, playlist_collaborators
MAX_NEW_SONGS = 10_000  # a playlist holds at most this many (PlaylistService.MAX_TRACKS)
MAX_REMOVALS = 100  # distinct tracks PlaylistService.remove takes in one call


def _readable(user_id: str) -> sa.ColumnElement[bool]:
    return sa.or_(
        P.c.public.is_(True),
        P.c.owner_id == user_id,
        sa.exists().where(C.c.playlist_id == P.c.id, C.c.user_id == user_id),
    )


def _rows(call: Call, cond: sa.ColumnElement[bool]) -> Sequence[Any]:
    """Playlists matching `cond` with their owner and, counted over the tracks the caller may see,
    their length and duration; the newest first."""
    stats = (
        sa.select(
            E.c.playlist_id,
            sa.func.count().label("song_count"),
            sa.func.sum(tracks.c.duration_ms).label("duration_ms"),
        )
        .join(tracks, tracks.c.id == E.c.track_id)
        .where(objects.visible_tracks(call.user_id))
        .group_by(E.c.playlist_id)
        .subquery("playlist_stats")
    )
    with call.c.db.read() as conn:
        return conn.execute(
            sa.select(
                P.c.id,
                P.c.name,
                P.c.description,
                P.c.public,
                P.c.owner_id,
                P.c.generator,
                P.c.image_id,
                P.c.created_at,
                P.c.updated_at,
                users.c.email.label("owner_email"),
                users.c.display_name.label("owner_name"),
                stats.c.song_count,
                stats.c.duration_ms,
                sa.exists()
                .where(C.c.playlist_id == P.c.id, C.c.user_id == call.user_id)
                .label("collaborates"),
            )
            .select_from(
                P.join(users, users.c.id == P.c.owner_id).outerjoin(stats, stats.c.playlist_id == P.c.id)
            )
            .where(cond)
            .order_by(P.c.created_at.desc(), P.c.id)
        ).all()


def playlist_json(call: Call, r: sa.Row[Any]) -> dict[str, Any]:
    mine = r.owner_id == call.user_id
    out: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "comment": r.description,
        "owner": call.caller.username if mine and call.caller else r.owner_name,
        "public": bool(r.public),
        "songCount": int(r.song_count or 0),
        "duration": round((r.duration_ms or 0) / 1000),
        "created": iso(r.created_at),
        "changed": iso(r.updated_at),
        "coverArt": r.image_id,
    }
    if call.os:
        out["readonly"] = r.generator is not None or not (mine or r.collaborates)
    return {k: v for k, v in out.items() if v is not None}


def _entries(call: Call, playlist_id: str) -> list[str]:
    """Every track id of the playlist in order (the caller's view drops what they cannot see)."""
    with call.c.db.read() as conn:
        return list(
            conn.execute(
                sa.select(E.c.track_id).where(E.c.playlist_id == playlist_id).order_by(E.c.position_key)
            ).scalars()
        )


def _one(call: Call, playlist_id: str) -> Any:
    """The playlist if the caller may read it; 70 otherwise (unknown and private look the same)."""
    if not is_valid_id(playlist_id):
        raise not_found("Playlist")
    found = _rows(call, sa.and_(P.c.id == playlist_id, _readable(call.user_id)))
    if not found:
        raise not_found("Playlist")
    return found[0]


def _with_songs(call: Call, playlist_id: str) -> dict[str, Any]:
    row = _one(call, playlist_id)
    out = playlist_json(call, row)
    out["entry"] = objects.songs(call, _entries(call, playlist_id))
    return {"playlist": out}


def _not_generated(row: sa.Row[Any]) -> None:
    if row.generator is not None:
        raise SubsonicError(
            NOT_AUTHORIZED,
            f"{row.name} is made by Tonearm's recommendations and remade on schedule: it cannot be "
            "changed; copy its songs into a playlist of your own instead",
        )


def check_songs(call: Call, ids: Sequence[str]) -> None:
    """70 for the first song id the caller cannot see (checked before anything is written): one
    indexed query per 500 ids, without building the songs."""
    unique = list(dict.fromkeys(ids))
    bad = next((i for i in unique if not is_valid_id(i)), None)
    if bad is None and unique:
        with call.c.db.read() as conn:
            found: set[str] = set()
            for n in range(0, len(unique), 500):
                chunk = unique[n : n + 500]
                found.update(
                    conn.execute(
                        sa.select(tracks.c.id).where(
                            tracks.c.id.in_(chunk), objects.visible_tracks(call.user_id)
                        )
                    ).scalars()
                )
        bad = next((i for i in unique if i not in found), None)
    if bad is not None:
        raise not_found(f"Song {bad[:40]}")


@method("getPlaylists")
def get_playlists(call: Call) -> dict[str, Any]:
    assert call.caller is not None
    username = call.params.opt("username")
    if username and username.strip().lower() != call.caller.username.lower():
        call.require_admin()
        with call.c.db.read() as conn:
            owner = conn.execute(
                sa.select(users.c.id).where(users.c.email == username.strip().lower())
            ).scalar()
        if owner is None:
            raise not_found("User")
        cond = sa.and_(P.c.owner_id == owner, P.c.public.is_(True))
    else:
        cond = sa.or_(
            P.c.owner_id == call.user_id,
            P.c.id.in_(sa.select(C.c.playlist_id).where(C.c.user_id == call.user_id)),
        )
    return {"playlists": {"playlist": [playlist_json(call, r) for r in _rows(call, cond)]}}


@method("getPlaylist")
def get_playlist(call: Call) -> dict[str, Any]:
    return _with_songs(call, call.params.req("id"))


@method("createPlaylist")
def create_playlist(call: Call) -> dict[str, Any]:
    """With `name`: a new private playlist of these songs. With `playlistId`: its songs replaced
    (and its name changed, if `name` is given too)."""
    params = call.params
    playlist_id, name = params.opt("playlistId"), params.opt("name")
    song_ids = params.all("songId")
    if len(song_ids) > MAX_NEW_SONGS:
        raise SubsonicError(GENERIC, f"songId: a playlist holds at most {MAX_NEW_SONGS} songs")
    service = call.c.playlists
    if playlist_id:
        row = _one(call, playlist_id)
        _not_generated(row)
        check_songs(call, song_ids)
        if name:
            service.change_details(call.user_id, playlist_id, name=name)
        service.replace(call.user_id, playlist_id, song_ids)
        return _with_songs(call, playlist_id)
    if not name:
        raise missing("name (or playlistId)")
    check_songs(call, song_ids)
    created = service.create(call.user_id, name=name, public=False)
    if song_ids:
        service.add(call.user_id, created["id"], song_ids)
    return _with_songs(call, created["id"])


@method("updatePlaylist")
def update_playlist(call: Call) -> None:
    """Details (owner only), then removals (`songIndexToRemove`: positions in the list as the
    caller saw it before this call), then additions at the end."""
    params = call.params
    playlist_id = params.req("playlistId")
    row = _one(call, playlist_id)
    _not_generated(row)
    user_id, service = call.user_id, call.c.playlists
    if row.owner_id != user_id and not row.collaborates:
        raise SubsonicError(NOT_AUTHORIZED, "Only the playlist's owner and its collaborators can change it")
    name, comment = params.opt("name"), params.opt("comment")
    public = params.bool("public", False) if params.opt("public") else None
    to_add = params.all("songIdToAdd")
    raw_indexes = params.all("songIndexToRemove")
    indexes: list[int] = []
    for raw in raw_indexes:
        try:
            indexes.append(int(raw))
        except ValueError:
            raise SubsonicError(GENERIC, f"songIndexToRemove must be an integer, not {raw[:20]!r}") from None
    check_songs(call, to_add)
    if len(to_add) > MAX_NEW_SONGS:
        raise SubsonicError(GENERIC, f"songIdToAdd: a playlist holds at most {MAX_NEW_SONGS} songs")
    if name is not None or comment is not None or public is not None:
        service.change_details(user_id, playlist_id, name=name or None, description=comment, public=public)
    if indexes:
        for batch in _removals(call, playlist_id, indexes):
            service.remove(user_id, playlist_id, batch)
    if to_add:
        service.add(user_id, playlist_id, to_add)


def _removals(call: Call, playlist_id: str, indexes: list[int]) -> list[list[tuple[str, list[int]]]]:
    """Batches of (track id, stored positions) for indexes into the caller's view of the playlist,
    which leaves out the tracks they cannot see. The service takes at most MAX_REMOVALS tracks a
    call: batches go from the end of the playlist back, so one never moves the next one's
    positions. It checks each position still holds its track, so an edit that came in between
    fails (code 0) instead of removing the wrong song."""
    stored = _entries(call, playlist_id)
    visible: set[str] = set()
    unique = list(dict.fromkeys(stored))
    with call.c.db.read() as conn:
        for n in range(0, len(unique), 500):
            visible.update(
                conn.execute(
                    sa.select(tracks.c.id).where(
                        tracks.c.id.in_(unique[n : n + 500]), objects.visible_tracks(call.user_id)
                    )
                ).scalars()
            )
    view = [pos for pos, track_id in enumerate(stored) if track_id in visible]
    for index in indexes:
        if not 0 <= index < len(view):
            raise SubsonicError(
                GENERIC,
                f"songIndexToRemove: {index} is not a position in the playlist (it has {len(view)} songs, "
                f"0 to {len(view) - 1})",
            )
    batches: list[list[tuple[str, list[int]]]] = []
    batch: dict[str, list[int]] = {}
    for pos in sorted({view[i] for i in indexes}, reverse=True):
        track_id = stored[pos]
        if track_id not in batch and len(batch) == MAX_REMOVALS:
            batches.append(list(batch.items()))
            batch = {}
        batch.setdefault(track_id, []).append(pos)
    if batch:
        batches.append(list(batch.items()))
    return batches


@method("deletePlaylist")
def delete_playlist(call: Call) -> None:
    row = _one(call, call.params.req("id"))
    if row.owner_id != call.user_id:
        raise SubsonicError(NOT_AUTHORIZED, "Only the playlist's owner can delete it")
    _not_generated(row)
    call.c.playlists.unfollow(call.user_id, row.id)
