"""What a data export holds: one JSON file per kind of personal data, and a README.txt.

The export spans every domain, so it reads their tables directly, read-only, in one transaction.
`COVERAGE` says where each table that refers to a user ends up (a test checks that every such
table in the schema is listed, so a new one cannot be forgotten). Secrets never leave: password
and refresh-token hashes, API key hashes, the app password, payment method tokens, idempotency keys
and blob keys are left out.
Large histories (plays, player events) are streamed into the ZIP in batches, never held whole.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from tonearm.domains.accounts.tables import api_keys, sessions, users
from tonearm.domains.billing.tables import (
    family_invitations,
    invoices,
    payments,
    subscription_members,
    subscriptions,
)
from tonearm.domains.catalog.tables import albums, artists, track_artists, tracks
from tonearm.domains.devices.tables import devices, downloads
from tonearm.domains.entitlements.tables import ad_impressions, ad_state, entitlement_log, skips
from tonearm.domains.history.tables import listening_scores, now_playing, play_events, playbacks, plays
from tonearm.domains.ingest.tables import uploads
from tonearm.domains.library.tables import (
    album_saves,
    artist_follows,
    playlist_collaborators,
    playlist_entries,
    playlists,
    ratings,
    track_likes,
)
from tonearm.domains.player.tables import bookmarks, player_queues, saved_queues
from tonearm.domains.recs.tables import rec_hidden
from tonearm.domains.sharing.tables import share_links
from tonearm.kernel.ids import uri

Obj = dict[str, Any]

# Every table with a foreign key to users, and where the export puts it (None: not exported, why).
COVERAGE: dict[str, str | None] = {
    "users": "profile.json",
    "artists": "profile.json (artist_profiles: artist pages you manage)",
    "sessions": "sessions.json",
    "tracks": "uploaded_tracks.json",
    "uploads": "uploads.json",
    "track_likes": "liked_tracks.json",
    "album_saves": "saved_albums.json",
    "artist_follows": "followed_artists.json",
    "playlists": "playlists.json",
    "playlist_entries": "playlists.json, playlist_collaborations.json",
    "playlist_collaborators": "playlists.json, playlist_collaborations.json",
    "plays": "plays.json",
    "play_events": "play_events.json",
    "playbacks": "playbacks.json",
    "listening_scores": "top_items.json",
    "share_links": "share_links.json",
    "devices": "devices.json",
    "subscriptions": "billing.json",
    "subscription_members": "billing.json",
    "payments": "billing.json",
    "invoices": "billing.json",
    "family_invitations": "billing.json (invitations you accepted; those you sent are under subscriptions)",
    "entitlement_log": "entitlements.json",
    "skips": "entitlements.json",
    "ad_impressions": "entitlements.json",
    "ad_state": "entitlements.json",
    "player_queues": "player_queue.json",
    "rec_hidden": "not_interested.json",
    "ratings": "ratings.json",
    "bookmarks": "bookmarks.json",
    "saved_queues": "saved_play_queue.json",
    "now_playing": "now_playing.json",
    "api_keys": "api_keys.json (names, first characters and dates; never the keys or their hashes)",
    # A secret like a password: the web app shows it to its user (Account > Apps) instead.
    "app_passwords": None,
    "data_exports": None,  # the exports themselves: a copy of a copy
}

FILES = {
    "profile.json": "your account, and the artist pages you manage",
    "liked_tracks.json": "tracks you liked, with when",
    "saved_albums.json": "albums you saved",
    "followed_artists.json": "artists you follow",
    "playlists.json": "your playlists with their tracks in order, and their collaborators",
    "playlist_collaborations.json": "playlists of others you may edit, and the tracks you added to them",
    "plays.json": "every play counted (30 s heard), with where it was played from",
    "play_events.json": "what your players reported, event by event",
    "playbacks.json": "each listening session: time heard, start-up time, stalls",
    "top_items.json": "your running totals per track and artist (they rank your top lists)",
    "uploads.json": "files you uploaded and what became of them",
    "uploaded_tracks.json": "the tracks your uploads made",
    "share_links.json": "short links you made, with their clicks",
    "sessions.json": "where you are signed in (no tokens)",
    "devices.json": "devices registered for offline play, and their downloads",
    "billing.json": "subscriptions, payments and invoices (no payment details), family invitations",
    "entitlements.json": "decisions about what your plan allowed and why, your skips, the ads you heard",
    "player_queue.json": "your play queue as the server keeps it",
    "not_interested.json": "tracks you asked never to be recommended",
    "ratings.json": "the 1 to 5 star ratings you gave tracks, albums and artists",
    "bookmarks.json": "where you stopped in long tracks, as your apps saved it",
    "saved_play_queue.json": "the play queue your apps saved to carry on elsewhere",
    "now_playing.json": "what your app last said it was playing",
    "api_keys.json": "the API keys you made for apps (names and first characters only, no keys)",
}

README = """Your Tonearm data
=================

