"""Demo listeners with planted tastes: the listening a recommender learns from, and the truth to
check it against.

Listeners come in groups; each group favours one or two of the catalog's genres (read from the
database, so whatever the demo imported) and, within them, a few artists. Each listener has
months of counted plays (Zipf-like over the group's favourites, about 15% from elsewhere, mostly
heard to the end, spread evenly over `days` so the taste holds across a time-based split), a
handful of early skips of tracks outside the taste, likes, a saved album or two, a followed
artist or two and a "<Genre> favourites" playlist. Plays go through `HistoryService.import_plays`,
so `listening_scores` and `tracks.play_count` follow exactly as for plays the player counted.

The same catalog and seed plant the same tastes. The accounts (`taste-<group>-<n>@tonearm.local`)
are rows like the ones sign-up writes, sharing the hash of a random password nobody is told: they
cannot log in (the demo listener and premium accounts, planted too, can). Planting is idempotent:
a listener whose planted playlist exists is left alone, so a second run adds nothing.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tonearm.bootstrap import Container
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import artists, genres, track_artists, track_genres, tracks
from tonearm.domains.history.service import PLAY_THRESHOLD_MS, ImportedPlay
from tonearm.domains.history.tables import playbacks
from tonearm.domains.library.tables import album_saves, artist_follows, playlists, track_likes
from tonearm.kernel.ids import new_id

__all__ = ["PLANTED_NOTE", "PlantReport", "TasteGroup", "plant_listeners", "taste_email"]

# The planted playlist's description: how a planted listener is recognised on the next run.
PLANTED_NOTE = "Planted by `tonearm demo`: what this listener keeps coming back to."
NOISE = 0.15  # share of plays from outside the group's genres
MIN_GENRE_TRACKS = 4  # a genre with fewer tracks cannot carry a taste


def taste_email(group: int, n: int) -> str:
    return f"taste-{group}-{n}@tonearm.local"


@dataclass(frozen=True, slots=True)
class TasteGroup:
    """The ground truth of one group: what its listeners were made to like."""

    index: int
    genres: tuple[str, ...]
    artists: tuple[str, ...]  # favourite artists' names, the most favoured first
    listeners: tuple[str, ...]  # the members' e-mail addresses


@dataclass(slots=True)
class PlantReport:
    """What one call planted (listeners already planted add nothing and are counted apart)."""

    groups: list[TasteGroup] = field(default_factory=list)
    listeners: int = 0
    already_planted: int = 0
    plays: int = 0
    skips: int = 0
    likes: int = 0
    album_saves: int = 0
    follows: int = 0
    playlists: int = 0

    def summary(self) -> str:
        return (
            f"{self.listeners} planted ({self.plays} plays, {self.skips} early skips, {self.likes} likes, "
            f"{self.follows} follows, {self.playlists} playlists), {self.already_planted} already there"
        )


@dataclass(frozen=True, slots=True)
class _Track:
    id: str
    duration_ms: int
    album_id: str
    artist_ids: tuple[str, ...]  # in credit order
    genres: frozenset[str]


@dataclass(slots=True)
class _Plan:
    """One listener's planted history, before it is written."""

    user_id: str
    plays: list[ImportedPlay] = field(default_factory=list)
    skips: list[dict[str, object]] = field(default_factory=list)
    likes: list[tuple[str, dt.datetime]] = field(default_factory=list)
    saves: list[tuple[str, dt.datetime]] = field(default_factory=list)
    follows: list[tuple[str, dt.datetime]] = field(default_factory=list)
    playlist: list[str] = field(default_factory=list)
    playlist_name: str = ""


