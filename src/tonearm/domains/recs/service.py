"""Recommendations served: seeded lists (Spotify's /v1/recommendations), radio, the home feed,
and the playlists made for each listener (Discover Weekly, Daily Mixes).

Every process serves the newest `ready` model (rec_models; looked for again every
`MODEL_CHECK_S`), loaded from the blob store. A listener's signals are read fresh (kept
`SIGNALS_TTL_S`), and their vector is solved from them on each request (model.user_vector), so a
like or a play shows in their recommendations within that time, without retraining. Tracks a
listener may not see are filtered by the catalog on the way out (a public track made private
after training included). Before any model exists, lists fall back to SQL popularity.

What is personal follows the plan's `personalised` feature (entitlements): everyone gets seeded
recommendations, radio, popularity and genre shelves, "jump back in" and new releases from
followed artists; the listener's own taste (blend, Made for you, Because you liked, Discover
Weekly, Daily Mixes) needs the feature.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
import structlog

from tonearm.domains.catalog.service import CatalogService
from tonearm.domains.catalog.tables import artists, genres, track_artists, track_genres, tracks
from tonearm.domains.entitlements.service import EntitlementService
from tonearm.domains.history.tables import plays
from tonearm.domains.library.playlists import PlaylistService
from tonearm.domains.library.service import LibraryService
from tonearm.domains.library.tables import playlists
from tonearm.domains.recs import model as m
from tonearm.domains.recs import tunables as tun
from tonearm.domains.recs.model import RecModel
from tonearm.domains.recs.signals import FOLLOW, UserSignals, confidence, user_signals
from tonearm.domains.recs.tables import rec_hidden, rec_models
from tonearm.domains.recs.trainer import Trainer
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Forbidden, NotFound
from tonearm.kernel.ids import is_valid_id
from tonearm.kernel.paging import check_window, page
from tonearm.ports.blobs import BlobStore
from tonearm.ports.jobs import JobQueue

log = structlog.get_logger("tonearm.recs")
Obj = dict[str, Any]

TRAIN_JOB = "recs.train"
PLAYLISTS_JOB = "recs.playlists"
MODEL_CHECK_S = 15.0
SIGNALS_TTL_S = 30.0
MAX_SEEDS = 5
MAX_LIMIT = 100
DISCOVER_SIZE = 30
MIX_SIZE = 50
MAX_MIXES = 4
SHELF_SIZE = 12
FOLLOWS_USED = 20  # the newest follows that count as taste
FOLLOW_TRACKS = 10  # ... through each artist's most popular tracks
PERSONAL_POOL = 2000  # seeded lists: how many of the seeds' best the listener's taste re-ranks
RADIO_DEPTH = 1000  # how far a radio station goes before it has played the catalog's best matches
PERSONAL = "personalised"


@dataclass
class Seeds:
    tracks: list[str]
    artists: list[str]
    genres: list[str]

    @property
    def count(self) -> int:
        return len(self.tracks) + len(self.artists) + len(self.genres)


def _split(value: str | None, field: str) -> list[str]:
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if any(not v for v in items):
        raise BadRequest(f"{field}: empty item in the comma-separated list")
    if len(set(items)) != len(items):
        raise BadRequest(f"{field}: the same seed is given twice")
    return items


def parse_seeds(seed_tracks: str | None, seed_artists: str | None, seed_genres: str | None) -> Seeds:
    seeds = Seeds(
        _split(seed_tracks, "seed_tracks"),
        _split(seed_artists, "seed_artists"),
        _split(seed_genres, "seed_genres"),
    )
    if seeds.count == 0:
        raise BadRequest("give at least one seed: seed_tracks, seed_artists or seed_genres")
    if seeds.count > MAX_SEEDS:
        raise BadRequest(
            f"at most {MAX_SEEDS} seeds in all (seed_tracks, seed_artists, seed_genres), not {seeds.count}"
        )
    for field, ids in (("seed_tracks", seeds.tracks), ("seed_artists", seeds.artists)):
        for i in ids:
            if not is_valid_id(i):
                raise BadRequest(f"{field}: invalid id {i[:40]!r}: ids are 22 base-62 characters")
    return seeds


class RecsService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobQueue,
        clock: Clock,
        catalog: CatalogService,
        library: LibraryService,
        playlists: PlaylistService,
        entitlements: EntitlementService,
        public_url: str,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.clock = clock
        self.catalog = catalog
        self.library = library
        self.playlist_service = playlists
        self.entitlements = entitlements
        self.public_url = public_url.rstrip("/")
        self.trainer = Trainer(db, blobs, clock)
        self._model: RecModel | None = None
        self._model_checked = 0.0
        self._model_lock = threading.Lock()
        self._signals: OrderedDict[str, tuple[float, UserSignals]] = OrderedDict()
        self._signals_lock = threading.Lock()

    # Model and signals --------------------------------------------------------------------------
    def model(self) -> RecModel | None:
        now = time.monotonic()
        if now - self._model_checked < MODEL_CHECK_S:
            return self._model
        with self._model_lock:
            if now - self._model_checked < MODEL_CHECK_S:
                return self._model
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(rec_models.c.id, rec_models.c.blob_prefix)
                    .where(rec_models.c.status == "ready")
                    .order_by(rec_models.c.finished_at.desc(), rec_models.c.id.desc())
                    .limit(1)
                ).first()
            if row is not None and (self._model is None or self._model.version != row.id):
                try:
                    with self.blobs.open(f"{row.blob_prefix}/model.npz") as f:
                        self._model = RecModel.from_bytes(f.read())
                    log.info("recs.model_loaded", model_id=row.id, items=self._model.n_items)
                except Exception:  # keep serving the previous one; try again next check
                    log.exception("recs.model_load_failed", model_id=row.id)
            self._model_checked = time.monotonic()
            return self._model

    def reload(self) -> None:
        """Look for a newer model on the next request (after a training run in this process)."""
        self._model_checked = 0.0

    def signals(self, user_id: str) -> UserSignals:
        now = time.monotonic()
        with self._signals_lock:
            hit = self._signals.get(user_id)
            if hit is not None and hit[0] > now:
                return hit[1]
        with self.db.read() as conn:
            s = user_signals(conn, user_id, now=self.clock.now())
        with self._signals_lock:
            self._signals[user_id] = (now + SIGNALS_TTL_S, s)
            self._signals.move_to_end(user_id)
            while len(self._signals) > 20_000:
                self._signals.popitem(last=False)
        return s

    def forget(self, user_id: str) -> None:
        """Drop a listener's cached signals (their next request reads them again)."""
        with self._signals_lock:
            self._signals.pop(user_id, None)

    def _confidences(self, model: RecModel, s: UserSignals) -> dict[int, float]:
        """The listener's confidences, plus their follows: each followed artist's most popular
        tracks count as a light "yes" where the listener said nothing stronger about them (a new
        listener who follows a few artists is no longer a blank page)."""
        conf = s.confidences(model.index)
        light = confidence(FOLLOW)
        for artist_id in s.followed_artists[:FOLLOWS_USED]:
            k = model.artist_index.get(artist_id)
            if k is None:
                continue
            items = model.artist_items(k)
            for i in items[np.argsort(-model.popularity[items], kind="stable")[:FOLLOW_TRACKS]]:
                conf.setdefault(int(i), light)
        return conf

    def personalised(self, user_id: str) -> bool:
        return PERSONAL in self.entitlements.for_user(user_id).features

    # Output helpers ------------------------------------------------------------------------------
    def _tracks(self, ids: Sequence[str], viewer_id: str, limit: int) -> list[orjson.Fragment]:
        """The first `limit` of these tracks the viewer may see, as track objects. Asks the catalog
        for a few more than `limit` first (most are visible), then for the rest if needed."""
        out: list[orjson.Fragment] = []
        start = 0
        while start < len(ids) and len(out) < limit:
            chunk = list(ids[start : start + (limit - len(out)) + 4])
            start += len(chunk)
            for j in self.catalog.tracks_json(chunk, viewer_id):
                if j is not None:
                    out.append(orjson.Fragment(j))
                    if len(out) == limit:
                        break
        return out

    def _ranked_ids(self, model: RecModel, ranked: Sequence[int]) -> list[str]:
        return [model.item_ids[i] for i in ranked]

    def _exclusions(self, model: RecModel, s: UserSignals | None, *, known: bool, recent: bool) -> set[int]:
        if s is None:
            return set()
        ids = set(s.disliked)
        if known:
            ids |= {t for t, w in s.weights.items() if w > 0}
        if recent:
            ids |= set(s.recent)
        return {model.index[t] for t in ids if t in model.index}

    # Personal lists -------------------------------------------------------------------------------
    def personal_ids(self, user_id: str, *, limit: int, known: bool = False, offset: int = 0) -> list[str]:
        """The listener's own blend, best first, diversified (ids; not yet visibility-checked)."""
        model = self.model()
        s = self.signals(user_id)
        if model is None:
            return self._popular_ids(user_id, limit=limit + offset, exclude=s.disliked | set(s.recent))[
                offset:
            ]
        scores, _used = model.blend(self._confidences(model, s))
        exclude = self._exclusions(model, s, known=not known, recent=True)
        ranked = m.top_items(scores, n=(limit + offset) * 3 + 20, exclude=exclude)
        return self._ranked_ids(model, _diverse(model, ranked, limit + offset))[offset:]

    def _popular_ids(
        self,
        viewer_id: str,
        *,
        limit: int,
        exclude: set[str],
        genre: int | None = None,
        where: Sequence[sa.ColumnElement[bool]] = (),
    ) -> list[str]:
        """Most played tracks (all time), from SQL: what serves before any model is trained."""
        q = (
            sa.select(tracks.c.id)
            .where(tracks.c.status == "ready", tracks.c.visibility == "public", *where)
            .order_by(tracks.c.play_count.desc(), tracks.c.id)
            .limit(limit + len(exclude))
        )
        if genre is not None:
            q = q.where(
                tracks.c.id.in_(sa.select(track_genres.c.track_id).where(track_genres.c.genre_id == genre))
            )
        with self.db.read() as conn:
            return [t for t in conn.execute(q).scalars() if t not in exclude][:limit]

    # Seeded recommendations (Spotify's shape) ----------------------------------------------------
    def recommendations(
        self, viewer_id: str, seeds: Seeds, *, limit: int, tunables: Sequence[tun.Tunable] = ()
    ) -> Obj:
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}")
        resolved = self._resolve_seeds(viewer_id, seeds)
        model = self.model()
        s = self.signals(viewer_id)
        seed_track_ids = set(seeds.tracks)
        if model is None:
            ids = self._popular_seeded(
                viewer_id,
                resolved,
                limit=limit * 2,
                exclude=s.disliked | seed_track_ids,
                where=tun.sql_filter(tunables),
            )
        else:
            scores = self._seed_scores(model, resolved)
            mask = tun.allowed(model.attrs, tunables)
            penalty = tun.penalty(model.attrs, tunables)
            if penalty is not None:
                scores = scores - penalty
            if mask is not None:
                scores = np.where(mask, scores, -np.inf).astype(np.float32)
                for seed in resolved:
                    seed.filtered = min(seed.pool, int(np.count_nonzero(mask & (seed.scores > 0))))
            exclude = self._exclusions(model, s, known=False, recent=True)
            exclude |= {model.index[t] for t in seed_track_ids if t in model.index}
            if self.personalised(viewer_id) and s.has_taste:
                # The listener's taste re-ranks the seeds' best 2,000 (scoring every track for it
                # too would double the arithmetic for the same top 20).
                pool = np.asarray(m.top_items(scores, n=PERSONAL_POOL, exclude=exclude), dtype=np.int64)
                personal, used = model.blend(self._confidences(model, s), items=pool)
                if "collaborative" in used or "content" in used:
                    base = scores[pool]
                    scores = np.full(model.n_items, -np.inf, dtype=np.float32)
                    scores[pool] = base + 0.35 * personal
            ranked = m.top_items(scores, n=limit * 3 + 20, exclude=exclude)
            ids = self._ranked_ids(model, _diverse(model, ranked, limit))
        items = self._tracks(ids, viewer_id, limit)
        return {"seeds": [self._seed_obj(r, model) for r in resolved], "tracks": items}

    def _resolve_seeds(self, viewer_id: str, seeds: Seeds) -> list[_Seed]:
        out: list[_Seed] = []
        with self.db.read() as conn:
            for t in seeds.tracks:
                if self.catalog.tracks_json([t], viewer_id)[0] is None:
                    raise BadRequest(f"seed_tracks: no track {t!r} (or not one you can see)")
                arts = list(
                    conn.execute(
                        sa.select(track_artists.c.artist_id).where(track_artists.c.track_id == t)
                    ).scalars()
                )
                gens = conn.execute(
                    sa.select(genres.c.id, genres.c.slug)
                    .join(track_genres, track_genres.c.genre_id == genres.c.id)
                    .where(track_genres.c.track_id == t)
                ).all()
                out.append(
                    _Seed(
                        "TRACK", t, artists=arts, genre_ids=[g.id for g in gens], slugs=[g.slug for g in gens]
                    )
                )
            for a in seeds.artists:
                if conn.execute(sa.select(artists.c.id).where(artists.c.id == a)).first() is None:
                    raise BadRequest(f"seed_artists: no artist {a!r}")
                out.append(_Seed("ARTIST", a, artists=[a]))
            for g in seeds.genres:
                gid = conn.execute(sa.select(genres.c.id).where(genres.c.slug == g.lower())).scalar()
                if gid is None:
                    raise BadRequest(
                        f"seed_genres: unknown genre {g[:40]!r}; "
                        "see /v1/recommendations/available-genre-seeds"
                    )
                out.append(_Seed("GENRE", g.lower(), genre_ids=[gid], slugs=[g.lower()]))
        return out

    def _seed_scores(self, model: RecModel, resolved: Sequence[_Seed]) -> m.F32:
        total = np.zeros(model.n_items, dtype=np.float32)
        for seed in resolved:
            total += self._one_seed(model, seed)
        total /= max(1, len(resolved))
        return total + 0.25 * model.popularity_z

    def _one_seed(self, model: RecModel, seed: _Seed) -> m.F32:
        items: list[int] = []
        if seed.type == "TRACK" and seed.id in model.index:
            items = [model.index[seed.id]]
        elif seed.type in ("TRACK", "ARTIST"):
            for a in seed.artists:
                if a in model.artist_index:
                    items.extend(int(i) for i in model.artist_items(model.artist_index[a])[:50])
        genre_cols = [model.genre_index[s] for s in seed.slugs if s in model.genre_index]
        score = np.zeros(model.n_items, dtype=np.float32)
        if items:
            score += m._standardise(model.similar_to_items(items))
        if seed.type == "ARTIST" and seed.id in model.artist_index:
            score += 0.75 * (model.item_artist == model.artist_index[seed.id]).astype(np.float32)
        if genre_cols:
            members = np.zeros(model.n_items, dtype=np.float32)
            for j in genre_cols:
                members = np.maximum(members, model.genre_members(j))
            score += (1.5 if seed.type == "GENRE" else 0.5) * members
        seed.pool = int(np.count_nonzero(score > 0)) if (items or genre_cols) else 0
        seed.filtered = seed.pool
        seed.scores = score
        return score

    def _popular_seeded(
        self,
        viewer_id: str,
        resolved: Sequence[_Seed],
        *,
        limit: int,
        exclude: set[str],
        where: Sequence[sa.ColumnElement[bool]] = (),
    ) -> list[str]:
        out: list[str] = []
        for seed in resolved:
            gids: list[int | None] = list(seed.genre_ids) or [None]
            for gid in gids:
                out.extend(
                    self._popular_ids(
                        viewer_id, limit=limit, exclude=exclude | set(out), genre=gid, where=where
                    )
                )
        return out[: limit * 2]

    def _seed_obj(self, seed: _Seed, model: RecModel | None) -> Obj:
        kind = seed.type.lower()
        href = None if seed.type == "GENRE" else f"{self.public_url}/v1/{kind}s/{seed.id}"
        pool = seed.pool if model is not None else 0
        filtered = seed.filtered if model is not None else 0
        return {
            "afterFilteringSize": filtered,
            "afterRelinkingSize": filtered,
            "href": href,
            "id": seed.id,
            "initialPoolSize": pool,
            "type": seed.type,
        }

    # Radio ------------------------------------------------------------------------------------------
    def radio(self, viewer_id: str, seed_uri: str, *, limit: int, offset: int) -> Obj:
        """An endless station from one seed (track, artist or genre): pages of a ranking that does
        not move while the listener plays it (what they skip or hide drops out)."""
        check_window(limit, offset, max_limit=50)
        parts = seed_uri.split(":")
        if (
            len(parts) != 3
            or parts[0] not in ("tonearm", "spotify")
            or parts[1] not in ("track", "artist", "genre")
        ):
            raise BadRequest("seed: give tonearm:track:<id>, tonearm:artist:<id> or tonearm:genre:<slug>")
        kind, ident = parts[1], parts[2]
        seeds = Seeds(
            [ident] if kind == "track" else [],
            [ident] if kind == "artist" else [],
            [ident] if kind == "genre" else [],
        )
        if kind != "genre" and not is_valid_id(ident):
            raise BadRequest(f"seed: invalid {kind} id {ident[:40]!r}: ids are 22 base-62 characters")
        resolved = self._resolve_seeds(viewer_id, seeds)
        model = self.model()
        s = self.signals(viewer_id)
        depth = min(RADIO_DEPTH, offset + limit * 3)
        if model is None:
            ids = self._popular_seeded(
                viewer_id, resolved, limit=depth, exclude=s.disliked | set(seeds.tracks)
            )
            total = len(ids)
        else:
            scores = self._seed_scores(model, resolved)
            exclude = self._exclusions(model, s, known=False, recent=False)
            exclude |= {model.index[t] for t in seeds.tracks if t in model.index}
            ranked = m.top_items(scores, n=RADIO_DEPTH + 100, exclude=exclude)
            ids = self._ranked_ids(model, _spread(ranked, model.item_artist))[:RADIO_DEPTH]
            total = len(ids)
        window = ids[offset : offset + limit * 2]
        items = self._tracks(window, viewer_id, limit)
        base = f"{self.public_url}/v1/radio"
        nxt = offset + limit if offset + limit < total else None
        return {
            "href": f"{base}?seed={seed_uri}&offset={offset}&limit={limit}",
            "items": items,
            "limit": limit,
            "next": f"{base}?seed={seed_uri}&offset={nxt}&limit={limit}" if nxt is not None else None,
            "offset": offset,
            "previous": f"{base}?seed={seed_uri}&offset={max(0, offset - limit)}&limit={limit}"
            if offset
            else None,
            "total": total,
            "seed": self._seed_obj(resolved[0], model),
        }

    # Home -----------------------------------------------------------------------------------------------
    def home(self, user_id: str) -> Obj:
        personal = self.personalised(user_id)
        s = self.signals(user_id)
        model = self.model()
        shelves: list[Obj] = []
        if personal and s.has_taste:
            made = self.made_for_you(user_id)
            if made:
                shelves.append(
                    _shelf(
                        "made-for-you",
                        "Made for you",
                        "playlists",
                        made,
                        "Playlists made from your listening",
                    )
                )
            picks = self._tracks(self.personal_ids(user_id, limit=SHELF_SIZE), user_id, SHELF_SIZE)
            if picks:
                shelves.append(
                    _shelf(
                        "recommended", "Recommended for you", "tracks", picks, "From what you play and like"
                    )
                )
            because = self._because_you_liked(user_id, s, model)
            if because is not None:
                shelves.append(because)
        jump = self._jump_back_in(user_id)
        if jump:
            shelves.append(_shelf("jump-back-in", "Jump back in", "mixed", jump, "What you played lately"))
        releases = self.library.release_feed(user_id, limit=SHELF_SIZE, offset=0)["items"]
        if releases:
            shelves.append(
                _shelf(
                    "new-from-followed",
                    "New from artists you follow",
                    "albums",
                    releases,
                    "Newest releases first",
                )
            )
        for gid, name in self._top_genres(user_id, s, model, n=2):
            ids = self._genre_popular(model, user_id, gid, name, s)
            items = self._tracks(ids, user_id, SHELF_SIZE)
            if items:
                shelves.append(
                    _shelf(f"popular-in-{gid}", f"Popular in {name}", "tracks", items, f"Most played {name}")
                )
        if not any(sh["id"].startswith("popular-in") for sh in shelves) or not s.has_taste:
            ids = self._global_popular(model, user_id, s)
            items = self._tracks(ids, user_id, SHELF_SIZE)
            if items:
                shelves.append(
                    _shelf("popular", "Popular right now", "tracks", items, "Most played on this server")
                )
        notice = None
        if not personal:
            notice = (
                "Personal recommendations (Made for you, Discover Weekly, Daily Mixes) come with Premium."
            )
        elif not s.has_taste:
            notice = "Play, like or follow a few things and this page learns your taste."
        return {
            "personalised": personal and s.has_taste,
            "notice": notice,
            "model": None if model is None else {"version": model.version},
            "shelves": shelves,
        }

    def _because_you_liked(self, user_id: str, s: UserSignals, model: RecModel | None) -> Obj | None:
        if model is None:
            return None
        liked = [t for t, w in sorted(s.weights.items(), key=lambda kv: -kv[1]) if w > 0 and t in model.index]
        if not liked:
            return None
        anchor = next((t for t in s.recent if t in model.index and s.weights.get(t, 0) > 0), liked[0])
        scores = model.similar_to_items([model.index[anchor]])
        exclude = self._exclusions(model, s, known=True, recent=True) | {model.index[anchor]}
        ranked = _diverse(model, m.top_items(scores, n=SHELF_SIZE * 4, exclude=exclude), SHELF_SIZE)
        items = self._tracks(self._ranked_ids(model, ranked), user_id, SHELF_SIZE)
        anchor_obj = self.catalog.tracks_json([anchor], user_id)[0]
        if not items or anchor_obj is None:
            return None
        name = orjson.loads(anchor_obj)["name"]
        return {
            **_shelf(
                "because-you-liked",
                f"Because you liked {name}",
                "tracks",
                items,
                "Similar listeners and sound",
            ),
            "seed": orjson.Fragment(anchor_obj),
        }

    def _jump_back_in(self, user_id: str) -> list[orjson.Fragment]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(plays.c.context_uri, plays.c.track_id)
                .where(plays.c.user_id == user_id)
                .order_by(plays.c.played_at.desc())
                .limit(200)
            ).all()
            album_of = {
                r.id: r.album_id
                for r in conn.execute(
                    sa.select(tracks.c.id, tracks.c.album_id).where(
                        tracks.c.id.in_({r.track_id for r in rows})
                    )
                )
            }
        seen: list[tuple[str, str]] = []
        for r in rows:
            kind, ident = _context(r.context_uri)
            if kind is None:
                kind, ident = "album", album_of.get(r.track_id, "")
            if ident and (kind, ident) not in seen:
                seen.append((kind, ident))
            if len(seen) == 8:
                break
        out: list[orjson.Fragment] = []
        for kind, ident in seen:
            j: bytes | None = None
            if kind == "album":
                j = self.catalog.albums_json([ident])[0]
            elif kind == "artist":
                j = self.catalog.artists_json([ident])[0]
            elif kind == "playlist":
                try:
                    j = orjson.dumps(self.playlist_service.playlist(ident, user_id))
                except (NotFound, Forbidden):
                    j = None
            if j is not None:
                out.append(orjson.Fragment(j))
        return out

    def _top_genres(
        self, user_id: str, s: UserSignals, model: RecModel | None, *, n: int
    ) -> list[tuple[int, str]]:
        with self.db.read() as conn:
            by_slug = {
                g.slug: (g.id, g.name)
                for g in conn.execute(sa.select(genres.c.id, genres.c.slug, genres.c.name))
            }
        if model is not None:
            liked = [model.index[t] for t, w in s.weights.items() if w > 0 and t in model.index]
            if liked:
                weight = np.asarray(model.item_genres[liked].sum(axis=0)).ravel()
            else:
                weight = np.asarray(model.item_genres.T @ model.popularity).ravel()
            order = [int(j) for j in np.argsort(-weight) if weight[j] > 0][:n]
            return [by_slug[model.genre_slugs[j]] for j in order if model.genre_slugs[j] in by_slug]
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(genres.c.id, genres.c.name)
                .join(track_genres, track_genres.c.genre_id == genres.c.id)
                .join(tracks, tracks.c.id == track_genres.c.track_id)
                .group_by(genres.c.id, genres.c.name)
                .order_by(sa.func.sum(tracks.c.play_count).desc(), genres.c.id)
                .limit(n)
            ).all()
        return [(r.id, r.name) for r in rows]

    def _genre_popular(
        self, model: RecModel | None, user_id: str, gid: int, name: str, s: UserSignals
    ) -> list[str]:
        if model is None:
            return self._popular_ids(user_id, limit=SHELF_SIZE * 2, exclude=s.disliked, genre=gid)
        with self.db.read() as conn:
            slug = conn.execute(sa.select(genres.c.slug).where(genres.c.id == gid)).scalar_one()
        j = model.genre_index.get(slug)
        if j is None:
            return []
        members = model.genre_members(j) > 0
        exclude = self._exclusions(model, s, known=False, recent=False)
        ranked = m.top_items(model.popularity, n=SHELF_SIZE * 4, exclude=exclude, allowed=members)
        return self._ranked_ids(model, _diverse(model, ranked, SHELF_SIZE))

    def _global_popular(self, model: RecModel | None, user_id: str, s: UserSignals) -> list[str]:
        if model is None:
            return self._popular_ids(user_id, limit=SHELF_SIZE * 2, exclude=s.disliked)
        exclude = self._exclusions(model, s, known=False, recent=False)
        ranked = m.top_items(model.popularity, n=SHELF_SIZE * 4, exclude=exclude)
        return self._ranked_ids(model, _diverse(model, ranked, SHELF_SIZE))

    # Made for you: Discover Weekly and Daily Mixes --------------------------------------------------
    def made_for_you(self, user_id: str) -> list[orjson.Fragment]:
        """The listener's generated playlists, remade when stale (weekly / daily)."""
        if not self.personalised(user_id):
            return []
        self.refresh_playlists(user_id)
        with self.db.read() as conn:
            ids = list(
                conn.execute(
                    sa.select(playlists.c.id)
                    .where(playlists.c.owner_id == user_id, playlists.c.generator.is_not(None))
                    .order_by(playlists.c.generator != "discover_weekly", playlists.c.generator)
                ).scalars()
            )
        return [
            orjson.Fragment(j) for j in self.playlist_service.simplified_json(ids, user_id) if j is not None
        ]

    def refresh_playlists(self, user_id: str, *, force: bool = False) -> dict[str, int]:
        """Remakes Discover Weekly when it predates this week (Monday, UTC) and the Daily Mixes
        when they predate today; returns the sizes written."""
        now = self.clock.now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        monday = today - dt.timedelta(days=today.weekday())
        existing = self._generated(user_id)
        written: dict[str, int] = {}
        s = self.signals(user_id)
        if not s.has_taste:
            return written
        dw = existing.get("discover_weekly")
        if force or dw is None or dw[1] < monday:
            ids = self._discover_ids(user_id)
            if ids:
                self._write_generated(
                    user_id,
                    "discover_weekly",
                    "Discover Weekly",
                    f"Thirty tracks you have not heard yet, picked for you. Made {today:%Y-%m-%d}; "
                    "new every Monday.",
                    ids,
                    existing,
                )
                written["discover_weekly"] = len(ids)
        mixes = [g for g in existing if g.startswith("daily_mix_")]
        if force or not mixes or any(existing[g][1] < today for g in mixes):
            made = self._daily_mixes(user_id)
            for n, (title, desc, ids) in enumerate(made, start=1):
                self._write_generated(user_id, f"daily_mix_{n}", title, desc, ids, existing)
                written[f"daily_mix_{n}"] = len(ids)
            for g in mixes:
                if g not in written:
                    self.playlist_service.unfollow(user_id, existing[g][0])
        return written

    def _generated(self, user_id: str) -> dict[str, tuple[str, dt.datetime]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(playlists.c.id, playlists.c.generator, playlists.c.updated_at).where(
                    playlists.c.owner_id == user_id, playlists.c.generator.is_not(None)
                )
            ).all()
        return {r.generator: (r.id, r.updated_at) for r in rows}

    def _write_generated(
        self,
        user_id: str,
        generator: str,
        name: str,
        description: str,
        ids: list[str],
        existing: dict[str, tuple[str, dt.datetime]],
    ) -> None:
        ids = [t for t, j in zip(ids, self.catalog.tracks_json(ids, user_id), strict=True) if j is not None]
        playlist_id = existing[generator][0] if generator in existing else None
        if playlist_id is not None:
            try:
                self.playlist_service.change_details(user_id, playlist_id, name=name, description=description)
            except NotFound:  # the listener deleted it meanwhile: make it again
                playlist_id = None
        if playlist_id is None:
            created = self.playlist_service.create(user_id, name=name, description=description, public=False)
            try:
                with self.db.write() as conn:
                    conn.execute(
                        playlists.update().where(playlists.c.id == created["id"]).values(generator=generator)
                    )
            except sa.exc.IntegrityError:
                # Another request (or the playlists job) made it first: (owner, generator) is
                # unique. Theirs stands; ours goes.
                self.playlist_service.unfollow(user_id, created["id"])
                return
            playlist_id = created["id"]
        self.playlist_service.replace(user_id, playlist_id, ids)

    def _discover_ids(self, user_id: str) -> list[str]:
        ids = self.personal_ids(user_id, limit=DISCOVER_SIZE * 2)
        return [o["id"] for o in map(orjson.loads, (f for f in self.catalog.tracks_json(ids, user_id) if f))][
            :DISCOVER_SIZE
        ]

    def _daily_mixes(self, user_id: str) -> list[tuple[str, str, list[str]]]:
        """One mix per taste cluster: k-means over the content vectors of what the listener likes
        most; each mix is a third favourites of that cluster and two thirds new tracks near it."""
        model = self.model()
        s = self.signals(user_id)
        if model is None:
            return []
        liked = sorted(
            ((model.index[t], w) for t, w in s.weights.items() if w > 0 and t in model.index),
            key=lambda x: -x[1],
        )[:200]
        if len(liked) < 3:
            return []
        idx = np.array([i for i, _ in liked])
        k = min(MAX_MIXES, max(1, len(liked) // 8))
        labels = m.kmeans(model.content[idx], k, seed=7)
        exclude = self._exclusions(model, s, known=True, recent=False)
        personal, _ = model.blend(self._confidences(model, s))
        mixes: list[tuple[int, str, str, list[str]]] = []
        for c in range(int(labels.max()) + 1):
            members = idx[labels == c]
            if len(members) < 2:
                continue
            favourites = [int(i) for i in members[: MIX_SIZE // 3]]
            scores = m._standardise(model.similar_to_items(list(members))) + 0.5 * personal
            fresh = m.top_items(scores, n=MIX_SIZE * 2, exclude=exclude | set(favourites))
            chosen = m.diversify(
                _interleave(favourites, fresh), model.item_artist, limit=MIX_SIZE, per_artist=8
            )
            ids = self._ranked_ids(model, chosen)
            names = self._artist_names(model, members)
            mixes.append((len(members), names, f"{', '.join(names.split(', ')[:3])} and more", ids))
        mixes.sort(key=lambda x: -x[0])
        return [(f"Daily Mix {n}", desc, ids) for n, (_, _names, desc, ids) in enumerate(mixes, start=1)]

    def _artist_names(self, model: RecModel, members: np.ndarray) -> str:
        counts: dict[int, int] = {}
        for i in members:
            a = int(model.item_artist[int(i)])
            counts[a] = counts.get(a, 0) + 1
        top = [model.artist_ids[a] for a, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:3]]
        names = [orjson.loads(j)["name"] for j in self.catalog.artists_json([a for a in top if a]) if j]
        return ", ".join(names) or "Your mix"

    def refresh_active(
        self, *, days: int = 14, after: str | None = None, batch: int = 200
    ) -> tuple[int, str | None]:
        """Remakes stale generated playlists for premium listeners who played in the last `days`,
        `batch` listeners at a time in id order; returns (done, the last id: the next cursor)."""
        since = self.clock.now() - dt.timedelta(days=days)
        with self.db.read() as conn:
            q = sa.select(plays.c.user_id).where(plays.c.played_at >= since).group_by(plays.c.user_id)
            if after:
                q = q.having(plays.c.user_id > after)
            users_ = list(conn.execute(q.order_by(plays.c.user_id).limit(batch)).scalars())
        done = 0
        for u in users_:
            if self.personalised(u):
                try:
                    self.refresh_playlists(u)
                    done += 1
                except Exception:  # one listener's failure must not stop everyone's Monday
                    log.exception("recs.refresh_failed", user_id=u)
        return done, (users_[-1] if len(users_) == batch else None)

    # "Not interested" ---------------------------------------------------------------------------------
    def hide(self, user_id: str, track_ids: list[str]) -> None:
        ids = self._check_ids(track_ids)
        now = self.clock.now()
        with self.db.write() as conn:
            present = set(conn.execute(sa.select(tracks.c.id).where(tracks.c.id.in_(ids))).scalars())
            missing = [
                t for t in ids if t not in present or self.catalog.tracks_json([t], user_id)[0] is None
            ]
            if missing:
                raise NotFound(f"no track {missing[0]!r} (or not one you can see)")
            have = set(
                conn.execute(
                    sa.select(rec_hidden.c.track_id).where(
                        rec_hidden.c.user_id == user_id, rec_hidden.c.track_id.in_(ids)
                    )
                ).scalars()
            )
            new = [{"user_id": user_id, "track_id": t, "hidden_at": now} for t in ids if t not in have]
            if new:
                conn.execute(rec_hidden.insert(), new)
        self.forget(user_id)

    def unhide(self, user_id: str, track_ids: list[str]) -> None:
        ids = self._check_ids(track_ids)
        with self.db.write() as conn:
            conn.execute(
                rec_hidden.delete().where(rec_hidden.c.user_id == user_id, rec_hidden.c.track_id.in_(ids))
            )
        self.forget(user_id)

    def hidden(self, user_id: str, *, limit: int, offset: int) -> Obj:
        check_window(limit, offset)
        with self.db.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(rec_hidden).where(rec_hidden.c.user_id == user_id)
            ).scalar_one()
            rows = conn.execute(
                sa.select(rec_hidden.c.track_id, rec_hidden.c.hidden_at)
                .where(rec_hidden.c.user_id == user_id)
                .order_by(rec_hidden.c.hidden_at.desc(), rec_hidden.c.track_id)
                .limit(limit)
                .offset(offset)
            ).all()
        objs = self.catalog.tracks_json([r.track_id for r in rows], user_id)
        items = [
            {"added_at": r.hidden_at.isoformat().replace("+00:00", "Z"), "track": orjson.Fragment(j)}
            for r, j in zip(rows, objs, strict=True)
            if j is not None
        ]
        return page(
            f"{self.public_url}/v1/me/recommendations/hidden", items, limit=limit, offset=offset, total=total
        )

    @staticmethod
    def _check_ids(track_ids: list[str]) -> list[str]:
        if not track_ids:
            raise BadRequest("ids: give at least one track id")
        if len(track_ids) > 50:
            raise BadRequest("ids: at most 50 at a time")
        for t in track_ids:
            if not is_valid_id(t):
                raise BadRequest(f"ids: invalid id {t[:40]!r}: ids are 22 base-62 characters")
        return list(dict.fromkeys(track_ids))

    # Training -------------------------------------------------------------------------------------------
    def queue_training(self, *, force: bool = False) -> Obj:
        """Creates (or finds) the run now and queues the job that works on it."""
        model_id, created = self.trainer.start(force=force)
        if created:
            with self.db.write() as conn:
                self.jobs.enqueue(
                    conn, TRAIN_JOB, {"model_id": model_id}, dedupe_key=f"{TRAIN_JOB}:{model_id}"
                )
        return self.run_status(model_id) | {"created": created}

    def train(
        self,
        *,
        model_id: str | None = None,
        force: bool = False,
        progress: Callable[[str, float], None] | None = None,
    ) -> Obj:
        """Runs training in this thread: a given run, or the one for the current data (a no-op
        when a ready model already covers it). Returns the run's status."""
        created = False
        if model_id is None:
            model_id, created = self.trainer.start(force=force)
        self.trainer.run(model_id, progress or (lambda _s, _f: None))  # resumes an unfinished run
        self.reload()
        return self.run_status(model_id) | {"created": created}

    def run_status(self, model_id: str) -> Obj:
        with self.db.read() as conn:
            row = conn.execute(sa.select(rec_models).where(rec_models.c.id == model_id)).first()
        if row is None:
            raise NotFound(f"no training run {model_id!r}")
        return _run_obj(row)

    def runs(self, *, limit: int = 20) -> Obj:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(rec_models).order_by(rec_models.c.created_at.desc()).limit(limit)
            ).all()
        current = self.model()
        return {"serving": None if current is None else current.version, "runs": [_run_obj(r) for r in rows]}


@dataclass
class _Seed:
    type: str  # TRACK | ARTIST | GENRE
    id: str
    artists: list[str] = dataclasses.field(default_factory=list)
    genre_ids: list[int] = dataclasses.field(default_factory=list)
    slugs: list[str] = dataclasses.field(default_factory=list)  # of genre_ids
    pool: int = 0
    filtered: int = 0
    scores: Any = None  # this seed's own scores (numpy), for the pool sizes after filtering


def _run_obj(row: Any) -> Obj:
    return {
        "id": row.id,
        "status": row.status,
        "stage": row.stage,
        "progress": row.progress,
        "stats": orjson.loads(row.stats) if row.stats else {},
        "error": row.error,
        "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        "finished_at": row.finished_at.isoformat().replace("+00:00", "Z") if row.finished_at else None,
    }


def _diverse(model: RecModel, ranked: Sequence[int], limit: int) -> list[int]:
    """`diversify` for a list that will show `limit` tracks: at most one in five by an artist.
    Twice as many come back, as the catalog may still drop some (no longer visible)."""
    return m.diversify(ranked, model.item_artist, limit=limit * 2, per_artist=max(1, -(-limit // 5)))


def _shelf(id_: str, title: str, type_: str, items: list[Any], reason: str) -> Obj:
    return {"id": id_, "title": title, "type": type_, "reason": reason, "items": items}


def _context(uri: str | None) -> tuple[str | None, str]:
    if not uri:
        return None, ""
    parts = uri.split(":")
    if len(parts) == 3 and parts[1] in ("album", "artist", "playlist") and is_valid_id(parts[2]):
        return parts[1], parts[2]
    return None, ""


def _interleave(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """One of `a` then two of `b`, and so on: familiar and new, mixed."""
    out: list[int] = []
    ia, ib = iter(a), iter(b)
    while True:
        took = False
        for src, n in ((ia, 1), (ib, 2)):
            for _ in range(n):
                x = next(src, None)
                if x is not None:
                    out.append(x)
                    took = True
        if not took:
            return out


def _spread(ranked: list[int], item_artist: np.ndarray) -> list[int]:
    """Radio order: never the same artist twice in a row when another choice is near."""
    out: list[int] = []
    pending = list(ranked)
    last = -1
    while pending:
        pick = next((k for k, i in enumerate(pending[:10]) if int(item_artist[i]) != last), 0)
        i = pending.pop(pick)
        out.append(i)
        last = int(item_artist[i])
    return out