Exported {now} for the account {user_id} ({email}).

Times are UTC (ISO 8601). Ids are Tonearm's 22-character ids; `uri` fields read
tonearm:<type>:<id>. A track you can no longer see (deleted, or made private by whoever
uploaded it) is listed by id only. Each file is JSON; entries are counted in brackets.

{files}
"""


def _row(r: Any, *, drop: Sequence[str] = ()) -> Obj:
    return {str(k): v for k, v in r._asdict().items() if k not in drop}  # names may be str subclasses


class _Names:
    """Names for the ids in the files, looked up in batches and remembered."""

    def __init__(self, conn: sa.Connection, user_id: str) -> None:
        self.conn = conn
        self.user_id = user_id
        self._tracks: dict[str, Obj] = {}

    def tracks(self, wanted: Iterable[str]) -> dict[str, Obj]:
        """`{id, uri}` per track, plus `name`, `album` and `artists` where the user may see it."""
        ids = list(wanted)
        missing = sorted({i for i in ids if i not in self._tracks})
        for n in range(0, len(missing), 500):
            chunk = missing[n : n + 500]
            visible = sa.and_(
                tracks.c.status == "ready",
                sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == self.user_id),
            )
            rows = self.conn.execute(
                sa.select(tracks.c.id, tracks.c.title, albums.c.name.label("album"))
                .join(albums, albums.c.id == tracks.c.album_id)
                .where(tracks.c.id.in_(chunk), visible)
            ).all()
            names: dict[str, list[str]] = {}
            for track_id, name in self.conn.execute(
                sa.select(track_artists.c.track_id, artists.c.name)
                .join(artists, artists.c.id == track_artists.c.artist_id)
                .where(track_artists.c.track_id.in_([r.id for r in rows]))
                .order_by(track_artists.c.track_id, track_artists.c.position)
            ):
                names.setdefault(track_id, []).append(name)
            for track_id in chunk:
                self._tracks[track_id] = {"id": track_id, "uri": uri("track", track_id)}
            for r in rows:
                self._tracks[r.id] |= {"name": r.title, "album": r.album, "artists": names.get(r.id, [])}
        return {i: self._tracks[i] for i in ids}

    def track(self, track_id: str) -> Obj:
        return self.tracks([track_id])[track_id]


class ArchiveWriter:
    """JSON files into a ZIP: arrays are written row by row, one row a line."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.counts: dict[str, int] = {}

    def value(self, name: str, value: Any) -> None:
        self.zf.writestr(name, orjson.dumps(value, option=orjson.OPT_INDENT_2 | _OPTS))
        self.counts[name] = len(value) if isinstance(value, list) else 1

    def array(self, name: str, rows: Iterable[Any]) -> None:
        n = 0
        with self.zf.open(name, "w", force_zip64=True) as fh:
            fh.write(b"[")
            for row in rows:
                fh.write(b"\n  " if n == 0 else b",\n  ")
                fh.write(orjson.dumps(row, option=_OPTS))
                n += 1
            fh.write(b"\n]\n" if n else b"]\n")
        self.counts[name] = n

    def text(self, name: str, text: str) -> None:
        self.zf.writestr(name, text.encode())


