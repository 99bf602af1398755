"""Search in the Spotify Web API's shape, with failover to the database, and suggestions.

`search()` parses `q` once (`query.py`), asks the index for each result type and turns the ids it
answers into the catalog's objects. The index sits behind a circuit breaker (`breaker.py`): an
index call that fails or is slower than `slow_ms` counts as a failure and is answered from the
catalog's tables instead (`catalog/search_sql.py`: the same results without typo tolerance,
ranked by plays); after `failures` in a row the breaker opens and every search goes to the
database until, `reset_s` later, one search probes the index and closes it again. The breaker is
per process, and so is a cache of recent answers: the index's stay valid until the index changes
(its `version()`), the database's for `cache_ttl_s`. See docs/search.md.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast
from urllib.parse import quote_plus

import orjson
import structlog
from prometheus_client import Counter, Gauge, Histogram

from tonearm.domains.catalog.service import CatalogService
from tonearm.domains.search.breaker import CircuitBreaker
from tonearm.domains.search.query import parse
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock
from tonearm.kernel.errors import BadRequest, ServiceUnavailable
from tonearm.ports.search import Hits, IndexQuery, Kind, SearchIndex, genre_key

Backend = Literal["index", "database"]

BREAKER_OPEN = Gauge("tonearm_search_breaker_open", "1 while searches are answered from the database")
FAILOVERS = Counter("tonearm_search_failovers_total", "Times the search breaker opened (index -> database)")
QUERIES = Counter(
    "tonearm_search_queries_total",
    "Search queries by who answered: index, database, or cache (a recent answer still current)",
    ["backend"],
)
LATENCY = Histogram(
    "tonearm_search_query_seconds",
    "Search query latency by who answered",
    ["backend"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_QUERIES = {b: QUERIES.labels(b) for b in ("index", "database", "cache")}
_LATENCY = {b: LATENCY.labels(b) for b in ("index", "database")}

# Spotify's result types. Tonearm has no podcasts or audiobooks: asking for them is valid and
# answered with an empty paging object, so Spotify clients that ask for everything keep working.
TYPES: tuple[Kind, ...] = ("track", "artist", "album", "playlist")
EMPTY_TYPES = ("show", "episode", "audiobook")
MAX_LIMIT = 50
MAX_OFFSET = 1000  # Spotify's: no result past the 1,000th is reachable
DEFAULT_LIMIT = 20
SUGGEST_KINDS: tuple[Kind, ...] = ("track", "artist", "album", "playlist")
MAX_SUGGEST = 20
GENRES_TTL_S = 60.0
INDEX_ANSWER_MAX_AGE_S = 300.0
_UNKNOWN = object()  # the version of an index that cannot say


@dataclass(frozen=True, slots=True)
class _Answer:
    hits: Hits
    backend: Backend
    version: object  # the index's version() when it was asked
    at: float  # time.monotonic()


class NeedsThread(Exception):
    """This search must do something slow (answer from the database, load the genre list): not on
    the event loop. Run it again in a thread; without the index if `index_failed` (the failure is
    already counted)."""

    def __init__(self, *, index_failed: bool) -> None:
        super().__init__("index failed" if index_failed else "slow work")
        self.index_failed = index_failed


class PlaylistSource(Protocol):
    """Where search gets playlists (the library's PlaylistService, passed in by bootstrap.py: the
    library builds on the catalog, so search does not import it). Only public playlists are found."""

    def simplified_json(self, ids: Sequence[str]) -> list[bytes | None]:
        """Simplified playlist objects in the order of `ids`; None where one is gone or not public."""
        ...

    def search_fallback(self, query: IndexQuery, *, limit: int, offset: int, timeout_ms: int) -> Hits:
        """The database's answer for playlists while the index cannot answer; public ones only."""
        ...

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Calls `listener(playlist_id)` after a change search follows has committed."""
        ...


@dataclass(frozen=True, slots=True)
class SearchResult:
    json: bytes  # the response body
    degraded: bool  # some type was answered from the database


def parse_types(raw: str | None) -> tuple[str, ...]:
    """The `type` parameter: a comma-separated list of result types, in the order given."""
    if raw is None or not raw.strip():
        raise BadRequest("type is required: a comma-separated list of track, artist, album, playlist")
    wanted = [t.strip().lower() for t in raw.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TYPES and t not in EMPTY_TYPES]
    if unknown:
        shown = ", ".join(repr(t[:40]) for t in unknown[:3])
        raise BadRequest(f"type: unknown type {shown}; use track, artist, album, playlist")
    if not wanted:
        raise BadRequest("type is required: a comma-separated list of track, artist, album, playlist")
    return tuple(dict.fromkeys(wanted))


def parse_int(name: str, raw: str | None, *, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi], or BadRequest saying what was wrong."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be an integer from {lo} to {hi}, not {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be from {lo} to {hi}, not {value}")
    return value


class SearchService:
    def __init__(
        self,
        index: SearchIndex,
        catalog: CatalogService,
        clock: Clock,
        *,
        breaker_failures: int = 5,
        breaker_reset_s: float = 10.0,
        slow_ms: float = 500.0,
        fallback_timeout_ms: int = 2000,
        fallback_concurrency: int = 4,
        cache_ttl_s: float = 0.5,
        cache_size: int = 20_000,
        inline: bool = False,
        playlists: PlaylistSource | None = None,
    ) -> None:
        """`inline`: the index is in this process and the database is SQLite, so a healthy search
        costs less CPU than a hop to the thread pool (the HTTP layer then runs it on the loop).
        `playlists`: without it, `type=playlist` answers empty paging objects."""
        self.index = index
        self.inline = inline
        self.catalog = catalog
        self.clock = clock
        self.base = catalog.base
        self.slow_s = slow_ms / 1000
        self.fallback_timeout_ms = fallback_timeout_ms
        self.breaker = CircuitBreaker(
            clock,
            threshold=breaker_failures,
            reset_s=breaker_reset_s,
            on_open=self._opened,
            on_close=self._closed,
        )
        self._fallback_slots = threading.BoundedSemaphore(fallback_concurrency)
        # How each result type's ids become objects (JSON); a type without one (playlists, with
        # no PlaylistSource) answers an empty paging object without asking anyone.
        self._objects: dict[str, Callable[[list[str], str | None], list[bytes | None]]] = {
            "track": catalog.tracks_json,
            "album": lambda ids, _viewer: catalog.albums_json(ids),
            "artist": lambda ids, _viewer: catalog.artists_json(ids),
        }
        self.playlists = playlists
        if playlists is not None:
            simplified = playlists.simplified_json  # public playlists, whoever the viewer
            self._objects["playlist"] = lambda ids, _viewer: simplified(ids)
        # The catalog's genres, most tracks first, with their genre_key()s: (loaded at, list).
        self._genres: tuple[float, list[tuple[str, dict[str, Any]]]] = (-1e18, [])
        self._genres_lock = threading.Lock()
        # Recent answers (ids and totals, not objects) by query: typing is bursty and repetitive
        # ("s", "so", "son" from many listeners at once). An answer of the index stays good
        # while the index's version() is unchanged (up to INDEX_ANSWER_MAX_AGE_S); one of the
        # database for `cache_ttl_s`. A change made in this process clears them all at once.
        self.cache_ttl_s = cache_ttl_s
        self._recent: TTLCache[tuple[IndexQuery, int, int], _Answer] | None = (
            TTLCache(cache_size, max(cache_ttl_s, INDEX_ANSWER_MAX_AGE_S)) if cache_ttl_s > 0 else None
        )
        catalog.on_invalidate(self._forget_recent)
        if playlists is not None:
            playlists.on_change(self._forget_recent)
        BREAKER_OPEN.set(0)

    # Search ------------------------------------------------------------------------------------
    def search(
        self, q: str | None, types: Sequence[str], *, limit: int, offset: int, viewer_id: str | None
    ) -> dict[str, Any]:
        """Spotify's search response: `{"tracks": paging object, "artists": ...}`, one paging
        object per type asked for, items as the catalog's objects, best first."""
        body: dict[str, Any] = orjson.loads(
            self.search_json(q, types, limit=limit, offset=offset, viewer_id=viewer_id).json
        )
        return body

    def search_json(
        self,
        q: str | None,
        types: Sequence[str],
        *,
        limit: int,
        offset: int,
        viewer_id: str | None,
        use_index: bool = True,
        may_block: bool = True,
    ) -> SearchResult:
        """`search()` as the response body's bytes (the objects are embedded as cached JSON).

        `may_block=False` (a caller on the event loop): raises NeedsThread instead of answering
        from the database, which may take long; the caller then runs it again in a thread with
        `use_index=False` (the index's failure is already counted)."""
        if not types or any(t not in TYPES and t not in EMPTY_TYPES for t in types):
            parse_types(",".join(types))  # raises, saying what is wrong
        if not 0 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be from 0 to {MAX_LIMIT}, not {limit}")
        if not 0 <= offset <= MAX_OFFSET:
            raise BadRequest(f"offset must be from 0 to {MAX_OFFSET}, not {offset}")
        parsed = parse(q)
        assert q is not None  # parse() refuses None
        out: dict[str, Any] = {}
        degraded = False
        for kind in types:
            to_objects = self._objects.get(kind)
            query = parsed.for_kind(cast(Kind, kind), viewer_id) if to_objects is not None else None
            items: list[orjson.Fragment] = []
            total = 0
            if query is not None and to_objects is not None:
                hits, backend = self._hits(
                    query, limit=limit, offset=offset, use_index=use_index, may_block=may_block
                )
                degraded |= backend == "database"
                total = hits.total
                if hits.ids:
                    objs = to_objects(hits.ids, viewer_id)
                    items = [orjson.Fragment(o) for o in objs if o is not None]
                    # An id the index still had but the catalog no longer shows (deleted or made
                    # private a moment ago) is left out; the total follows.
                    total -= len(hits.ids) - len(items)
            out[f"{kind}s"] = self._paging(q, kind, items, limit=limit, offset=offset, total=total)
        return SearchResult(orjson.dumps(out), degraded)

    def _paging(
        self, q: str, kind: str, items: list[orjson.Fragment], *, limit: int, offset: int, total: int
    ) -> dict[str, Any]:
        # As urlencode() would write it, with q quoted once (urlencode was a third of the cost).
        prefix = f"{self.base}/v1/search?q={quote_plus(q)}&type={kind}&offset="

        def href(off: int) -> str:
            return f"{prefix}{off}&limit={limit}"

        more = limit > 0 and offset + limit < total and offset + limit <= MAX_OFFSET
        return {
            "href": href(offset),
            "items": items,
            "limit": limit,
            "next": href(offset + limit) if more else None,
            "offset": offset,
            "previous": href(max(0, offset - limit)) if offset > 0 and limit > 0 else None,
            "total": total,
        }

    def _forget_recent(self, _track_id: str) -> None:
        if self._recent is not None:
            self._recent.clear()

    # Failover ----------------------------------------------------------------------------------
    def _hits(
        self, query: IndexQuery, *, limit: int, offset: int, use_index: bool = True, may_block: bool = True
    ) -> tuple[Hits, Backend]:
        """The index's answer while it is healthy, else the database's; a recent one if any."""
        if self._recent is None:
            return self._answer(query, limit=limit, offset=offset, use_index=use_index, may_block=may_block)
        try:
            version = self.index.version()
        except BaseException as exc:  # a broken index: no answer of it is known to be current
            if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            version = _UNKNOWN
        key = (query, limit, offset)
        found = self._recent.get(key)
        if found is not None:
            fresh = (
                found.version == version
                if found.backend == "index" and version is not _UNKNOWN
                else time.monotonic() - found.at < self.cache_ttl_s
            )
            if fresh:
                _QUERIES["cache"].inc()
                return found.hits, found.backend
        hits, backend = self._answer(
            query, limit=limit, offset=offset, use_index=use_index, may_block=may_block
        )
        self._recent.put(key, _Answer(hits, backend, version, time.monotonic()))
        return hits, backend

    def _answer(
        self, query: IndexQuery, *, limit: int, offset: int, use_index: bool, may_block: bool
    ) -> tuple[Hits, Backend]:
        if use_index and self.breaker.allow():
            started = time.perf_counter()
            try:
                hits = self.index.search(query, limit=limit, offset=offset)
            except BaseException as exc:
                # Any exception, not only SearchUnavailable: a bug in an adapter must not take
                # search down with it, nor a panic in a native engine (pyo3 raises those as a
                # BaseException). The breaker keeps a broken index from being asked forever.
                if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
                    raise
                self.breaker.failure(f"{type(exc).__name__}: {exc}"[:300])
                structlog.get_logger("tonearm.search").warning(
                    "search.index.failed", error=type(exc).__name__, detail=str(exc)[:300]
                )
            else:
                elapsed = time.perf_counter() - started
                _QUERIES["index"].inc()
                _LATENCY["index"].observe(elapsed)
                if elapsed > self.slow_s:
                    self.breaker.failure(f"slow: {elapsed * 1000:.0f} ms > {self.slow_s * 1000:.0f} ms")
                else:
                    self.breaker.success()
                return hits, "index"  # slow but correct: still the best answer there is
        if not may_block:
            raise NeedsThread(index_failed=use_index)
        return self._fallback(query, limit=limit, offset=offset), "database"

    def _fallback(self, query: IndexQuery, *, limit: int, offset: int) -> Hits:
        timeout_s = self.fallback_timeout_ms / 1000
        if not self._fallback_slots.acquire(timeout=timeout_s):
            raise ServiceUnavailable("search is answering from the database and is busy; retry shortly", 2)
        started = time.perf_counter()
        fallback = self.catalog.search_fallback
        if query.kind == "playlist" and self.playlists is not None:
            fallback = self.playlists.search_fallback  # public ones only, like the index
        try:
            hits = fallback(query, limit=limit, offset=offset, timeout_ms=self.fallback_timeout_ms)
        except ServiceUnavailable:
            raise
        except Exception as exc:  # the database is down too: say so, never a 500
            structlog.get_logger("tonearm.search").error(
                "search.fallback.failed", error=type(exc).__name__, detail=str(exc)[:300]
            )
            raise ServiceUnavailable(
                "search is unavailable: neither its index nor the database answers", 5
            ) from exc
        finally:
            self._fallback_slots.release()
        _QUERIES["database"].inc()
        _LATENCY["database"].observe(time.perf_counter() - started)
        return hits

    def _opened(self, reason: str, failures: int) -> None:
        BREAKER_OPEN.set(1)
        FAILOVERS.inc()
        structlog.get_logger("tonearm.search").warning(
            "search.breaker.open",
            reason=reason,
            failures=failures,
            retry_in_s=self.breaker.reset_s,
            answering_from="database",
        )

    def _closed(self, open_s: float) -> None:
        BREAKER_OPEN.set(0)
        structlog.get_logger("tonearm.search").info(
            "search.breaker.closed",
            reason="the index answered a probe in time",
            open_for_s=round(open_s, 3),
            answering_from="index",
        )

    # Suggestions -------------------------------------------------------------------------------
    def suggest(self, q: str | None, *, viewer_id: str | None, limit: int = 8) -> dict[str, Any]:
        """The top `limit` tracks, artists, albums and public playlists for what is typed so far
        (the last word is a prefix while typing), merged by score, and the genres whose name
        starts with it:
        `{"q", "suggestions": [{type, id, name, uri, image, subtitle}], "genres": [{slug, name}]}`."""
        return self.suggestions(q, viewer_id=viewer_id, limit=limit)[0]

    def suggestions(
        self,
        q: str | None,
        *,
        viewer_id: str | None,
        limit: int = 8,
        use_index: bool = True,
        may_block: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """`suggest()`'s answer and whether some of it came from the database; `use_index` and
        `may_block` as for `search_json()`."""
        if not 1 <= limit <= MAX_SUGGEST:
            raise BadRequest(f"limit must be from 1 to {MAX_SUGGEST}, not {limit}")
        parsed = parse(q)
        assert q is not None
        ranked: list[tuple[float, int, Kind, str]] = []
        degraded = False
        for n, kind in enumerate(SUGGEST_KINDS):
            query = parsed.for_kind(kind, viewer_id) if kind in self._objects else None
            if query is None:
                continue
            try:
                hits, backend = self._hits(
                    query, limit=limit, offset=0, use_index=use_index, may_block=may_block
                )
            except ServiceUnavailable:
                degraded = True
                continue  # degraded and slow: fewer suggestions beat an error on a keystroke
            degraded |= backend == "database"
            ranked += [(-score, n, kind, i) for score, i in zip(hits.scores, hits.ids, strict=True)]
        ranked.sort()
        by_kind: dict[Kind, list[str]] = {}
        for _, _, kind, i in ranked[: limit * 2]:  # spares for the ones dropped as duplicates
            by_kind.setdefault(kind, []).append(i)
        objs = {
            (kind, i): orjson.loads(o)
            for kind, ids in by_kind.items()
            for i, o in zip(ids, self._objects[kind](ids, viewer_id), strict=True)
            if o is not None
        }
        suggestions: list[dict[str, Any]] = []
        seen: set[tuple[str, str, str]] = set()
        for _, _, kind, i in ranked:
            obj = objs.get((kind, i))
            if obj is None:
                continue
            entry = _suggestion(kind, obj)
            key = (kind, genre_key(entry["name"]), entry["subtitle"])
            if key in seen:
                continue
            seen.add(key)
            suggestions.append(entry)
            if len(suggestions) == limit:
                break
        genres = self._matching_genres(q, may_block=may_block)
        return {"q": q, "suggestions": suggestions, "genres": genres}, degraded

    def _matching_genres(self, q: str, *, may_block: bool, limit: int = 5) -> list[dict[str, Any]]:
        typed = genre_key(q)
        if not typed:
            return []
        keyed = self._genre_list(may_block=may_block)
        found = (g for key, g in keyed if key.startswith(typed) or f" {typed}" in f" {key}")
        return [{"slug": g["slug"], "name": g["name"]} for g in itertools.islice(found, limit)]

    def genres(self) -> list[dict[str, Any]]:
        """The catalog's genres with their public track counts (as `GET /v1/genres`), most
        tracks first; reloaded at most once a minute."""
        return [g for _, g in self._genre_list(may_block=True)]

    def _genre_list(self, *, may_block: bool) -> list[tuple[str, dict[str, Any]]]:
        """The genres with their genre_key()s. Reloading them is an aggregate over the catalog
        (~1 s at 100,000 tracks): one thread does it while the others go on with the list of a
        minute ago, rather than all of them running it at once (every suggestion asks)."""
        at, keyed = self._genres
        if self.clock.monotonic() - at < GENRES_TTL_S or (keyed and self._genres_lock.locked()):
            return keyed
        if not may_block:
            raise NeedsThread(index_failed=False)
        with self._genres_lock:
            at, keyed = self._genres
            now = self.clock.monotonic()
            if now - at < GENRES_TTL_S:
                return keyed  # reloaded while this thread waited
            fresh = sorted(self.catalog.genres(), key=lambda g: (-g["tracks"], g["name"]))
            keyed = [(genre_key(g["name"]), g) for g in fresh]
            self._genres = (now, keyed)
            return keyed


def _suggestion(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    if kind == "track":
        images = (obj.get("album") or {}).get("images") or []
        subtitle = ", ".join(a["name"] for a in obj.get("artists", []))
    elif kind == "album":
        images = obj.get("images") or []
        subtitle = ", ".join(a["name"] for a in obj.get("artists", []))
    elif kind == "playlist":
        images = obj.get("images") or []
        subtitle = (obj.get("owner") or {}).get("display_name") or ""
    else:
        images = obj.get("images") or []
        subtitle = ", ".join(obj.get("genres", [])[:2])
    return {
        "type": kind,
        "id": obj["id"],
        "name": obj["name"],
        "uri": obj["uri"],
        "image": images[-1]["url"] if images else None,  # the smallest: a thumbnail
        "subtitle": subtitle,
    }
