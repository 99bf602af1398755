"""What listeners told us, as numbers: one weight per (listener, track).

Every signal decays with age (half-life `HALF_LIFE`), except the deliberate ones (likes, saves,
playlist adds, "not interested"), which hold until undone:

| signal                                   | weight                     |
|------------------------------------------|----------------------------|
| a play that counted (30 s or more)       | +1, decayed                |
| ... heard to the end (90 % of the track) | +0.5 more, decayed         |
| an early skip (started, left before 30 s)| -1.5, decayed              |
| a like                                   | +4                         |
| added to one of their playlists          | +2                         |
| on an album they saved                   | +1                         |
| "not interested"                         | -10                        |
| following the track's artist (serving only: the artist's 10 most popular tracks) | +0.5 |

The net weight becomes an ALS confidence: `1 + ALPHA log(1 + w)` when positive, and a negative
confidence (ALS reads it as "not this", that strongly) when negative. Follows are artist-level:
they are not in the training matrix; when serving, each followed artist's most popular tracks
count as a light positive (see RecsService._confidences), so follows alone make a taste.

Two readers with the same arithmetic: `load_matrix` (everyone, for training, optionally only
what happened before a time: the evaluation's split) and `user_signals` (one listener, fresh,
for serving and fold-in).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa

from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.tables import playbacks, plays
from tonearm.domains.library.tables import (
    album_saves,
    artist_follows,
    playlist_entries,
    playlists,
    track_likes,
)
from tonearm.domains.recs.tables import rec_hidden

HALF_LIFE = dt.timedelta(days=90)
PLAY = 1.0
COMPLETE = 0.5
COMPLETE_SHARE = 0.9
EARLY_SKIP = -1.5
SKIP_BEFORE_MS = 30_000
LIKE = 4.0
PLAYLIST_ADD = 2.0
ALBUM_SAVE = 1.0
HIDDEN = -10.0
FOLLOW = 0.5
ALPHA = 8.0
RECENT_PLAYS = 50  # "just played": left out of what we suggest next
USER_PLAYS = 2000  # serving reads a listener's newest plays only (older ones weigh ~nothing)


def confidence(weight: float) -> float:
    if weight > 0:
        return 1.0 + ALPHA * math.log1p(weight)
    if weight < 0:
        return -(1.0 + ALPHA * math.log1p(-weight) / 2)
    return 0.0


_confidence = np.vectorize(confidence, otypes=[np.float32])


def epoch_s(col: sa.ColumnElement[dt.datetime], dialect: str) -> sa.ColumnElement[Any]:
    """A datetime column as Unix seconds, computed by the database (parsing a million timestamps
    in Python would cost more than the training)."""
    if dialect == "sqlite":
        return (sa.func.julianday(col) - 2440587.5) * 86400.0
    return sa.cast(sa.extract("epoch", col), sa.Float)  # numeric on PostgreSQL 14+: a Decimal


def _decay(now_s: float, at_s: np.ndarray) -> np.ndarray:
    age = np.clip(now_s - at_s, 0, None)
    return np.power(2.0, -age / HALF_LIFE.total_seconds())


@dataclass
class Matrix:
    """Everyone's confidences, and the ids of its rows and columns."""

    user_ids: list[str]
    item_ids: list[str]
    confidences: sp.csr_matrix  # users x items, float32
    plays: int = 0
    stats: dict[str, int] = field(default_factory=dict)


