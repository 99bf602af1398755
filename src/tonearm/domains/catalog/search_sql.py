"""Search answered from the catalog's own tables: the fallback while the search index is down.

It answers the same `IndexQuery` the index does (`ports/search.py`), with the same visibility
and filters, and is meant to be correct rather than good:

* every `Must` holds: its word (or its phrase, words in order) occurs in one of its fields, as a
  case- and accent-insensitive substring of the field's text (which also covers the prefix of a
  word still being typed). Typos are not tolerated, and a word may match inside a longer one
  ("love" finds "Glove"): more results than the index, never fewer, apart from typos.
* genre:, year: and visibility filter as in the index (only ready tracks; public, or private and
  owned by the viewer).
* ranking is by popularity (plays) alone.

It is a scan (no index can serve `LIKE '%word%'`), so its cost is bounded: a statement timeout
(PostgreSQL's `statement_timeout`, SQLite's progress handler) turns a query that runs too long
into ServiceUnavailable rather than a stalled server.

Folding: words arrive folded by `ports.search.tokens()`. SQLite folds a column the same way in
Python (`tonearm_words`), only for values that are not plain ASCII; ASCII values go through SQLite's
own case-insensitive LIKE. PostgreSQL folds with `lower()` and `translate()` over the Latin letters
(accents, ß, æ, œ), in SQL.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from tonearm.domains.catalog.tables import albums, artists, genres, track_artists, track_genres, tracks
from tonearm.kernel.db import Database
from tonearm.kernel.errors import ServiceUnavailable
from tonearm.ports.search import Field, Hits, IndexQuery, Must, blend, fold, genre_key, tokens

# How long the fallback's own reads may take before it gives up (and the client is told to retry).
_RETRY_AFTER_S = 5


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern with ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _words(value: str | None) -> str | None:
    """A column's text as the index sees it: its `tokens()`, one space apart (SQLite's fold)."""
    return None if value is None else " ".join(tokens(value))


def _pg_fold_tables() -> tuple[str, str]:
    """translate()'s two strings: every Latin letter whose fold is one ASCII letter or digit, to
    that letter; apostrophes to nothing (tokens() drops them inside words)."""
    src, dst = [], []
    for cp in range(0xC0, 0x250):
        ch = chr(cp)
        if unicodedata.category(ch).startswith("L"):
            folded = fold(ch)
            if len(folded) == 1 and folded.isascii() and folded.isalnum():
                src.append(ch)
                dst.append(folded)
    return "".join(src) + "'`\u2019\u02bc\u00b4", "".join(dst)


_PG_FROM, _PG_TO = _pg_fold_tables()
_PG_MULTI = (
    ("ß", "ss"),
    ("ẞ", "ss"),
    ("æ", "ae"),
    ("Æ", "ae"),
    ("œ", "oe"),
    ("Œ", "oe"),
    ("þ", "th"),
    ("Þ", "th"),
)
# Characters outside printable ASCII, or apostrophes: SQLite folds these values in Python.
_SQLITE_NEEDS_FOLD = "*[^ -&(-_a-~]*"


class _Matcher:
    """Builds `column contains word` conditions for one dialect."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite

    def contains(self, column: sa.ColumnElement[Any], text: str, *, phrase: bool) -> sa.ColumnElement[bool]:
        pattern = f"%{escape_like(text)}%"
        if self.sqlite:
            words = sa.func.tonearm_words(column).like(pattern, escape="\\")
            if phrase:  # punctuation between the words: compare word lists
                return words
            # SQLite's LIKE already ignores ASCII case; only other values need folding.
            return sa.or_(
                column.like(pattern, escape="\\"),
                sa.and_(column.op("GLOB")(_SQLITE_NEEDS_FOLD), words),
            )
        folded: sa.ColumnElement[Any] = sa.func.lower(column)
        for a, b in _PG_MULTI:
            folded = sa.func.replace(folded, a, b)
        folded = sa.func.translate(folded, _PG_FROM, _PG_TO)
        if phrase:
            folded = sa.func.regexp_replace(folded, "[^[:alnum:]]+", " ", "g")
        return folded.like(pattern, escape="\\")


def search(
    db: Database, query: IndexQuery, *, limit: int, offset: int, timeout_ms: int, shape: Shape | None = None
) -> Hits:
    """The documents of `query.kind` that meet the query, most played first (see the module).
    `shape`: how to find that kind in tables other than the catalog's (the library's playlists,
    `library/playlist_search.py`); without one, a kind the catalog does not hold has no hits."""
    shape = shape or _SHAPES.get(query.kind)
    if shape is None:
        return Hits([], [], 0)
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        with db.read() as conn:
            _bound(conn, db.sqlite, timeout_ms, deadline)
            try:
                return _run(conn, query, shape, limit=limit, offset=offset, sqlite=db.sqlite)
            finally:
                _unbound(conn, db.sqlite)
    except sa.exc.OperationalError as exc:
        if _is_timeout(exc):
            raise ServiceUnavailable(
                "search is answering from the database while its index recovers, and this query "
                f"took longer than {timeout_ms} ms; try more specific words",
                _RETRY_AFTER_S,
            ) from exc
        raise