def plant_listeners(
    c: Container,
    *,
    groups: int = 8,
    per_group: int = 15,
    days: int = 120,
    seed: int = 11,
    members: Mapping[str, int] | None = None,
    progress: Callable[[int], object] | None = None,
) -> PlantReport:
    """Plants `groups` x `per_group` new listeners over the last `days` days, plus the existing
    accounts in `members` (e-mail -> group index; unknown e-mails are skipped), each joining its
    group with the same kind of history. `progress` is called with the listeners done as it goes."""
    catalog, artist_names = _read_catalog(c)
    by_genre: dict[str, list[_Track]] = defaultdict(list)
    for t in catalog:
        for genre in t.genres:
            by_genre[genre].append(t)
    usable = sorted((g for g, ts in by_genre.items() if len(ts) >= MIN_GENRE_TRACKS), key=lambda g: g.lower())
    report = PlantReport()
    if not usable or groups <= 0:
        return report
    rng = random.Random(seed)
    deck = usable[:]
    rng.shuffle(deck)
    now = c.clock.now()
    existing = _existing_accounts(c, [taste_email(g, n) for g in range(groups) for n in range(per_group)])
    extra = {e: g for e, g in (members or {}).items() if 0 <= g < groups}
    existing |= _existing_accounts(c, list(extra))
    new_accounts: list[dict[str, object]] = []
    password_hash = ""
    plans: list[_Plan] = []
    for g in range(groups):
        favoured: tuple[str, ...] = (deck[g % len(deck)],)
        if len(deck) > 1 and rng.random() < 0.5:
            favoured += (rng.choice([x for x in deck if x != favoured[0]]),)
        pool = sorted({t.id: t for f in favoured for t in by_genre[f]}.values(), key=lambda t: t.id)
        favourites, fav_artists = _favourites(random.Random(f"{seed}:{g}"), pool)
        emails = [taste_email(g, n) for n in range(per_group)] + sorted(
            e for e, eg in extra.items() if eg == g
        )
        report.groups.append(
            TasteGroup(g, favoured, tuple(artist_names[a] for a in fav_artists), tuple(emails))
        )
        for n, email in enumerate(emails):
            user_id = existing.get(email)
            if user_id is None:
                if email in extra:
                    continue  # a member that has no account here
                if not password_hash:  # one hash (90 ms), not one per listener
                    password_hash = c.accounts.hasher.hash(secrets.token_urlsafe(24))
                user_id = new_id()
                new_accounts.append(
                    _account(user_id, email, g, n, password_hash, now - dt.timedelta(days=days + 1))
                )
            plans.append(
                _plan(
                    random.Random(f"{seed}:{g}:{email}"),
                    user_id,
                    favourites,
                    fav_artists,
                    pool,
                    catalog,
                    now=now,
                    days=days,
                    playlist_name=f"{favoured[0]} favourites",
                )
            )
    done = _planted(c, [p.user_id for p in plans])
    report.already_planted = len(done)
    if progress is not None and done:
        progress(len(done))
    plans = [p for p in plans if p.user_id not in done]
    if new_accounts:
        with c.db.write() as conn:
            conn.execute(sa.insert(users), new_accounts)
    if not plans:
        return report
    report.plays = c.history.import_plays_of({p.user_id: p.plays for p in plans})
    _write_library(c, plans, now, report)
    for p in plans:
        playlist = c.playlists.create(p.user_id, name=p.playlist_name, description=PLANTED_NOTE)
        if p.playlist:
            c.playlists.add(p.user_id, str(playlist["id"]), p.playlist)
        report.playlists += 1
        report.listeners += 1
        if progress is not None:
            progress(1)
    return report


def _read_catalog(c: Container) -> tuple[list[_Track], dict[str, str]]:
    """Ready public tracks with their artists and genres, in id order (so the same catalog gives
    the same tastes), and every artist's name."""
    with c.db.read() as conn:
        rows = conn.execute(
            sa.select(tracks.c.id, tracks.c.duration_ms, tracks.c.album_id)
            .where(tracks.c.status == "ready", tracks.c.visibility == "public")
            .order_by(tracks.c.id)
        ).all()
        credits: dict[str, list[str]] = defaultdict(list)
        for tid, aid in conn.execute(
            sa.select(track_artists.c.track_id, track_artists.c.artist_id).order_by(
                track_artists.c.track_id, track_artists.c.position, track_artists.c.artist_id
            )
        ):
            credits[tid].append(aid)
        tags: dict[str, set[str]] = defaultdict(set)
        for tid, name in conn.execute(
            sa.select(track_genres.c.track_id, genres.c.name).join(
                genres, genres.c.id == track_genres.c.genre_id
            )
        ):
            tags[tid].add(name)
        names: dict[str, str] = {a: n for a, n in conn.execute(sa.select(artists.c.id, artists.c.name))}  # noqa: C416
    out = [
        _Track(r.id, r.duration_ms, r.album_id, tuple(credits[r.id]), frozenset(tags[r.id]))
        for r in rows
        if credits[r.id]
    ]
    return out, names


