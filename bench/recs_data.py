"""Recommender data at scale: a catalog, listeners with planted tastes and their history, written
straight into a freshly migrated database (multi-row inserts on SQLite, COPY on PostgreSQL).

What it makes (defaults): 10,000 artists, ~12,500 albums, 100,000 ready public tracks in 30
genres with descriptions, 50,000 listeners in 200 taste groups (each favouring 1-3 genres and a
few artists in them), 1,000,000 counted plays over the last 120 days (Zipf-like over the group's
favourites, 15% noise), likes (~5% of plays), early skips (`playbacks` rows, counted=false,
2-20 s), `listening_scores` summed by `history.scores.score_rows` exactly as
`HistoryService.import_plays` sums them, and `tracks.play_count`. Deterministic for a seed
(ids aside). Listener accounts have the password hash "!", which matches no password.

    python bench/recs_data.py --db sqlite            # a temporary SQLite file
    python bench/recs_data.py --db postgres          # a new schema of the local PostgreSQL
    python bench/recs_data.py --users 500 --tracks 2000 --plays 20000 --keep
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from _common import bench_db_url, drop_bench_db, machine
from tonearm import migrate
from tonearm.domains.history.scores import score_rows
from tonearm.kernel.db import make_engine
from tonearm.kernel.ids import new_id

# fmt: off
GENRES = (
    "Ambient", "Afrobeat", "Bluegrass", "Blues", "Bossa Nova", "Classical", "Country", "Dancehall",
    "Disco", "Drum and Bass", "Dub", "Electronic", "Folk", "Funk", "Garage", "Gospel", "Grunge",
    "Hip-Hop", "House", "Indie Rock", "Jazz", "K-Pop", "Lo-Fi", "Metal", "Pop", "Punk", "Reggae",
    "Soul", "Synthwave", "Techno",
)
# fmt: on
MOODS = ("warm", "dark", "bright", "hazy", "restless", "gentle", "driving", "dreamy", "moody", "playful")
INSTRUMENTS = ("piano", "synth pads", "a drum machine", "strings", "guitar", "bass", "horns", "voices")
NOISE = 0.15
GROUP_POOL = 400  # tracks a group's Zipf runs over
TABLES = ("genres", "artists", "albums", "tracks", "track_artists", "track_genres", "users", "plays")


def make_dataset(
    db_url: str,
    *,
    users: int = 50_000,
    tracks: int = 100_000,
    plays: int = 1_000_000,
    seed: int = 1,
    groups: int = 200,
    days: int = 120,
    progress: bool = True,
) -> dict[str, Any]:
    """Fills the (empty) database at `db_url` after migrating it; returns counts, seconds per
    phase and the ground truth (`groups`: favoured genres and artist ids; `group_of`: user id ->
    group index)."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def phase(name: str, t0: float) -> float:
        now_ = time.perf_counter()
        timings[name] = round(now_ - t0, 2)
        if progress:
            print(f"  {name:<22} {now_ - t0:6.1f} s", file=sys.stderr)
        return now_

    migrate.upgrade(db_url)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t0 = time.perf_counter()

    # The catalog ------------------------------------------------------------------------------
    n_artists = max(10, tracks // 10)
    artist_ids = [new_id() for _ in range(n_artists)]
    artist_genre = [rng.randrange(len(GENRES)) for _ in range(n_artists)]
    artist_second = [rng.randrange(len(GENRES)) if rng.random() < 0.3 else -1 for _ in range(n_artists)]
    album_rows: list[tuple[Any, ...]] = []
    track_rows: list[dict[str, Any]] = []
    credits: dict[str, list[str]] = {}
    track_genre_rows: list[tuple[str, int]] = []
    by_genre: list[list[int]] = [[] for _ in GENRES]
    by_artist: list[list[int]] = [[] for _ in range(n_artists)]
    durations: list[int] = []
    t = 0
    album_no = 0
    while t < tracks:
        a = album_no % n_artists if album_no < n_artists else rng.randrange(n_artists)
        album_id = new_id()
        year = rng.randint(1965, 2025)
        album_rows.append(
            (album_id, f"Album {album_no}", artist_ids[a], f"|{artist_ids[a]}|album {album_no}", year)
        )
        album_no += 1
        for n in range(min(rng.randint(1, 14), tracks - t)):
            tid = new_id()
            genre_ix = [artist_genre[a]] + (
                [artist_second[a]] if artist_second[a] not in (-1, artist_genre[a]) else []
            )
            duration = rng.randint(120_000, 360_000)
            mood, inst = rng.choice(MOODS), rng.choice(INSTRUMENTS)
            track_rows.append(
                {
                    "id": tid,
                    "album_id": album_id,
                    "title": f"Track {t}",
                    "duration": duration,
                    "number": n + 1,
                    "year": year,
                    "description": f"A {mood} {GENRES[genre_ix[0]].lower()} track built on {inst}.",
                }
            )
            credit = [artist_ids[a]]
            if rng.random() < 0.05:
                credit.append(artist_ids[rng.randrange(n_artists)])
            credits[tid] = list(dict.fromkeys(credit))
            for g in genre_ix:
                track_genre_rows.append((tid, g + 1))
                by_genre[g].append(t)
            by_artist[a].append(t)
            durations.append(duration)
            t += 1
    track_ids = [r["id"] for r in track_rows]

    # Taste groups -------------------------------------------------------------------------------
    group_info: list[dict[str, Any]] = []
    pools: list[tuple[list[int], list[float]]] = []
    for g in range(groups):
        grng = random.Random(f"{seed}:group:{g}")
        favoured = grng.sample(range(len(GENRES)), grng.choice((1, 1, 2, 2, 3)))
        candidates = [a for a in range(n_artists) if artist_genre[a] in favoured]
        fav_artists = grng.sample(candidates, min(len(candidates), grng.randint(4, 8))) if candidates else []
        first = [i for a in fav_artists for i in by_artist[a]]
        grng.shuffle(first)
        in_genre = sorted({i for f in favoured for i in by_genre[f]} - set(first))
        rest = grng.sample(in_genre, min(len(in_genre), max(0, GROUP_POOL - len(first))))
        order = (first + rest)[:GROUP_POOL] or [0]
        cum: list[float] = []
        total = 0.0
        for i in range(len(order)):
            total += 1.0 / (i + 1) ** 1.1
            cum.append(total)
        pools.append((order, cum))
        group_info.append(
            {"genres": [GENRES[f] for f in favoured], "artists": [artist_ids[a] for a in fav_artists]}
        )
    t0 = phase("catalog and tastes", t0)

    # Listeners and their plays ---------------------------------------------------------------
    user_ids = [new_id() for _ in range(users)]
    group_of = [rng.randrange(groups) for _ in range(users)]
    weights = [min(rng.paretovariate(1.3), 50.0) for _ in range(users)]
    scale = plays / sum(weights)
    counts = [int(w * scale) for w in weights]
    for i in range(plays - sum(counts)):
        counts[i % users] += 1
    span_us = days * 86_400_000_000
    start = now - dt.timedelta(days=days)
    play_rows: list[tuple[str, str, dt.datetime, int]] = []
    like_rows: list[tuple[str, str, dt.datetime]] = []
    skip_rows: list[tuple[Any, ...]] = []
    score_out: list[dict[str, Any]] = []
    play_count = [0] * tracks
    us = dt.timedelta(microseconds=1)
    for u, user_id in enumerate(user_ids):
        n = counts[u]
        if n == 0:
            continue
        urng = random.Random(f"{seed}:user:{u}")
        order, cum = pools[group_of[u]]
        picks = urng.choices(order, cum_weights=cum, k=n)
        seen: set[tuple[int, dt.datetime]] = set()
        mine: list[tuple[str, dt.datetime, int]] = []
        for p in picks:
            if urng.random() < NOISE:
                p = urng.randrange(tracks)
            at = start + urng.randrange(span_us) * us
            if (p, at) in seen:
                continue
            seen.add((p, at))
            d = durations[p]
            ms = d - urng.randint(0, 1500) if urng.random() < 0.85 else urng.randint(30_000, d)
            mine.append((track_ids[p], at, ms))
            play_count[p] += 1
        mine.sort(key=lambda r: (r[1], r[0], r[2]))  # the order import_plays sums them in
        for track_id, at, ms in mine:
            play_rows.append((user_id, track_id, at, ms))
        score_out.extend(score_rows(user_id, mine, credits).values())
        heard = Counter(picks)
        for p, _ in heard.most_common(max(0, round(n * 0.05))):
            like_rows.append((user_id, track_ids[p], start + urng.randrange(span_us) * us))
        pos = set(order)
        for k in range(n // 15 + (1 if urng.random() < 0.5 else 0)):
            p = urng.randrange(tracks)
            if p in pos:
                continue
            at = start + urng.randrange(span_us) * us
            played = urng.randint(2_000, 20_000)
            skip_rows.append((user_id, f"bench-skip-{k}", track_ids[p], at, at + played * 1000 * us, played))
    t0 = phase("plays and scores", t0)

    # Writing ------------------------------------------------------------------------------------
    engine = make_engine(db_url)
    pg = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    dbapi: Any = raw.driver_connection
    w = _Writer(dbapi, pg)
    created = now - dt.timedelta(days=days + 30)
    w.rows(
        "genres",
        ("id", "name", "slug"),
        [(i + 1, g, g.lower().replace(" ", "-")) for i, g in enumerate(GENRES)],
    )
    w.rows(
        "artists",
        ("id", "name", "name_key", "followers", "created_at"),
        ((a, f"Artist {i}", f"artist {i}", 0, w.ts(created)) for i, a in enumerate(artist_ids)),
    )
    w.rows(
        "albums",
        (
            "id",
            "name",
            "artist_id",
            "match_key",
            "album_type",
            "release_date",
            "release_date_precision",
            "created_at",
        ),
        ((r[0], r[1], r[2], r[3], "album", str(r[4]), "year", w.ts(created)) for r in album_rows),
    )
    ready, public = "ready", "public"
    w.rows(
        "tracks",
        (
            "id",
            "title",
            "album_id",
            "duration_ms",
            "track_number",
            "disc_number",
            "explicit",
            "description",
            "release_date",
            "status",
            "visibility",
            "content_hash",
            "play_count",
            "created_at",
            "updated_at",
        ),
        (
            (
                r["id"],
                r["title"],
                r["album_id"],
                r["duration"],
                r["number"],
                1,
                w.false,
                r["description"],
                str(r["year"]),
                ready,
                public,
                f"{i:064x}",
                play_count[i],
                w.ts(created),
                w.ts(created),
            )
            for i, r in enumerate(track_rows)
        ),
    )
    w.rows(
        "track_artists",
        ("track_id", "artist_id", "position"),
        ((tid, a, pos) for tid in track_ids for pos, a in enumerate(credits[tid])),
    )
    w.rows("track_genres", ("track_id", "genre_id"), track_genre_rows)
    w.rows(
        "users",
        (
            "id",
            "email",
            "display_name",
            "password_hash",
            "role",
            "product",
            "token_version",
            "created_at",
            "updated_at",
        ),
        (
            (
                uid,
                f"bench-{i}@tonearm.local",
                f"Listener {i}",
                "!",
                "listener",
                "free",
                0,
                w.ts(created),
                w.ts(created),
            )
            for i, uid in enumerate(user_ids)
        ),
    )
    t0 = phase("write catalog, users", t0)
    w.rows(
        "plays",
        ("user_id", "track_id", "played_at", "ms_played"),
        ((u, tid, w.ts(at), ms) for u, tid, at, ms in play_rows),
    )
    t0 = phase("write plays", t0)
    w.rows(
        "listening_scores",
        ("user_id", "kind", "item_id", "plays", "ms_played", "short", "medium", "last_played_at"),
        (
            (
                r["user_id"],
                r["kind"],
                r["item_id"],
                r["plays"],
                r["ms_played"],
                r["short"],
                r["medium"],
                w.ts(r["last_played_at"]),
            )
            for r in score_out
        ),
    )
    t0 = phase("write listening_scores", t0)
    w.rows(
        "track_likes", ("user_id", "track_id", "added_at"), ((u, tid, w.ts(at)) for u, tid, at in like_rows)
    )
    w.rows(
        "playbacks",
        (
            "user_id",
            "id",
            "track_id",
            "started_at",
            "updated_at",
            "ms_played",
            "rebuffer_ms",
            "rebuffers",
            "counted",
        ),
        ((u, pid, tid, w.ts(a), w.ts(b), ms, 0, 0, w.false) for u, pid, tid, a, b, ms in skip_rows),
    )
    if pg:
        dbapi.execute("SELECT setval(pg_get_serial_sequence('genres', 'id'), (SELECT max(id) FROM genres))")
    dbapi.commit()
    raw.close()
    with engine.connect() as conn:  # planner statistics, as after any bulk load
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    engine.dispose()
    phase("likes, skips, analyze", t0)
    return {
        "artists": n_artists,
        "albums": len(album_rows),
        "tracks": tracks,
        "genres": len(GENRES),
        "users": users,
        "plays": len(play_rows),
        "likes": len(like_rows),
        "skips": len(skip_rows),
        "listening_scores": len(score_out),
        "seconds": round(time.perf_counter() - t_start, 1),
        "timings": timings,
        "groups": group_info,
        "group_of": dict(zip(user_ids, group_of, strict=True)),
    }


class _Writer:
    """Batched inserts through the driver: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, dbapi: Any, pg: bool) -> None:
        self.dbapi = dbapi
        self.pg = pg
        self.false: Any = False if pg else 0
        if not pg:
            dbapi.execute("PRAGMA synchronous=OFF")
            dbapi.execute("BEGIN")

    def ts(self, value: dt.datetime) -> Any:
        """A UTC time as the column type stores it (SQLite: SQLAlchemy's text form)."""
        naive = value.astimezone(dt.UTC).replace(tzinfo=None)
        return naive if self.pg else naive.isoformat(sep=" ", timespec="microseconds")

    def rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        cols = ", ".join(columns)
        if self.pg:
            with self.dbapi.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
            return
        sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 (our own names)
        batch: list[Sequence[Any]] = []
        for r in rows:
            batch.append(r)
            if len(batch) == 50_000:
                self.dbapi.executemany(sql, batch)
                batch = []
        if batch:
            self.dbapi.executemany(sql, batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--plays", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="leave the database behind and print its URL")
    args = ap.parse_args()
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-recs-"))
    url = bench_db_url(args.db, tmp)
    try:
        out = make_dataset(url, users=args.users, tracks=args.tracks, plays=args.plays, seed=args.seed)
        counts = {k: v for k, v in out.items() if k not in ("groups", "group_of", "timings")}
        print(f"{args.db}: {counts}")
        print(f"made in {out['seconds']} s")
        if args.keep:
            print(f"kept: {url}")
    finally:
        if not args.keep:
            drop_bench_db(url)


if __name__ == "__main__":
    main()