def _bound(conn: sa.Connection, sqlite: bool, timeout_ms: int, deadline: float) -> None:
    if sqlite:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.create_function("tonearm_words", 1, _words, deterministic=True)
        # Called every 10k virtual-machine steps (~a millisecond): non-zero interrupts the query.
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    else:
        conn.execute(sa.text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))


def _unbound(conn: sa.Connection, sqlite: bool) -> None:
    if sqlite:
        raw = conn.connection.driver_connection
        if raw is not None:
            raw.set_progress_handler(None, 0)


def _is_timeout(exc: sa.exc.OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "interrupted" in text or "statement timeout" in text or "canceling statement" in text


def _run(
    conn: sa.Connection, query: IndexQuery, shape: Shape, *, limit: int, offset: int, sqlite: bool
) -> Hits:
    by_key: dict[str, list[int]] = {}
    if query.genres:
        for gid, name in conn.execute(sa.select(genres.c.id, genres.c.name)):
            by_key.setdefault(genre_key(name), []).append(gid)
        for key in query.genres:
            if key not in by_key:
                return Hits([], [], 0)  # a genre nothing carries
    m = _Matcher(sqlite)
    source = shape.source(query)
    conds = [shape.visible(query.viewer_id)]
    for must in query.must:
        conds.append(_must(m, shape, must))
    for key in query.genres:
        conds.append(shape.has_genre(by_key[key]))
    if query.years is not None:
        first, last = query.years
        conds.append(shape.year().between(f"{first:04d}", f"{last:04d}"))
    popularity = shape.popularity().label("popularity")
    rows = (
        conn.execute(
            sa.select(shape.id, popularity, sa.func.count().over().label("total"))
            .select_from(source)
            .where(*conds)
            .order_by(sa.desc("popularity"), shape.id)
            .limit(limit)
            .offset(offset)
        ).all()
        if limit
        else []
    )
    if rows:
        total = int(rows[0].total)
    elif offset == 0 and limit:
        total = 0
    else:  # past the end, or limit 0: count on its own
        total = int(conn.execute(sa.select(sa.func.count()).select_from(source).where(*conds)).scalar_one())
    return Hits([r.id for r in rows], [blend(1.0, int(r.popularity or 0)) for r in rows], total)


def _must(m: _Matcher, shape: Shape, must: Must) -> sa.ColumnElement[bool]:
    text = " ".join(t.text for t in must.terms)
    phrase = must.phrase and len(must.terms) > 1
    either = [
        cond
        for f in must.fields
        if (cond := shape.field(f, lambda col: m.contains(col, text, phrase=phrase))) is not None
    ]
    return sa.or_(*either) if either else sa.false()


Contains = Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]

# Conditions on related tables are uncorrelated `IN (subquery)`s: the database evaluates each once
# (a set of matching artist or genre ids) instead of once per candidate row, which made a
# miss on a 100,000-track catalog take seconds rather than a fraction of one.


