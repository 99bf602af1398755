"""The saved play queue (getPlayQueue, savePlayQueue and the `indexBasedQueue` extension's
getPlayQueueByIndex, savePlayQueueByIndex) and bookmarks (getBookmarks, createBookmark,
deleteBookmark), kept by PlayerService.

The queue is stored by index, so a queue holding a track twice comes back as it was saved. A
track that became invisible since (made private by its uploader) is left out when read, and the
current index moves with it (to the next track that is still there, from its start).

The 1.16 XSD types `playQueue/@current` as an int (Subsonic's ids were numbers); Tonearm's ids
are not, and an app resuming a queue needs to know which song was playing. So `current` is the
song's id in XML too, as servers with string ids send it: the one place the XML departs from the
XSD (the tests validate everything else of it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tonearm.kernel.ids import is_valid_id
from tonearm.subsonic import objects
from tonearm.subsonic.handlers.playlists import check_songs
from tonearm.subsonic.protocol import (
    GENERIC,
    MISSING_PARAMETER,
    Call,
    SubsonicError,
    iso,
    method,
    missing,
    not_found,
)

NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # `changed` of no queue: older than any app's own


def _present(obj: dict[str, Any]) -> dict[str, Any]:
    """Without the fields that have no value (JSON has no null for them; XML leaves them out)."""
    return {k: v for k, v in obj.items() if v is not None}


def _position(call: Call) -> int:
    return call.params.int("position", 0, lo=0, hi=2**62)


def _read(call: Call) -> tuple[dict[str, Any], list[dict[str, Any]], int | None]:
    """The queue's fields (without current), its entries, and the current index among them."""
    assert call.caller is not None
    saved = call.c.player.saved_queue(call.user_id)
    head: dict[str, Any] = {"username": call.caller.username}
    if saved is None:
        return head | {"changed": iso(NEVER), "changedBy": ""}, [], None
    entries = objects.songs(call, saved.track_ids)
    visible = {e["id"] for e in entries}
    current: int | None = None
    position = saved.position_ms
    if entries and saved.current_index is not None:
        # Index among the entries still visible: those before the current one, and the current one
        # itself if it is still there (else the next that is, from its start).
        before = sum(1 for t in saved.track_ids[: saved.current_index] if t in visible)
        current = min(before, len(entries) - 1)
        if saved.track_ids[saved.current_index] not in visible:
            position = 0
    if current is not None:
        head["position"] = position
    head |= {"changed": iso(saved.changed_at), "changedBy": saved.changed_by}
    return head, entries, current


@method("getPlayQueue")
def get_play_queue(call: Call) -> dict[str, Any]:
    head, entries, current = _read(call)
    queue: dict[str, Any] = {}
    if current is not None:
        queue["current"] = entries[current]["id"]
    queue |= head
    queue["entry"] = entries
    return {"playQueue": queue}


@method("getPlayQueueByIndex")
def get_play_queue_by_index(call: Call) -> dict[str, Any]:
    head, entries, current = _read(call)
    queue = (
        {"currentIndex": current, **head, "entry": entries}
        if current is not None
        else head | {"entry": entries}
    )
    return {"playQueueByIndex": queue}


@method("savePlayQueue")
def save_play_queue(call: Call) -> None:
    ids = call.params.all("id")
    if not ids:
        call.c.player.save_queue(call.user_id, [], None, 0, call.client)
        return
    current = call.params.opt("current")
    if not current:
        raise missing("current")
    if current not in ids:
        raise SubsonicError(GENERIC, "current must be one of the id parameters (the song playing now)")
    position = _position(call)
    check_songs(call, ids)
    call.c.player.save_queue(call.user_id, ids, ids.index(current), position, call.client)


@method("savePlayQueueByIndex")
def save_play_queue_by_index(call: Call) -> None:
    ids = call.params.all("id")
    raw = call.params.opt("currentIndex")
    if not ids:
        if raw not in (None, ""):
            raise SubsonicError(GENERIC, "currentIndex must not be given without id parameters")
        call.c.player.save_queue(call.user_id, [], None, 0, call.client)
        return
    if raw in (None, ""):
        raise missing("currentIndex")
    current = call.params.int("currentIndex", lo=-(2**31))
    if not 0 <= current < len(ids):
        # The extension asks for code 10 here.
        raise SubsonicError(MISSING_PARAMETER, f"currentIndex must be between 0 and {len(ids) - 1}")
    position = _position(call)
    check_songs(call, ids)
    call.c.player.save_queue(call.user_id, ids, current, position, call.client)


# Bookmarks ------------------------------------------------------------------------------------


@method("getBookmarks")
def get_bookmarks(call: Call) -> dict[str, Any]:
    assert call.caller is not None
    marks = call.c.player.bookmarks(call.user_id)
    songs = {s["id"]: s for s in objects.songs(call, [m.track_id for m in marks])}
    return {
        "bookmarks": {
            "bookmark": [
                _present(
                    {
                        "position": m.position_ms,
                        "username": call.caller.username,
                        "comment": m.comment,
                        "created": iso(m.created_at),
                        "changed": iso(m.updated_at),
                        "entry": songs[m.track_id],
                    }
                )
                for m in marks
                if m.track_id in songs  # a track made private since is not shown
            ]
        }
    }


@method("createBookmark")
def create_bookmark(call: Call) -> None:
    track_id = call.params.req("id")
    position = call.params.int("position", lo=0, hi=2**62)
    if not is_valid_id(track_id):
        raise not_found("Song")
    call.c.player.set_bookmark(call.user_id, track_id, position, call.params.opt("comment"))


@method("deleteBookmark")
def delete_bookmark(call: Call) -> None:
    track_id = call.params.req("id")
    if not is_valid_id(track_id):
        raise not_found("Bookmark")
    call.c.player.delete_bookmark(call.user_id, track_id)