def load_matrix(
    conn: sa.Connection, item_ids: list[str], *, now: dt.datetime, until: dt.datetime | None = None
) -> Matrix:
    """Every listener's signals on `item_ids` (the trainable catalog), as of `now`; with `until`,
    only what happened before it."""
    dialect = conn.dialect.name
    now_s = now.timestamp()
    item_index = {t: i for i, t in enumerate(item_ids)}
    user_index: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    stats: dict[str, int] = {}

    def add(rows: Iterable[tuple[str, str]], weights: np.ndarray, name: str) -> None:
        us, its, ws = [], [], []
        for (u, t), w in zip(rows, weights, strict=True):
            i = item_index.get(t)
            if i is None:
                continue
            us.append(user_index.setdefault(u, len(user_index)))
            its.append(i)
            ws.append(w)
        stats[name] = len(us)
        if us:
            parts.append((np.asarray(us, np.int64), np.asarray(its, np.int64), np.asarray(ws, np.float64)))

    # Plays (with completion) ---------------------------------------------------------------------
    at = epoch_s(plays.c.played_at, dialect)
    q = sa.select(
        plays.c.user_id,
        plays.c.track_id,
        at,
        (plays.c.ms_played >= COMPLETE_SHARE * tracks.c.duration_ms).label("complete"),
    ).join(tracks, tracks.c.id == plays.c.track_id)
    if until is not None:
        q = q.where(plays.c.played_at < until)
    rows = conn.execute(q).all()
    if rows:
        users_, items_, ats, completes = zip(*rows, strict=True)
        w = _decay(now_s, np.asarray(ats, np.float64)) * (PLAY + COMPLETE * np.asarray(completes, np.float64))
        add(zip(users_, items_, strict=True), w, "plays")
    n_plays = len(rows)
    del rows

    # Early skips -----------------------------------------------------------------------------------
    started = epoch_s(playbacks.c.started_at, dialect)
    q = (
        sa.select(playbacks.c.user_id, playbacks.c.track_id, started)
        .join(tracks, tracks.c.id == playbacks.c.track_id)
        .where(
            playbacks.c.counted.is_(False),
            playbacks.c.ms_played < SKIP_BEFORE_MS,
            tracks.c.duration_ms > SKIP_BEFORE_MS,
        )
    )
    if until is not None:
        q = q.where(playbacks.c.started_at < until)
    rows = conn.execute(q).all()
    if rows:
        w = EARLY_SKIP * _decay(now_s, np.asarray([r[2] for r in rows], np.float64))
        add(((r[0], r[1]) for r in rows), w, "early_skips")

    # Deliberate signals ------------------------------------------------------------------------
    for name, query, weight in _deliberate(until):
        rows = conn.execute(query).all()
        add(((r[0], r[1]) for r in rows), np.full(len(rows), weight), name)

    n_users = len(user_index)
    if parts:
        us = np.concatenate([p[0] for p in parts])
        its = np.concatenate([p[1] for p in parts])
        ws = np.concatenate([p[2] for p in parts])
        summed = sp.coo_matrix((ws, (us, its)), shape=(n_users, len(item_ids))).tocsr()
        summed.sum_duplicates()
        summed.data = _confidence(summed.data) if summed.nnz else summed.data.astype(np.float32)
        summed.eliminate_zeros()
        mat = summed.astype(np.float32)
    else:
        mat = sp.csr_matrix((0, len(item_ids)), dtype=np.float32)
    users_sorted = [""] * n_users
    for u, i in user_index.items():
        users_sorted[i] = u
    return Matrix(users_sorted, item_ids, mat, plays=n_plays, stats=stats)


def _deliberate(until: dt.datetime | None) -> list[tuple[str, sa.Select[Any], float]]:
    likes = sa.select(track_likes.c.user_id, track_likes.c.track_id)
    adds = (
        sa.select(playlist_entries.c.added_by, playlist_entries.c.track_id)
        .join(playlists, playlists.c.id == playlist_entries.c.playlist_id)
        .where(playlist_entries.c.added_by.is_not(None), playlists.c.generator.is_(None))
        .distinct()
    )
    saves = sa.select(album_saves.c.user_id, tracks.c.id).join(
        tracks, tracks.c.album_id == album_saves.c.album_id
    )
    hidden = sa.select(rec_hidden.c.user_id, rec_hidden.c.track_id)
    if until is not None:
        likes = likes.where(track_likes.c.added_at < until)
        adds = adds.where(playlist_entries.c.added_at < until)
        saves = saves.where(album_saves.c.added_at < until)
        hidden = hidden.where(rec_hidden.c.hidden_at < until)
    return [
        ("likes", likes, LIKE),
        ("playlist_adds", adds, PLAYLIST_ADD),
        ("album_saves", saves, ALBUM_SAVE),
        ("hidden", hidden, HIDDEN),
    ]


