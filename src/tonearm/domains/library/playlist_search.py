"""What search knows of playlists: their documents for the index, and how the database fallback
finds them while the index is down.

Only public playlists are searchable, by everyone alike: a private (or collaborative, which is
never public) playlist has no document, so making a playlist private or deleting it removes it
from the index (the indexer deletes the ids `documents()` leaves out), and the fallback looks at
public ones only. The owner does not find their own private playlists by search either; they are
in `GET /v1/me/playlists`.

A document holds the playlist's name (`name`), its description (`description`) and its owner's
display name in `artists`: the creator's name is matched like an artist's (with typos, weighed
under the title, over the description). Popularity is 0: playlists have no followers yet, and a
track count would be easy to pad (and would need a change notice on every edit).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.search_sql import Contains, Shape
from tonearm.domains.library.tables import playlists
from tonearm.ports.search import Field, IndexQuery, SearchDoc

P = playlists
_PUBLIC = P.c.public == sa.true()


def documents(conn: sa.Connection, ids: Sequence[str]) -> dict[str, SearchDoc]:
    """The documents of these playlists that should be in the index: the public ones. An id
    missing from the answer should not be (deleted, or not public)."""
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(P.c.id, P.c.name, P.c.description, users.c.display_name)
        .join(users, users.c.id == P.c.owner_id)
        .where(P.c.id.in_(list(ids)), _PUBLIC)
    ).all()
    return {
        r.id: SearchDoc(
            "playlist",
            r.id,
            r.name,
            artists=(r.display_name,) if r.display_name else (),
            description=r.description or "",
            popularity=0,
        )
        for r in rows
    }


def count(conn: sa.Connection) -> int:
    """Public playlists (what a rebuild indexes)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(P).where(_PUBLIC)).scalar_one())


def iter_ids(conn: sa.Connection, *, batch: int = 2000) -> Iterator[list[str]]:
    """The ids of every public playlist, in batches, by keyset."""
    last = ""
    while True:
        ids = list(
            conn.execute(
                sa.select(P.c.id).where(P.c.id > last, _PUBLIC).order_by(P.c.id).limit(batch)
            ).scalars()
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


class PlaylistShape(Shape):
    """Playlists for the database fallback (`catalog/search_sql.py`): the same fields as their
    documents, public playlists only whoever asks, all of popularity 0 (ordered by id)."""

    id = P.c.id

    def source(self, query: IndexQuery) -> sa.FromClause:
        return P

    def visible(self, viewer_id: str | None) -> sa.ColumnElement[bool]:
        return _PUBLIC  # never a private one, not even to its owner (as the index)

    def field(self, name: Field, contains: Contains) -> sa.ColumnElement[bool] | None:
        if name == "name":
            return contains(P.c.name)
        if name == "description":
            return contains(P.c.description)
        if name == "artists":
            return P.c.owner_id.in_(sa.select(users.c.id).where(contains(users.c.display_name)))
        return None

    def has_genre(self, genre_ids: Sequence[int]) -> sa.ColumnElement[bool]:
        return sa.false()  # playlists have no genres (parse() sends no genre: filter for them)

    def year(self) -> sa.ColumnElement[str]:
        return sa.literal("")

    def popularity(self) -> sa.ColumnElement[int]:
        return sa.literal(0, sa.Integer())


SHAPE = PlaylistShape()
