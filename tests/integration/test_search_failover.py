"""Failover: when the search index breaks, search answers from the database (same results,
ranked by plays), the breaker opens (in /metrics and the logs); when the index comes back, the
breaker closes and the index answers again. On SQLite and PostgreSQL, through the HTTP API."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import make_settings
from tests.integration.api.conftest import sign_up_and_login
from tests.integration.api.test_search_api import SEARCH_URL, names, seed
from tonearm.adapters.search.memory import MemorySearchIndex
from tonearm.adapters.search.tantivy import TantivySearchIndex
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import albums, track_artists, tracks
from tonearm.http.app import create_app
from tonearm.kernel.ids import new_id

RESET_S = 0.3


@pytest.fixture
def container(tmp_path: Path, db_url: str) -> Iterator[Container]:
    c = bootstrap(
        make_settings(
            tmp_path,
            db_url,
            search_url=SEARCH_URL,
            search_breaker_failures=2,
            search_breaker_reset_s=RESET_S,
            search_cache_ttl_s=0,  # every search asks: a repeated one would be answered from memory
        )
    )
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, start_workers=False)) as tc:
        yield tc


def metrics(client: TestClient) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name.startswith("tonearm_search_"):
                label = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{label}}}" if label else s.name] = s.value
    return out


def break_index(c: Container) -> None:
    """A real outage: the live generation the index directory points to is gone (as after a
    failed disk or a botched restore), so opening it fails and every search raises."""
    index = c.search_index
    if isinstance(index, MemorySearchIndex):
        index.broken = True
        return
    assert isinstance(index, TantivySearchIndex)
    current = index.root / "CURRENT"
    _live[id(c)] = current.read_text()
    tmp = index.root / "CURRENT.tmp"
    tmp.write_text("gen-that-is-gone")
    tmp.replace(current)
    time.sleep(index.reload_s * 1.5)  # searches notice at their next reload


def mend_index(c: Container) -> None:
    """The directory points to the live generation again (as after restoring it)."""
    index = c.search_index
    if isinstance(index, MemorySearchIndex):
        index.broken = False
        return
    assert isinstance(index, TantivySearchIndex)
    tmp = index.root / "CURRENT.tmp"
    tmp.write_text(_live.pop(id(c)))
    tmp.replace(index.root / "CURRENT")


_live: dict[int, str] = {}


def ask(client: TestClient, q: str, types: str = "track") -> tuple[dict[str, Any], bool]:
    r = client.get("/v1/search", params={"q": q, "type": types, "limit": 50})
    assert r.status_code == 200, r.text
    return r.json(), r.headers.get("x-tonearm-search") == "degraded"


# Queries whose words are spelled out (the fallback tolerates no typos), with filters, phrases,
# accents, apostrophes, descriptions and a prefix still being typed.
SAME_RESULTS = [
    "queen",
    "bohemian",
    "bohemian rhapsody",
    '"love of my"',
    "beyonce",
    "BEYONCÉ",
    "royksopp",
    "dont stop",
    "string quartet",
    "genre:rock year:1970-1979",
    'genre:"hip hop"',
    "artist:queen night",
    "album:jazz",
    "year:1990-1999",
    "padd",
    "100% pure",
]


def test_failover_to_the_database_and_back(client: TestClient, container: Container) -> None:
    seed(container)
    healthy = {}
    for q in SAME_RESULTS:
        body, degraded = ask(client, q, "track,artist,album")
        assert not degraded
        healthy[q] = body
    before = metrics(client)
    assert before["tonearm_search_breaker_open"] == 0

    break_index(container)
    with structlog.testing.capture_logs() as logs:
        first, degraded = ask(client, "queen")  # the first failure: answered from the database
        assert degraded and container.search.breaker.state == "closed"
        assert names(first["tracks"]) == ["Bohemian Rhapsody", "Don't Stop Me Now", "Love of My Life"]
        ask(client, "queen")  # the second in a row opens the breaker
    assert container.search.breaker.state == "open"
    opened = [e for e in logs if e["event"] == "search.breaker.open"]
    assert len(opened) == 1 and "SearchUnavailable" in opened[0]["reason"], logs
    assert opened[0]["log_level"] == "warning" and opened[0]["failures"] == 2
    during = metrics(client)
    assert during["tonearm_search_breaker_open"] == 1
    assert during["tonearm_search_failovers_total"] == before["tonearm_search_failovers_total"] + 1

    # While open, every search is answered, from the database, with the index's results (the
    # same documents; the order is by plays).
    for q in SAME_RESULTS:
        body, degraded = ask(client, q, "track,artist,album")
        assert degraded
        for kind in ("tracks", "artists", "albums"):
            got = {i["id"] for i in body[kind]["items"]}
            want = {i["id"] for i in healthy[q][kind]["items"]}
            assert got == want and body[kind]["total"] == healthy[q][kind]["total"], (q, kind)
            plays = [i.get("popularity", 0) for i in body[kind]["items"]]
            assert kind != "tracks" or plays == sorted(plays, reverse=True)
    # ... without asking the index at all.
    after = metrics(client)
    index_key = "tonearm_search_queries_total{backend=index}"
    db_key = "tonearm_search_queries_total{backend=database}"
    assert after[index_key] == during[index_key]
    assert after[db_key] >= during[db_key] + len(SAME_RESULTS)
    # Suggestions keep working too.
    suggest = client.get("/v1/search/suggest", params={"q": "quee"})
    assert suggest.status_code == 200 and suggest.headers["x-tonearm-search"] == "degraded"
    assert {s["name"] for s in suggest.json()["suggestions"]} >= {"Queen", "Bohemian Rhapsody"}

    # Still broken when the breaker half-opens: the probe fails, it stays open.
    time.sleep(RESET_S)
    with structlog.testing.capture_logs() as logs:
        _, degraded = ask(client, "queen")
    assert degraded and container.search.breaker.state == "open"
    assert not [e for e in logs if e["event"].startswith("search.breaker.")]

    # The index comes back: nothing changes until the reset timeout has passed ...
    mend_index(container)
    _, degraded = ask(client, "queen")
    assert degraded
    time.sleep(RESET_S)
    # ... then the next search probes the index, which answers: the breaker closes.
    with structlog.testing.capture_logs() as logs:
        body, degraded = ask(client, "bohemain rapsody")  # a typo: only the index finds it
    assert not degraded and names(body["tracks"])[0] == "Bohemian Rhapsody"
    assert container.search.breaker.state == "closed"
    closed = [e for e in logs if e["event"] == "search.breaker.closed"]
    assert len(closed) == 1 and closed[0]["open_for_s"] > 0
    assert metrics(client)["tonearm_search_breaker_open"] == 0
    assert metrics(client)[index_key] > after[index_key]


def test_slow_answers_count_as_failures(tmp_path: Path, db_url: str) -> None:
    """An index slower than search_slow_ms still answers (its answer is right), but the breaker
    counts it, and enough of them in a row send searches to the database."""
    c = bootstrap(
        make_settings(
            tmp_path,
            db_url,
            search_url=SEARCH_URL,
            search_breaker_failures=3,
            search_slow_ms=1e-6,
            search_cache_ttl_s=0,
        )
    )
    try:
        with TestClient(create_app(c, start_workers=False)) as client:
            seed(c)
            with structlog.testing.capture_logs() as logs:
                answers = [ask(client, "bohemain")[1] for _ in range(4)]
            assert answers == [False, False, False, True]  # three slow answers, then the database
            opened = [e for e in logs if e["event"] == "search.breaker.open"]
            assert len(opened) == 1 and opened[0]["reason"].startswith("slow: ")
    finally:
        c.close()


def test_a_slow_fallback_is_cut_short(tmp_path: Path, db_url: str) -> None:
    """With the index down, a database scan that would run past search_fallback_timeout_ms is
    abandoned and answered with 503 and Retry-After, not left to hold the server."""
    c = bootstrap(
        make_settings(
            tmp_path,
            db_url,
            search_url=SEARCH_URL,
            search_breaker_failures=1,
            search_fallback_timeout_ms=1,
            search_cache_ttl_s=0,
        )
    )
    try:
        with TestClient(create_app(c, start_workers=False)) as client:
            _many_tracks(c, 20_000)
            break_index(c)
            r = client.get("/v1/search", params={"q": "zzz yyy xxx", "type": "track,artist,album"})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["status"] == 503 and "longer than 1 ms" in r.json()["error"]["message"]
            assert int(r.headers["retry-after"]) > 0
            # The connection the scan used is fine afterwards (no handler or timeout left on it).
            assert client.get("/readyz").status_code == 200
            c.search.fallback_timeout_ms = 5000
            assert ask(client, "zzz")[0]["tracks"]["total"] == 0
    finally:
        c.close()


def _many_tracks(c: Container, n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with c.db.write() as conn:
        artist_id = c.catalog.ensure_artist(conn, "Bulk Artist", now)
        album_id, _ = c.catalog.ensure_album(conn, "Bulk Album", artist_id, "2000", now)
        rows = [
            {
                "id": new_id(),
                "title": f"Bulk Track Number {i}",
                "album_id": album_id,
                "duration_ms": 1000,
                "status": "ready",
                "visibility": "public",
                "content_hash": f"{i:064x}",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        conn.execute(sa.insert(tracks), rows)
        conn.execute(
            sa.insert(track_artists),
            [{"track_id": r["id"], "artist_id": artist_id, "position": 0} for r in rows],
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(albums)).scalar_one() == 1


def test_the_fallback_keeps_private_uploads_private(client: TestClient, container: Container) -> None:
    bob = sign_up_and_login(client, "bob@example.com")
    seed(container, private_owner=bob["user_id"])
    break_index(container)
    for q in ("secret demo", "bedroom", "hidden take", "genre:lo-fi", "demos"):
        body, degraded = ask(client, q, "track,artist,album")
        assert degraded and all(page["total"] == 0 for page in body.values()), (q, body)
    r = client.get(
        "/v1/search", params={"q": "bedroom", "type": "track,artist,album"}, headers=bob["headers"]
    )
    assert r.headers["x-tonearm-search"] == "degraded"
    body = r.json()
    assert names(body["tracks"]) == ["Secret Demo"] and names(body["albums"]) == ["Demos"]
    assert names(body["artists"]) == ["Bedroom Artist"]