@dataclass
class UserSignals:
    """One listener, now: net weights per track id, and what to leave out of suggestions."""

    weights: dict[str, float]
    recent: list[str]  # newest first: what they just played
    followed_artists: list[str]
    hidden: set[str]

    def confidences(self, index: Mapping[str, int]) -> dict[int, float]:
        out: dict[int, float] = {}
        for t, w in self.weights.items():
            i = index.get(t)
            if i is not None and w != 0:
                out[i] = confidence(w)
        return out

    @property
    def has_taste(self) -> bool:
        """Anything to personalise from: a signal on a track, or a followed artist."""
        return bool(self.weights) or bool(self.followed_artists)

    @property
    def disliked(self) -> set[str]:
        return {t for t, w in self.weights.items() if w < 0} | self.hidden

    @property
    def known(self) -> set[str]:
        return set(self.weights)


def user_signals(conn: sa.Connection, user_id: str, *, now: dt.datetime) -> UserSignals:
    now_s = now.timestamp()
    dialect = conn.dialect.name
    weights: dict[str, float] = defaultdict(float)
    rows = conn.execute(
        sa.select(
            plays.c.track_id,
            epoch_s(plays.c.played_at, dialect),
            (plays.c.ms_played >= COMPLETE_SHARE * tracks.c.duration_ms).label("complete"),
        )
        .join(tracks, tracks.c.id == plays.c.track_id)
        .where(plays.c.user_id == user_id)
        .order_by(plays.c.played_at.desc())
        .limit(USER_PLAYS)
    ).all()
    recent: list[str] = []
    seen: set[str] = set()
    if rows:
        ats = np.fromiter((float(r[1]) for r in rows), dtype=np.float64, count=len(rows))
        completes = np.fromiter((bool(r[2]) for r in rows), dtype=np.float64, count=len(rows))
        terms = (_decay(now_s, ats) * (PLAY + COMPLETE * completes)).tolist()
        for (track_id, _at, _complete), w in zip(rows, terms, strict=True):
            weights[track_id] += w
            if len(recent) < RECENT_PLAYS and track_id not in seen:
                recent.append(track_id)
                seen.add(track_id)
    # Everything else in one round trip: early skips, the deliberate signals and follows.
    zero = sa.literal(0.0, sa.Float)
    skips = (
        sa.select(
            sa.literal("skip").label("kind"),
            playbacks.c.track_id.label("item"),
            epoch_s(playbacks.c.started_at, dialect).label("at"),
        )
        .join(tracks, tracks.c.id == playbacks.c.track_id)
        .where(
            playbacks.c.user_id == user_id,
            playbacks.c.counted.is_(False),
            playbacks.c.ms_played < SKIP_BEFORE_MS,
            tracks.c.duration_ms > SKIP_BEFORE_MS,
        )
    )
    parts: list[sa.Select[Any]] = [skips]
    deliberate = _deliberate(None)
    for name, query, _weight in deliberate:
        col = query.selected_columns[0]
        item = query.selected_columns[1]
        parts.append(
            query.where(col == user_id).with_only_columns(
                sa.literal(name).label("kind"), item.label("item"), zero.label("at")
            )
        )
    parts.append(
        sa.select(
            sa.literal("follow").label("kind"),
            artist_follows.c.artist_id.label("item"),
            epoch_s(artist_follows.c.followed_at, dialect).label("at"),
        ).where(artist_follows.c.user_id == user_id)
    )
    weight_of = {name: weight for name, _q, weight in deliberate}
    hidden: set[str] = set()
    follows: list[tuple[float, str]] = []
    for kind, item, at in conn.execute(sa.union_all(*parts)):
        if kind == "skip":
            weights[item] += EARLY_SKIP * 2.0 ** (-max(0.0, now_s - float(at)) / HALF_LIFE.total_seconds())
        elif kind == "follow":
            follows.append((float(at), item))
        else:
            weights[item] += weight_of[kind]
            if kind == "hidden":
                hidden.add(item)
    followed = [a for _at, a in sorted(follows, reverse=True)]
    return UserSignals(dict(weights), recent, followed, hidden)
