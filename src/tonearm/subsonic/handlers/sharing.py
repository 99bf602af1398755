"""Shares (getShares, createShare, updateShare, deleteShare) over Tonearm's short share links.

A Tonearm share link names one object, and only something public can be shared (it is checked
again on every visit). So:

- `createShare` takes one `id`: a song, an album or a playlist. Several ids are refused (code 0)
  rather than sharing only the first: put the songs in a playlist and share that. The caller's
  own private upload answers 50 ("make it public to share it"); another listener's, 70.
- `description` is kept with the link (the sharer's own note; public pages show the object's own
  name). `expires` (ms since 1970) becomes the link's expiry, between a minute and a year away;
  updateShare changes the note and the expiry in place (0 removes it), so the URL people were
  sent keeps working.
- A share's entries are the songs it leads to that anyone may see; shares of an artist or a
  profile (made in the web app) have none.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tonearm.domains.catalog.tables import tracks
from tonearm.domains.library.tables import playlist_collaborators, playlist_entries, playlists
from tonearm.kernel.ids import is_valid_id
from tonearm.subsonic import objects
from tonearm.subsonic.handlers.annotation import kinds_of
from tonearm.subsonic.protocol import GENERIC, Call, SubsonicError, method, missing, not_found

PAGE = 50  # SharingService.shares pages by 50
MAX_SHARES = 10_000  # listed at most (links are limited to 100 an hour per listener)


def _entries(call: Call, kind: str, object_id: str) -> list[dict[str, Any]]:
    if kind == "track":
        return objects.songs(call, [object_id])
    if kind == "album":
        query = (
            objects.song_select(call.user_id)
            .where(tracks.c.album_id == object_id)
            .order_by(tracks.c.disc_number, tracks.c.track_number, tracks.c.title, tracks.c.id)
        )
        return objects.songs_from_query(call, query)
    if kind == "playlist":
        with call.c.db.read() as conn:
            ids = list(
                conn.execute(
                    sa.select(playlist_entries.c.track_id)
                    .where(playlist_entries.c.playlist_id == object_id)
                    .order_by(playlist_entries.c.position_key)
                ).scalars()
            )
        return objects.songs(call, ids)
    return []


def share_json(call: Call, link: dict[str, Any]) -> dict[str, Any]:
    assert call.caller is not None
    out: dict[str, Any] = {
        "id": link["code"],
        "url": link["url"],
        "username": call.caller.username,
        "created": link["created_at"],
        "expires": link["expires_at"],
        "lastVisited": link["last_clicked_at"],
        "visitCount": link["clicks"],
        "description": link.get("description"),
        "entry": _entries(call, link["type"], link["id"]),
    }
    return {k: v for k, v in out.items() if v is not None}


@method("getShares")
def get_shares(call: Call) -> dict[str, Any]:
    links: list[dict[str, Any]] = []
    while len(links) < MAX_SHARES:
        page = call.c.sharing.shares(call.user_id, limit=PAGE, offset=len(links))
        links += page["items"]
        if page["next"] is None or not page["items"]:
            break
    return {"shares": {"share": [share_json(call, link) for link in links]}}


def _playlist_readable(call: Call, playlist_id: str) -> bool:
    user_id = call.user_id
    with call.c.db.read() as conn:
        found = conn.execute(
            sa.select(playlists.c.id).where(
                playlists.c.id == playlist_id,
                sa.or_(
                    playlists.c.public.is_(True),
                    playlists.c.owner_id == user_id,
                    sa.exists().where(
                        playlist_collaborators.c.playlist_id == playlists.c.id,
                        playlist_collaborators.c.user_id == user_id,
                    ),
                ),
            )
        ).first()
    return found is not None


@method("createShare")
def create_share(call: Call) -> dict[str, Any]:
    ids = list(dict.fromkeys(call.params.all("id")))
    if not ids:
        raise missing("id")
    if len(ids) > 1:
        raise SubsonicError(
            GENERIC,
            "A Tonearm share link leads to one song, album or playlist: share one id at a time "
            "(to share several songs, put them in a playlist and share the playlist)",
        )
    object_id = ids[0]
    kind: str | None = kinds_of(call, [object_id], ("track", "album")).get(object_id)
    if kind is None and is_valid_id(object_id) and _playlist_readable(call, object_id):
        kind = "playlist"
    if kind is None:
        raise not_found("Song, album or playlist")
    link = call.c.sharing.create_share(
        call.user_id, f"tonearm:{kind}:{object_id}", _expires_in(call), call.params.opt("description")
    )
    return {"shares": {"share": [share_json(call, link)]}}


def _expires_in(call: Call) -> int | None:
    """`expires` (ms since 1970) as seconds from now; None for absent or 0 (never)."""
    expires = call.params.opt_int("expires", lo=0)
    if not expires:
        return None
    now_ms = int(call.c.clock.now().timestamp() * 1000)
    return max(0, round((expires - now_ms) / 1000))


@method("updateShare")
def update_share(call: Call) -> None:
    code = call.params.req("id")
    never = call.params.opt("expires") == "0"
    call.c.sharing.update_share(
        call.user_id,
        code,
        description=call.params.opt("description"),
        expires_in=None if never else _expires_in(call),
        never_expires=never,
    )


@method("deleteShare")
def delete_share(call: Call) -> None:
    call.c.sharing.delete_share(call.user_id, call.params.req("id"))