def _ids(column: sa.ColumnElement[Any], where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(column).where(where)


def _ready_visible(viewer_id: str | None) -> sa.ColumnElement[bool]:
    public = tracks.c.visibility == "public"
    if viewer_id:
        public = sa.or_(public, tracks.c.owner_user_id == viewer_id)
    return sa.and_(tracks.c.status == "ready", public)


def _tracks_of_genres(genre_ids: sa.Select[Any] | Sequence[int]) -> sa.Select[Any]:
    return _ids(track_genres.c.track_id, track_genres.c.genre_id.in_(genre_ids))


def _genres_named(contains: Contains) -> sa.Select[Any]:
    return _ids(genres.c.id, contains(genres.c.name))


class Shape:
    """How one kind of document maps onto tables: the catalog's kinds below; other domains
    subclass it for theirs and pass it to `search()`."""

    id: sa.ColumnElement[str]

    def source(self, query: IndexQuery) -> sa.FromClause:
        raise NotImplementedError

    def visible(self, viewer_id: str | None) -> sa.ColumnElement[bool]:
        raise NotImplementedError

    def field(self, name: Field, contains: Contains) -> sa.ColumnElement[bool] | None:
        raise NotImplementedError

    def has_genre(self, genre_ids: Sequence[int]) -> sa.ColumnElement[bool]:
        raise NotImplementedError

    def year(self) -> sa.ColumnElement[str]:
        raise NotImplementedError

    def popularity(self) -> sa.ColumnElement[int]:
        raise NotImplementedError


class _TrackShape(Shape):
    id = tracks.c.id

    def source(self, query: IndexQuery) -> sa.FromClause:
        # The album row is needed for the year only (a track without a date has its album's).
        return tracks.join(albums, albums.c.id == tracks.c.album_id) if query.years else tracks

    def visible(self, viewer_id: str | None) -> sa.ColumnElement[bool]:
        return _ready_visible(viewer_id)

    def field(self, name: Field, contains: Contains) -> sa.ColumnElement[bool] | None:
        if name == "name":
            return contains(tracks.c.title)
        if name == "description":
            return contains(tracks.c.description)
        if name == "album":
            return tracks.c.album_id.in_(_ids(albums.c.id, contains(albums.c.name)))
        if name == "artists":
            by = _ids(artists.c.id, contains(artists.c.name))
            return tracks.c.id.in_(_ids(track_artists.c.track_id, track_artists.c.artist_id.in_(by)))
        return tracks.c.id.in_(_tracks_of_genres(_genres_named(contains)))

    def has_genre(self, genre_ids: Sequence[int]) -> sa.ColumnElement[bool]:
        return tracks.c.id.in_(_tracks_of_genres(genre_ids))

    def year(self) -> sa.ColumnElement[str]:
        return sa.func.substr(
            sa.func.coalesce(sa.func.nullif(tracks.c.release_date, ""), albums.c.release_date), 1, 4
        )

    def popularity(self) -> sa.ColumnElement[int]:
        return tracks.c.play_count


def _album_of_ready(track_cond: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return albums.c.id.in_(_ids(tracks.c.album_id, sa.and_(tracks.c.status == "ready", track_cond)))


class _AlbumShape(Shape):
    id = albums.c.id

    def source(self, query: IndexQuery) -> sa.FromClause:
        return albums

    def visible(self, viewer_id: str | None) -> sa.ColumnElement[bool]:
        t = tracks.alias("t")
        public = t.c.visibility == "public"
        if viewer_id:
            public = sa.or_(public, t.c.owner_user_id == viewer_id)
        return sa.select(1).where(t.c.album_id == albums.c.id, t.c.status == "ready", public).exists()

    def field(self, name: Field, contains: Contains) -> sa.ColumnElement[bool] | None:
        if name == "name":
            return contains(albums.c.name)
        if name == "artists":
            return albums.c.artist_id.in_(_ids(artists.c.id, contains(artists.c.name)))
        if name == "genres":
            return _album_of_ready(tracks.c.id.in_(_tracks_of_genres(_genres_named(contains))))
        return None  # albums have no description

    def has_genre(self, genre_ids: Sequence[int]) -> sa.ColumnElement[bool]:
        return _album_of_ready(tracks.c.id.in_(_tracks_of_genres(genre_ids)))

    def year(self) -> sa.ColumnElement[str]:
        return sa.func.substr(albums.c.release_date, 1, 4)

    def popularity(self) -> sa.ColumnElement[int]:
        t = tracks.alias("t")
        return (
            sa.select(sa.func.coalesce(sa.func.sum(t.c.play_count), 0))
            .where(t.c.album_id == albums.c.id, t.c.status == "ready")
            .scalar_subquery()
        )


def _artist_of_ready(track_cond: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    ready = _ids(tracks.c.id, sa.and_(tracks.c.status == "ready", track_cond))
    return artists.c.id.in_(_ids(track_artists.c.artist_id, track_artists.c.track_id.in_(ready)))


class _ArtistShape(Shape):
    id = artists.c.id

    def source(self, query: IndexQuery) -> sa.FromClause:
        return artists

    def visible(self, viewer_id: str | None) -> sa.ColumnElement[bool]:
        ta = track_artists.alias("ta")
        t = tracks.alias("t")
        public = t.c.visibility == "public"
        if viewer_id:
            public = sa.or_(public, t.c.owner_user_id == viewer_id)
        return (
            sa.select(1)
            .select_from(ta.join(t, t.c.id == ta.c.track_id))
            .where(ta.c.artist_id == artists.c.id, t.c.status == "ready", public)
            .exists()
        )

    def field(self, name: Field, contains: Contains) -> sa.ColumnElement[bool] | None:
        if name == "name":
            return contains(artists.c.name)
        if name == "description":
            return contains(artists.c.bio)
        if name == "genres":
            return _artist_of_ready(tracks.c.id.in_(_tracks_of_genres(_genres_named(contains))))
        return None

    def has_genre(self, genre_ids: Sequence[int]) -> sa.ColumnElement[bool]:
        return _artist_of_ready(tracks.c.id.in_(_tracks_of_genres(genre_ids)))

    def year(self) -> sa.ColumnElement[str]:
        return sa.literal("")  # artists have no year (parse() never sends one for them)

    def popularity(self) -> sa.ColumnElement[int]:
        ta = track_artists.alias("ta")
        t = tracks.alias("t")
        return (
            sa.select(sa.func.coalesce(sa.func.sum(t.c.play_count), 0))
            .select_from(ta.join(t, t.c.id == ta.c.track_id))
            .where(ta.c.artist_id == artists.c.id, t.c.status == "ready")
            .scalar_subquery()
        )


_SHAPES: dict[str, Shape] = {"track": _TrackShape(), "album": _AlbumShape(), "artist": _ArtistShape()}