_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def write_archive(
    conn: sa.Connection, zf: zipfile.ZipFile, user_id: str, *, base: str, now: dt.datetime
) -> None:
    """Writes the whole export of `user_id` into `zf`."""
    out = ArchiveWriter(zf)
    names = _Names(conn, user_id)
    user = conn.execute(sa.select(users).where(users.c.id == user_id)).one()
    profile = _row(user, drop=("password_hash", "token_version", "avatar_image_id"))
    profile |= {
        "uri": uri("user", user_id),
        "avatar": f"{base}/images/{user.avatar_image_id}/640" if user.avatar_image_id else None,
        "artist_profiles": [
            {"id": r.id, "uri": uri("artist", r.id), "name": r.name}
            for r in conn.execute(
                sa.select(artists.c.id, artists.c.name).where(artists.c.owner_user_id == user_id)
            )
        ],
    }
    out.value("profile.json", profile)

    likes = conn.execute(
        sa.select(track_likes.c.track_id, track_likes.c.added_at)
        .where(track_likes.c.user_id == user_id)
        .order_by(track_likes.c.added_at.desc())
    ).all()
    liked = names.tracks(r.track_id for r in likes)
    out.value("liked_tracks.json", [{"added_at": r.added_at, "track": liked[r.track_id]} for r in likes])

    out.value(
        "saved_albums.json",
        [
            {
                "added_at": r.added_at,
                "album": {"id": r.id, "uri": uri("album", r.id), "name": r.name, "artist": r.artist},
            }
            for r in conn.execute(
                sa.select(album_saves.c.added_at, albums.c.id, albums.c.name, artists.c.name.label("artist"))
                .join(albums, albums.c.id == album_saves.c.album_id)
                .join(artists, artists.c.id == albums.c.artist_id)
                .where(album_saves.c.user_id == user_id)
                .order_by(album_saves.c.added_at.desc())
            )
        ],
    )
    out.value(
        "followed_artists.json",
        [
            {"followed_at": r.followed_at, "artist": {"id": r.id, "uri": uri("artist", r.id), "name": r.name}}
            for r in conn.execute(
                sa.select(artist_follows.c.followed_at, artists.c.id, artists.c.name)
                .join(artists, artists.c.id == artist_follows.c.artist_id)
                .where(artist_follows.c.user_id == user_id)
                .order_by(artist_follows.c.followed_at.desc())
            )
        ],
    )
    out.value("playlists.json", _playlists(conn, names, user_id))
    out.value("playlist_collaborations.json", _collaborations(conn, names, user_id))

    out.array("plays.json", _plays(conn, names, user_id))
    out.array(
        "play_events.json",
        _stream(
            conn,
            sa.select(play_events)
            .where(play_events.c.user_id == user_id)
            .order_by(play_events.c.client_ts, play_events.c.id),
            drop=("id", "user_id"),
        ),
    )
    out.array(
        "playbacks.json",
        _stream(
            conn,
            sa.select(playbacks).where(playbacks.c.user_id == user_id).order_by(playbacks.c.started_at),
            drop=("user_id",),
        ),
    )
    scores = conn.execute(
        sa.select(
            listening_scores.c.kind,
            listening_scores.c.item_id,
            listening_scores.c.plays,
            listening_scores.c.ms_played,
            listening_scores.c.last_played_at,
        )
        .where(listening_scores.c.user_id == user_id)
        .order_by(listening_scores.c.kind, listening_scores.c.plays.desc(), listening_scores.c.item_id)
    ).all()
    artist_names = _names_of(conn, artists, [r.item_id for r in scores if r.kind == "artist"])
    scored_tracks = names.tracks(r.item_id for r in scores if r.kind == "track")
    out.value(
        "top_items.json",
        [
            {
                "type": r.kind,
                "plays": r.plays,
                "ms_played": r.ms_played,
                "last_played_at": r.last_played_at,
                r.kind: scored_tracks[r.item_id]
                if r.kind == "track"
                else {"id": r.item_id, "uri": uri("artist", r.item_id), "name": artist_names.get(r.item_id)},
            }
            for r in scores
        ],
    )
    out.value(
        "uploads.json",
        [
            _row(r, drop=("user_id", "blob_key"))
            for r in conn.execute(
                sa.select(uploads).where(uploads.c.user_id == user_id).order_by(uploads.c.created_at)
            )
        ],
    )
    out.value(
        "uploaded_tracks.json",
        [
            _row(r) | {"uri": uri("track", r.id)}
            for r in conn.execute(
                sa.select(
                    tracks.c.id,
                    tracks.c.title,
                    tracks.c.album_id,
                    albums.c.name.label("album"),
                    tracks.c.duration_ms,
                    tracks.c.isrc,
                    tracks.c.explicit,
                    tracks.c.description,
                    tracks.c.release_date,
                    tracks.c.status,
                    tracks.c.visibility,
                    tracks.c.play_count,
                    tracks.c.created_at,
                    tracks.c.updated_at,
                )
                .join(albums, albums.c.id == tracks.c.album_id)
                .where(tracks.c.owner_user_id == user_id)
                .order_by(tracks.c.created_at)
            )
        ],
    )
    out.value(
        "share_links.json",
        [
            _row(r, drop=("user_id",))
            for r in conn.execute(
                sa.select(share_links)
                .where(share_links.c.user_id == user_id)
                .order_by(share_links.c.created_at)
            )
        ],
    )
    out.value(
        "sessions.json",
        [
            _row(r)
            for r in conn.execute(
                sa.select(
                    sessions.c.id,
                    sessions.c.user_agent,
                    sessions.c.created_at,
                    sessions.c.last_used_at,
                    sessions.c.expires_at,
                    sessions.c.revoked_at,
                )
                .where(sessions.c.user_id == user_id)
                .order_by(sessions.c.created_at)
            )
        ],
    )
    device_rows = conn.execute(
        sa.select(devices).where(devices.c.user_id == user_id).order_by(devices.c.created_at)
    ).all()
    downloaded: dict[str, list[Obj]] = {}
    for r in conn.execute(sa.select(downloads).where(downloads.c.device_id.in_([d.id for d in device_rows]))):
        downloaded.setdefault(r.device_id, []).append(
            {"track": names.track(r.track_id), "rendition": r.rendition, "created_at": r.created_at}
        )
    out.value(
        "devices.json",
        [_row(d, drop=("user_id",)) | {"downloads": downloaded.get(d.id, [])} for d in device_rows],
    )
    out.value("billing.json", _billing(conn, user_id))
    out.value("entitlements.json", _entitlements(conn, user_id))
    queue = conn.execute(sa.select(player_queues).where(player_queues.c.user_id == user_id)).first()
    out.value("player_queue.json", _row(queue, drop=("user_id",)) if queue is not None else None)
    hidden = conn.execute(
        sa.select(rec_hidden).where(rec_hidden.c.user_id == user_id).order_by(rec_hidden.c.hidden_at)
    ).all()
    out.value(
        "not_interested.json", [{"track": names.track(r.track_id), "hidden_at": r.hidden_at} for r in hidden]
    )
    _apps(out, conn, names, user_id)
    files = "\n".join(f"{name:<30} ({out.counts[name]:>6})  {what}" for name, what in FILES.items())
    out.text(
        "README.txt",
        README.format(now=now.strftime("%Y-%m-%d %H:%M UTC"), user_id=user_id, email=user.email, files=files),
    )


