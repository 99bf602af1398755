"""A small world with planted tastes, written straight into the database: six genres, four artists
each, eight tracks per artist; a crowd of listeners in six groups, each group playing mostly one
genre (with noise) over the last 60 days, liking some of it and skipping tracks of another genre
early. Plus API accounts (`listener`) that log in, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from tests.integration.entitlements.conftest import client, clock, container, listener
from tonearm.bootstrap import Container
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import track_artists, track_genres, tracks
from tonearm.domains.history.tables import playbacks, plays
from tonearm.domains.library.tables import track_likes
from tonearm.kernel.ids import new_id

GENRES = ["Jazz", "Techno", "Folk", "Metal", "Ambient", "Hip-Hop"]
WORDS = {
    "Jazz": "swing saxophone trio smoky club improvised",
    "Techno": "warehouse pulse four-on-the-floor synth acid",
    "Folk": "acoustic guitar ballad fiddle storytelling",
    "Metal": "distorted riffs double-kick heavy shouting",
    "Ambient": "drifting pads calm texture slow",
    "Hip-Hop": "beats rhymes sampled boom-bap flow",
}


@dataclass
class World:
    tracks_by_genre: dict[str, list[str]] = field(default_factory=dict)
    genre_of: dict[str, str] = field(default_factory=dict)
    artist_of: dict[str, str] = field(default_factory=dict)
    crowd: dict[str, str] = field(default_factory=dict)  # user id -> favourite genre


# The same container (a clock the tests move, no search indexer), API client and listeners as the
# entitlements tests: imported, so pytest registers the fixtures here too.
__all__ = ["client", "clock", "container", "listener"]


def add_tracks(c: Container, world: World, *, per_artist: int = 8, artists_per_genre: int = 4) -> None:
    now = c.clock.now()
    with c.db.write() as conn:
        genre_ids = c.catalog.ensure_genres(conn, GENRES)
        gid = dict(zip(GENRES, genre_ids, strict=True))
        for g in GENRES:
            world.tracks_by_genre[g] = []
            for a in range(artists_per_genre):
                artist_id = c.catalog.ensure_artist(conn, f"{g} Artist {a}", now)
                album_id, _ = c.catalog.ensure_album(conn, f"{g} Album {a}", artist_id, "2024", now)
                for i in range(per_artist):
                    t = new_id()
                    conn.execute(
                        sa.insert(tracks).values(
                            id=t,
                            title=f"{g} song {a}-{i}",
                            description=f"A {g.lower()} tune: {WORDS[g]}",
                            album_id=album_id,
                            duration_ms=200_000 + 10_000 * i,
                            tempo_bpm=70.0 + 10 * i,  # 70 .. 140
                            loudness_lufs=-20.0 + i,
                            track_number=i + 1,
                            status="ready",
                            visibility="public",
                            content_hash=new_id(),
                            play_count=0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    conn.execute(sa.insert(track_artists).values(track_id=t, artist_id=artist_id, position=0))
                    conn.execute(sa.insert(track_genres).values(track_id=t, genre_id=gid[g]))
                    world.tracks_by_genre[g].append(t)
                    world.genre_of[t] = g
                    world.artist_of[t] = artist_id


def crowd_user(conn: sa.Connection, now: dt.datetime, n: int) -> str:
    uid = new_id()
    conn.execute(
        sa.insert(users).values(
            id=uid,
            email=f"crowd{n}-{uid[:6]}@example.com",
            display_name=f"Crowd {n}",
            password_hash="!",  # cannot log in
            created_at=now,
            updated_at=now,
        )
    )
    return uid


def play(conn: sa.Connection, user_id: str, track_id: str, at: dt.datetime, ms: int = 200_000) -> None:
    conn.execute(sa.insert(plays).values(user_id=user_id, track_id=track_id, played_at=at, ms_played=ms))
    conn.execute(sa.update(tracks).where(tracks.c.id == track_id).values(play_count=tracks.c.play_count + 1))


def early_skip(conn: sa.Connection, user_id: str, track_id: str, at: dt.datetime) -> None:
    conn.execute(
        sa.insert(playbacks).values(
            user_id=user_id, id=new_id(), track_id=track_id, started_at=at, updated_at=at, ms_played=4000
        )
    )


def like(conn: sa.Connection, user_id: str, track_id: str, at: dt.datetime) -> None:
    conn.execute(sa.insert(track_likes).values(user_id=user_id, track_id=track_id, added_at=at))


def plant(c: Container, world: World, *, per_group: int = 10, plays_each: int = 40, seed: int = 3) -> None:
    """Each group plays its genre (90 %) with a Zipf-like taste inside it, at random times over 60
    days; skips two tracks of the "opposite" genre early; likes three favourites."""
    rng = random.Random(seed)
    now = c.clock.now()
    with c.db.write() as conn:
        n = 0
        for gi, g in enumerate(GENRES):
            own = world.tracks_by_genre[g]
            other = world.tracks_by_genre[GENRES[(gi + 3) % len(GENRES)]]
            for _ in range(per_group):
                uid = crowd_user(conn, now, n)
                n += 1
                world.crowd[uid] = g
                taste = rng.sample(own, len(own))
                weights = [1 / (k + 1) ** 0.6 for k in range(len(taste))]
                for _ in range(plays_each):
                    at = now - dt.timedelta(minutes=rng.randrange(1, 60 * 24 * 60))
                    if rng.random() < 0.9:
                        t = rng.choices(taste, weights)[0]
                    else:
                        t = rng.choice([x for xs in world.tracks_by_genre.values() for x in xs])
                    play(conn, uid, t, at)
                for t in rng.sample(other, 2):
                    early_skip(conn, uid, t, now - dt.timedelta(days=rng.randrange(1, 50)))
                for t in taste[:3]:
                    like(conn, uid, t, now - dt.timedelta(days=rng.randrange(1, 50)))


@pytest.fixture
def world(container: Container) -> World:
    w = World()
    add_tracks(container, w)
    plant(container, w)
    return w
