"""Searching: search3 (ID3 objects), search2 (folder objects) and the legacy search.

A query goes to Tonearm's search (typo-tolerant, ranked by relevance and popularity; see
docs/search.md), and only what the caller may see comes back. An empty query, including the
literal `""` some apps send, lists everything in a stable order, page by page: Symfonium and
others sync a whole library that way (`songCount=500&songOffset=0, 500, 1000, ...`). That path
reads by id, and remembers where each page ended, so the next page is a keyset read as fast at
offset 99,500 as at 0.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tonearm.domains.catalog.tables import albums, artists, tracks
from tonearm.domains.search.service import MAX_LIMIT, MAX_OFFSET
from tonearm.kernel.errors import TonearmError
from tonearm.subsonic import objects
from tonearm.subsonic.objects import visible_tracks
from tonearm.subsonic.protocol import Call, method

MAX_COUNT = 500
DEFAULT_COUNT = 20


def query_text(raw: str | None) -> str:
    """The search words: `""` (two double quotes, as some apps send "everything") is empty, and
    the Lucene-style trailing `*` of older apps is dropped (Tonearm's search matches prefixes)."""
    text = (raw or "").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text.rstrip("*").strip()


def _search_ids(call: Call, text: str, kind: str, count: int, offset: int) -> list[str]:
    return _search(call, text, kind, count, offset)[0]


def _search(call: Call, text: str, kind: str, count: int, offset: int) -> tuple[list[str], int]:
    """Ids of the best `count` matches of one kind from `offset`, and how many match. Tonearm's
    search pages by 50 up to its 1,000th result; past that there is nothing more to find."""
    ids: list[str] = []
    total = 0
    position = offset
    while len(ids) < count and position <= MAX_OFFSET:
        limit = min(MAX_LIMIT, count - len(ids))
        try:
            page = call.c.search.search(text, [kind], limit=limit, offset=position, viewer_id=call.user_id)
        except TonearmError as err:
            if err.status == 400:  # a query the parser cannot use finds nothing, not an error
                return [], 0
            raise
        found = page[f"{kind}s"]
        total = int(found["total"])
        got = [item["id"] for item in found["items"]]
        ids += got
        position += limit
        if not got or position >= total:
            break
    return ids, total


def _page_query(call: Call, query: sa.Select[Any], count: int, offset: int) -> sa.Select[Any]:
    return query.limit(count).offset(offset)


def _all_songs(call: Call, count: int, offset: int) -> list[dict[str, Any]]:
    """One page of every visible song in id order: a keyset read from where the page before
    ended (this process remembers it), so a page deep in a big library costs what the first does."""
    if count == 0:
        return []
    user_id = call.user_id
    cursors = objects.caches(call).cursors
    query = objects.song_select(user_id).order_by(tracks.c.id).limit(count)
    if offset:
        after = cursors.get((user_id, "song", offset)) or _fill_cursors(call, offset, count)
        if after is None:
            return []  # past the end
        query = query.where(tracks.c.id > after)
    songs = objects.songs_in_id_order(call, query)
    if len(songs) == count:
        cursors.put((user_id, "song", offset + count), songs[-1]["id"])
    return songs


def _fill_cursors(call: Call, offset: int, count: int) -> str | None:
    """For a page with no cursor (the first this process serves: after a restart, or when the
    sync's earlier pages went to another worker): one pass over the visible ids remembers where
    each page of this size starts from `offset` on; returns the id just before `offset`."""
    user_id = call.user_id
    with call.c.db.read() as conn:
        ids = (
            conn.execute(sa.select(tracks.c.id).where(visible_tracks(user_id)).order_by(tracks.c.id))
            .scalars()
            .all()
        )
    if offset > len(ids):
        return None
    cursors = objects.caches(call).cursors
    for position in range(offset + count, len(ids) + 1, count):
        cursors.put((user_id, "song", position), ids[position - 1])
    return str(ids[offset - 1])


def _counts(call: Call) -> dict[str, tuple[int, int]]:
    p = call.params
    return {
        kind: (p.int(f"{kind}Count", DEFAULT_COUNT, hi=MAX_COUNT), p.int(f"{kind}Offset", 0))
        for kind in ("artist", "album", "song")
    }


def _results(
    call: Call,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The artists, albums and songs of search2 / search3, each paged on its own."""
    text = query_text(call.params.opt("query"))
    counts = _counts(call)
    (artist_count, artist_offset), (album_count, album_offset), (song_count, song_offset) = (
        counts["artist"],
        counts["album"],
        counts["song"],
    )
    user_id = call.user_id
    found_artists: list[dict[str, Any]] = []
    found_albums: list[dict[str, Any]] = []
    found_songs: list[dict[str, Any]] = []
    if not text:
        if artist_count:
            query = objects.artist_select(user_id).order_by(artists.c.id)
            found_artists = objects.artists_from_query(
                call, _page_query(call, query, artist_count, artist_offset)
            )
        if album_count:
            query = objects.album_select(user_id).order_by(albums.c.id)
            found_albums = objects.albums_from_query(
                call, _page_query(call, query, album_count, album_offset)
            )
        if song_count:
            found_songs = _all_songs(call, song_count, song_offset)
        return found_artists, found_albums, found_songs
    if artist_count:
        found_artists = objects.artists_by_id(
            call, _search_ids(call, text, "artist", artist_count, artist_offset)
        )
    if album_count:
        found_albums = objects.albums_by_id(call, _search_ids(call, text, "album", album_count, album_offset))
    if song_count:
        found_songs = objects.songs(call, _search_ids(call, text, "track", song_count, song_offset))
    return found_artists, found_albums, found_songs


@method("search3")
def search3(call: Call) -> dict[str, Any]:
    artist_list, album_list, song_list = _results(call)
    return {"searchResult3": {"artist": artist_list, "album": album_list, "song": song_list}}


@method("search2")
def search2(call: Call) -> dict[str, Any]:
    return {"searchResult2": objects.folder_shapes(call, *_results(call))}


@method("search")
def search(call: Call) -> dict[str, Any]:
    """The pre-1.4 search: songs only, matching any of `any`, `artist`, `album`, `title`."""
    p = call.params
    count = p.int("count", DEFAULT_COUNT, hi=MAX_COUNT)
    offset = p.int("offset", 0)
    newer_than = p.opt_int("newerThan")
    words = " ".join(query_text(p.opt(name)) for name in ("any", "artist", "album", "title") if p.opt(name))
    text = query_text(words)
    if text:
        ids, total = _search(call, text, "track", count, offset) if count else ([], 0)
        matches = objects.songs(call, ids)
    else:
        matches = _all_songs(call, count, offset)
        with call.c.db.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(visible_tracks(call.user_id))).scalar() or 0
    if newer_than is not None:
        since = dt.datetime.fromtimestamp(newer_than / 1000, dt.UTC)
        matches = [
            m for m in matches if dt.datetime.fromisoformat(m["created"].replace("Z", "+00:00")) > since
        ]
    return {"searchResult": {"offset": offset, "totalHits": total, "match": matches}}