def _names_of(conn: sa.Connection, table: sa.Table, ids: list[str]) -> dict[str, str]:
    """id -> name of the albums or artists named (a history refers to them by id alone)."""
    rows = conn.execute(sa.select(table.c.id, table.c.name).where(table.c.id.in_(ids)))
    return {r.id: r.name for r in rows}


def _apps(out: ArchiveWriter, conn: sa.Connection, names: _Names, user_id: str) -> None:
    """What the apps people already use (Subsonic clients) keep: ratings, bookmarks, the saved
    queue, what is playing now, and the API keys (never a key or its hash)."""
    rated = conn.execute(
        sa.select(ratings.c.kind, ratings.c.item_id, ratings.c.rating, ratings.c.updated_at)
        .where(ratings.c.user_id == user_id)
        .order_by(ratings.c.kind, ratings.c.updated_at, ratings.c.item_id)
    ).all()
    rated_tracks = names.tracks(r.item_id for r in rated if r.kind == "track")
    album_names = _names_of(conn, albums, [r.item_id for r in rated if r.kind == "album"])
    artist_names = _names_of(conn, artists, [r.item_id for r in rated if r.kind == "artist"])

    def item(kind: str, item_id: str) -> Obj:
        if kind == "track":
            return rated_tracks[item_id]
        found = (album_names if kind == "album" else artist_names).get(item_id)
        return {"id": item_id, "uri": uri(kind, item_id), "name": found}

    out.value(
        "ratings.json",
        [
            {"type": r.kind, "rating": r.rating, "updated_at": r.updated_at, r.kind: item(r.kind, r.item_id)}
            for r in rated
        ],
    )
    marks = conn.execute(
        sa.select(bookmarks).where(bookmarks.c.user_id == user_id).order_by(bookmarks.c.created_at)
    ).all()
    marked = names.tracks(r.track_id for r in marks)
    out.value(
        "bookmarks.json",
        [
            {
                "track": marked[r.track_id],
                "position_ms": r.position_ms,
                "comment": r.comment,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in marks
        ],
    )
    saved = conn.execute(sa.select(saved_queues).where(saved_queues.c.user_id == user_id)).first()
    if saved is None:
        out.value("saved_play_queue.json", None)
    else:
        ids: list[str] = orjson.loads(saved.track_ids)
        queued = names.tracks(ids)
        out.value(
            "saved_play_queue.json",
            {
                "tracks": [queued[i] for i in ids],
                "current_index": saved.current_index,
                "position_ms": saved.position_ms,
                "changed_at": saved.changed_at,
                "changed_by": saved.changed_by,
            },
        )
    playing = conn.execute(sa.select(now_playing).where(now_playing.c.user_id == user_id)).first()
    out.value(
        "now_playing.json",
        None
        if playing is None
        else {
            "track": names.track(playing.track_id),
            "client": playing.client,
            "started_at": playing.started_at,
        },
    )
    out.value(
        "api_keys.json",
        [
            _row(r)
            for r in conn.execute(
                sa.select(
                    api_keys.c.id,
                    api_keys.c.name,
                    api_keys.c.prefix,
                    api_keys.c.created_at,
                    api_keys.c.last_used_at,
                )
                .where(api_keys.c.user_id == user_id)
                .order_by(api_keys.c.created_at)
            )
        ],
    )


def _playlists(conn: sa.Connection, names: _Names, user_id: str) -> list[Obj]:
    owned = conn.execute(
        sa.select(playlists).where(playlists.c.owner_id == user_id).order_by(playlists.c.created_at)
    ).all()
    ids = [p.id for p in owned]
    entries: dict[str, list[Any]] = {}
    for e in conn.execute(
        sa.select(playlist_entries)
        .where(playlist_entries.c.playlist_id.in_(ids))
        .order_by(playlist_entries.c.playlist_id, playlist_entries.c.position_key)
    ):
        entries.setdefault(e.playlist_id, []).append(e)
    collaborators: dict[str, list[str]] = {}
    for c in conn.execute(
        sa.select(playlist_collaborators.c.playlist_id, playlist_collaborators.c.user_id).where(
            playlist_collaborators.c.playlist_id.in_(ids)
        )
    ):
        collaborators.setdefault(c.playlist_id, []).append(c.user_id)
    named = names.tracks(e.track_id for es in entries.values() for e in es)
    return [
        {
            "id": p.id,
            "uri": uri("playlist", p.id),
            "name": p.name,
            "description": p.description,
            "public": p.public,
            "collaborative": p.collaborative,
            "collaborators": collaborators.get(p.id, []),
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "tracks": [
                {"position": n, "added_at": e.added_at, "added_by": e.added_by, "track": named[e.track_id]}
                for n, e in enumerate(entries.get(p.id, []))
            ],
        }
        for p in owned
    ]


def _collaborations(conn: sa.Connection, names: _Names, user_id: str) -> Obj:
    editable = conn.execute(
        sa.select(playlists.c.id, playlists.c.name, playlists.c.owner_id)
        .join(playlist_collaborators, playlist_collaborators.c.playlist_id == playlists.c.id)
        .where(playlist_collaborators.c.user_id == user_id, playlists.c.owner_id != user_id)
    ).all()
    added = conn.execute(
        sa.select(playlist_entries.c.playlist_id, playlist_entries.c.track_id, playlist_entries.c.added_at)
        .join(playlists, playlists.c.id == playlist_entries.c.playlist_id)
        .where(playlist_entries.c.added_by == user_id, playlists.c.owner_id != user_id)
        .order_by(playlist_entries.c.added_at)
    ).all()
    named = names.tracks(r.track_id for r in added)
    return {
        "playlists": [
            {"id": r.id, "uri": uri("playlist", r.id), "name": r.name, "owner_id": r.owner_id}
            for r in editable
        ],
        "tracks_you_added": [
            {"playlist_id": r.playlist_id, "added_at": r.added_at, "track": named[r.track_id]} for r in added
        ],
    }


def _stream(conn: sa.Connection, stmt: sa.Select[Any], *, drop: Sequence[str]) -> Iterator[Obj]:
    result = conn.execute(stmt.execution_options(yield_per=2000))
    for part in result.partitions():
        for r in part:
            yield _row(r, drop=drop)


def _plays(conn: sa.Connection, names: _Names, user_id: str) -> Iterator[Obj]:
    stmt = (
        sa.select(plays.c.played_at, plays.c.ms_played, plays.c.context_uri, plays.c.track_id)
        .where(plays.c.user_id == user_id)
        .order_by(plays.c.played_at, plays.c.id)
        .execution_options(yield_per=2000)
    )
    for part in conn.execute(stmt).partitions():
        named = names.tracks(r.track_id for r in part)
        for r in part:
            yield {
                "played_at": r.played_at,
                "ms_played": r.ms_played,
                "context_uri": r.context_uri,
                "track": named[r.track_id],
            }


def _billing(conn: sa.Connection, user_id: str) -> Obj:
    subs = conn.execute(
        sa.select(subscriptions)
        .where(subscriptions.c.user_id == user_id)
        .order_by(subscriptions.c.created_at)
    ).all()
    return {
        "subscriptions": [_row(r, drop=("user_id", "payment_method_token")) for r in subs],
        "memberships": [
            _row(r, drop=("user_id",))
            for r in conn.execute(
                sa.select(subscription_members).where(subscription_members.c.user_id == user_id)
            )
        ],
        "payments": [
            _row(r, drop=("user_id", "idempotency_key"))
            for r in conn.execute(
                sa.select(payments).where(payments.c.user_id == user_id).order_by(payments.c.created_at)
            )
        ],
        "invoices": [
            _row(r, drop=("user_id",))
            for r in conn.execute(
                sa.select(invoices).where(invoices.c.user_id == user_id).order_by(invoices.c.created_at)
            )
        ],
        "invitations": [
            _row(r, drop=("code_hash",))
            for r in conn.execute(
                sa.select(family_invitations)
                .where(
                    sa.or_(
                        family_invitations.c.accepted_by == user_id,
                        family_invitations.c.subscription_id.in_(
                            sa.select(subscriptions.c.id).where(subscriptions.c.user_id == user_id)
                        ),
                    )
                )
                .order_by(family_invitations.c.created_at)
            )
        ],
    }


def _entitlements(conn: sa.Connection, user_id: str) -> Obj:
    state = conn.execute(sa.select(ad_state).where(ad_state.c.user_id == user_id)).first()
    return {
        "decisions": [
            _row(r, drop=("user_id", "id"))
            for r in conn.execute(
                sa.select(entitlement_log)
                .where(entitlement_log.c.user_id == user_id)
                .order_by(entitlement_log.c.at)
            )
        ],
        "skips": [
            _row(r, drop=("user_id", "id"))
            for r in conn.execute(sa.select(skips).where(skips.c.user_id == user_id).order_by(skips.c.at))
        ],
        "ads_heard": [
            _row(r, drop=("user_id",))
            for r in conn.execute(
                sa.select(ad_impressions)
                .where(ad_impressions.c.user_id == user_id)
                .order_by(ad_impressions.c.served_at)
            )
        ],
        "ad_counter": _row(state, drop=("user_id",)) if state is not None else None,
    }