def _favourites(rng: random.Random, pool: Sequence[_Track]) -> tuple[list[_Track], list[str]]:
    """The group's tracks, most favoured first: its 2-3 favourite artists' tracks, then the rest of
    its genres'. Returns them and the favourite artists."""
    counts = Counter(t.artist_ids[0] for t in pool)
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    fav_artists = rng.sample(ranked[:6], min(len(ranked), rng.choice((2, 3)), 6))
    first = [t for t in pool if t.artist_ids[0] in fav_artists]
    rest = [t for t in pool if t.artist_ids[0] not in fav_artists]
    rng.shuffle(first)
    rng.shuffle(rest)
    # Favourite artists' tracks by the artist's rank, interleaved so every favourite is near the top.
    first.sort(key=lambda t: fav_artists.index(t.artist_ids[0]))
    return first + rest, fav_artists


def _plan(
    rng: random.Random,
    user_id: str,
    favourites: Sequence[_Track],
    fav_artists: Sequence[str],
    pool: Sequence[_Track],
    catalog: Sequence[_Track],
    *,
    now: dt.datetime,
    days: int,
    playlist_name: str,
) -> _Plan:
    plan = _Plan(user_id, playlist_name=playlist_name)
    # A personal order: the group's favourites, a few neighbours swapped (tastes alike, not equal).
    order = list(favourites)
    for _ in range(len(order) // 4):
        i = rng.randrange(len(order) - 1)
        order[i], order[i + 1] = order[i + 1], order[i]
    weights = [1.0 / (i + 1) ** 1.1 for i in range(len(order))]
    in_taste = {t.id for t in pool}
    outside = [t for t in catalog if t.id not in in_taste] or list(catalog)
    span = dt.timedelta(days=days).total_seconds()
    start = now - dt.timedelta(days=days)
    n_plays = rng.randint(80, 200)
    times = sorted(start + dt.timedelta(seconds=rng.uniform(0, span - 600)) for _ in range(n_plays))
    picks = rng.choices(order, weights=weights, k=n_plays)
    heard: Counter[str] = Counter()
    first_heard: dict[str, dt.datetime] = {}
    for at, pick in zip(times, picks, strict=True):
        track = rng.choice(outside) if rng.random() < NOISE else pick
        plan.plays.append(ImportedPlay(track.id, at, _heard_ms(rng, track.duration_ms)))
        if track.id in in_taste:
            heard[track.id] += 1
            first_heard.setdefault(track.id, at)
    by_id = {t.id: t for t in favourites}
    loved = sorted(heard, key=lambda t: (-heard[t], t))
    for track_id in loved[: rng.randint(8, 12)]:
        plan.likes.append((track_id, _after(rng, first_heard[track_id], now)))
    album_ids = list(dict.fromkeys(by_id[t].album_id for t in loved))
    for album_id in album_ids[: rng.randint(1, 2)]:
        plan.saves.append((album_id, _after(rng, start, now)))
    artist_plays = Counter(by_id[t].artist_ids[0] for t in heard.elements())
    followed = sorted((a for a in fav_artists if artist_plays[a]), key=lambda a: (-artist_plays[a], a))
    for artist_id in followed[: rng.randint(1, 2)]:
        plan.follows.append((artist_id, _after(rng, start, now)))
    plan.playlist = loved[: rng.randint(6, 12)]
    for n in range(rng.randint(3, 8)):  # early skips of what is not to their taste
        track = rng.choice(outside)
        at = start + dt.timedelta(seconds=rng.uniform(0, span))
        played = rng.randint(2_000, 20_000)
        plan.skips.append(
            {
                "user_id": user_id,
                "id": f"planted-skip-{n}",
                "track_id": track.id,
                "started_at": at,
                "updated_at": at + dt.timedelta(milliseconds=played),
                "ms_played": played,
                "startup_ms": rng.randint(80, 400),
                "counted": False,
            }
        )
    return plan


def _heard_ms(rng: random.Random, duration_ms: int) -> int:
    """Mostly the whole track (a second or so short); now and then stopped part-way, past the 30 s
    (or, for a short track, most-of-it) that makes a play count."""
    threshold = min(PLAY_THRESHOLD_MS, max(1000, duration_ms - 1000))
    if rng.random() < 0.85:
        return max(threshold, duration_ms - rng.randint(0, 1500))
    return rng.randint(threshold, max(threshold, duration_ms))


def _after(rng: random.Random, moment: dt.datetime, now: dt.datetime) -> dt.datetime:
    return moment + (now - moment) * rng.uniform(0.0, 0.5)


def _account(
    user_id: str, email: str, group: int, n: int, password_hash: str, created: dt.datetime
) -> dict[str, object]:
    """A `users` row as sign-up writes it."""
    return {
        "id": user_id,
        "email": email,
        "display_name": f"Taste {group}-{n}",
        "password_hash": password_hash,
        "birth_date": None,
        "country": None,
        "role": "listener",
        "product": "free",
        "token_version": 0,
        "created_at": created,
        "updated_at": created,
    }


def _existing_accounts(c: Container, emails: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    with c.db.read() as conn:
        for i in range(0, len(emails), 500):
            chunk = emails[i : i + 500]
            out.update(
                (e, u)
                for e, u in conn.execute(sa.select(users.c.email, users.c.id).where(users.c.email.in_(chunk)))
            )
    return out


def _planted(c: Container, user_ids: list[str]) -> set[str]:
    out: set[str] = set()
    with c.db.read() as conn:
        for i in range(0, len(user_ids), 500):
            out.update(
                conn.execute(
                    sa.select(playlists.c.owner_id).where(
                        playlists.c.owner_id.in_(user_ids[i : i + 500]),
                        playlists.c.description == PLANTED_NOTE,
                    )
                ).scalars()
            )
    return out


def _write_library(c: Container, plans: Sequence[_Plan], now: dt.datetime, report: PlantReport) -> None:
    """Early skips, likes, saved albums and follows, in one transaction, dated in the past (the
    library's own calls date them now). Follower counts move as LibraryService.follow moves them."""
    likes = [{"user_id": p.user_id, "track_id": t, "added_at": at} for p in plans for t, at in p.likes]
    saves = [{"user_id": p.user_id, "album_id": a, "added_at": at} for p in plans for a, at in p.saves]
    follows = [
        {"user_id": p.user_id, "artist_id": a, "followed_at": at} for p in plans for a, at in p.follows
    ]
    skips = [s for p in plans for s in p.skips]
    added: list[str] = []
    with c.db.write() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        for table, rows in ((track_likes, likes), (album_saves, saves), (playbacks, skips)):
            if rows:
                conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)
        if follows:
            added = list(
                conn.execute(
                    dialect.insert(artist_follows)
                    .on_conflict_do_nothing()
                    .returning(artist_follows.c.artist_id),
                    follows,
                )
                .scalars()
                .all()
            )
            for artist_id, n in sorted(Counter(added).items()):
                conn.execute(
                    sa.update(artists)
                    .where(artists.c.id == artist_id)
                    .values(followers=artists.c.followers + n)
                )
    c.catalog.artists_changed(sorted(set(added)))  # their follower counts moved
    report.likes, report.album_saves, report.follows, report.skips = (
        len(likes),
        len(saves),
        len(follows),
        len(skips),
    )
