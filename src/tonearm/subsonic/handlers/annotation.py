"""Annotation: star, unstar and setRating.

Subsonic's star is Tonearm's library: a starred song is a liked track, a starred album a saved
album, a starred artist a followed artist (the web app and Spotify clients see the same). `id`
names any of the three (Subsonic's folders are albums and artists here); `albumId` and
`artistId` name one kind. Only what the listener may see can be starred or rated: another
listener's private upload, an album or artist known only from such uploads, and unknown ids all
answer 70, and nothing is written unless every id is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa

from tonearm.domains.catalog.tables import albums, track_artists, tracks
from tonearm.domains.library.service import MAX_IDS
from tonearm.kernel.ids import is_valid_id
from tonearm.subsonic.objects import visible_tracks
from tonearm.subsonic.protocol import Call, method, missing, not_found

Kind = Literal["track", "album", "artist"]


def kinds_of(
    call: Call, ids: Sequence[str], allowed: Sequence[Kind] = ("track", "album", "artist")
) -> dict[str, Kind]:
    """What each id names among `allowed`, for the ids the caller may see; the others are left out
    (ids are random, so one names at most one object)."""
    wanted = list(dict.fromkeys(i for i in ids if is_valid_id(i)))
    found: dict[str, Kind] = {}
    if not wanted:
        return found
    seen = visible_tracks(call.user_id)
    with call.c.db.read() as conn:
        if "track" in allowed:
            for i in conn.execute(sa.select(tracks.c.id).where(tracks.c.id.in_(wanted), seen)).scalars():
                found[i] = "track"
        rest = [i for i in wanted if i not in found]
        if rest and "album" in allowed:
            for i in conn.execute(
                sa.select(tracks.c.album_id).distinct().where(tracks.c.album_id.in_(rest), seen)
            ).scalars():
                found[i] = "album"
        rest = [i for i in wanted if i not in found]
        if rest and "artist" in allowed:
            # An artist is visible through a visible album of theirs or a visible track they are on.
            by_album = (
                sa.select(albums.c.artist_id)
                .join(tracks, tracks.c.album_id == albums.c.id)
                .where(albums.c.artist_id.in_(rest), seen)
            )
            by_track = (
                sa.select(track_artists.c.artist_id)
                .join(tracks, tracks.c.id == track_artists.c.track_id)
                .where(track_artists.c.artist_id.in_(rest), seen)
            )
            for i in conn.execute(sa.union(by_album, by_track)).scalars():
                found[i] = "artist"
    return found


def _star_targets(call: Call) -> dict[Kind, list[str]]:
    """The ids to star or rate, by kind, or 70 for the first one the caller cannot see."""
    params = call.params
    ids, album_ids, artist_ids = params.all("id"), params.all("albumId"), params.all("artistId")
    if not (ids or album_ids or artist_ids):
        raise missing("id, albumId or artistId")
    out: dict[Kind, list[str]] = {"track": [], "album": [], "artist": []}
    for given, allowed in (
        (ids, ("track", "album", "artist")),
        (album_ids, ("album",)),
        (artist_ids, ("artist",)),
    ):
        found = kinds_of(call, given, allowed)  # type: ignore[arg-type]
        for i in given:
            kind = found.get(i)
            if kind is None:
                raise not_found(f"{'/'.join(allowed)} {i[:40]}")
            if i not in out[kind]:
                out[kind].append(i)
    return out


def _batches(ids: list[str]) -> list[list[str]]:
    """LibraryService takes Spotify's 50 ids a call; an app may star a whole album list at once."""
    return [ids[i : i + MAX_IDS] for i in range(0, len(ids), MAX_IDS)]


@method("star")
def star(call: Call) -> None:
    targets = _star_targets(call)
    library, user_id = call.c.library, call.user_id
    for batch in _batches(targets["track"]):
        library.save(user_id, "track", batch)
    for batch in _batches(targets["album"]):
        library.save(user_id, "album", batch)
    for batch in _batches(targets["artist"]):
        library.follow(user_id, batch)


@method("unstar")
def unstar(call: Call) -> None:
    """Removing is allowed whatever the id names now (a starred track may have become private
    since): `id` is taken off every shelf it could be on; an id on none is no error."""
    params = call.params
    ids, album_ids, artist_ids = params.all("id"), params.all("albumId"), params.all("artistId")
    if not (ids or album_ids or artist_ids):
        raise missing("id, albumId or artistId")
    library, user_id = call.c.library, call.user_id
    track_ids = [i for i in dict.fromkeys(ids) if is_valid_id(i)]
    album_ids = [i for i in dict.fromkeys([*ids, *album_ids]) if is_valid_id(i)]
    artist_ids = [i for i in dict.fromkeys([*ids, *artist_ids]) if is_valid_id(i)]
    for batch in _batches(track_ids):
        library.remove(user_id, "track", batch)
    for batch in _batches(album_ids):
        library.remove(user_id, "album", batch)
    for batch in _batches(artist_ids):
        library.unfollow(user_id, batch)


@method("setRating")
def set_rating(call: Call) -> None:
    item_id = call.params.req("id")
    # Any integer is read, so that 6 is "between 1 and 5" (code 0), not a clamped 5.
    rating = call.params.int("rating", lo=-(2**31))
    kind = kinds_of(call, [item_id]).get(item_id)
    if kind is None:
        raise not_found(f"song, album or artist {item_id[:40]}")
    call.c.library.rate(call.user_id, kind, item_id, rating)
