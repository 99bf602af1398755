"""Listening history through the API, on SQLite and PostgreSQL: recently played (cursor paging,
ties, contexts), top tracks and artists per time range under a clock the test moves, the yearly
summary in the listener's time zone, the listening-score backfill, and bad input."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.scores import decayed
from tonearm.domains.history.tables import listening_scores, plays
from tonearm.kernel.clock import FrozenClock

from .conftest import sign_up_and_login
from .test_search_api import seed

# The clock starts at the real time: access tokens are checked against it (a token "issued" in
# the future is refused). Once logged in, tests move the clock where they like.
START = dt.datetime.now(dt.UTC).replace(microsecond=0)
_ids = itertools.count()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def container(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url), clock=clock)
    yield c
    c.close()


def play_events(track_id: str, at: dt.datetime, context_uri: str | None = None) -> list[dict[str, Any]]:
    """A start and, 31 s of listening later, an end: one play, counted at `at` + 31 s."""
    pb = f"pb{next(_ids)}"
    common = {"track_id": track_id, "playback_id": pb} | ({"context_uri": context_uri} if context_uri else {})
    return [
        common | {"id": f"{pb}-s", "type": "start", "timestamp": at.isoformat(), "position_ms": 0},
        common
        | {
            "id": f"{pb}-e",
            "type": "end",
            "timestamp": (at + dt.timedelta(seconds=31)).isoformat(),
            "ms_played": 31_000,
        },
    ]


def listen(
    client: TestClient,
    h: dict[str, str],
    plays_: list[tuple[str, dt.datetime] | tuple[str, dt.datetime, str]],
) -> None:
    events = [e for p in plays_ for e in play_events(*p)]
    for i in range(0, len(events), 100):
        r = client.post("/v1/me/player/events", headers=h, json={"events": events[i : i + 100]})
        assert r.status_code == 200 and not r.json()["rejected"], r.text


def ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


def _get(client: TestClient, url: str, h: dict[str, str], expect: int = 200) -> Any:
    r = client.get(url, headers=h)
    assert r.status_code == expect, (url, r.text)
    return r.json()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# Recently played -----------------------------------------------------------------------------------
def test_recently_played_newest_first_with_contexts(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    ids = seed(container)
    eple, yesterday, halo = ids.tracks["Eple"], ids.tracks["Yesterday"], ids.tracks["Halo"]
    album_uri = f"tonearm:album:{ids.albums['Help!']}"
    listen(
        client,
        h,
        [
            (eple, START - dt.timedelta(hours=3)),
            (yesterday, START - dt.timedelta(hours=2), album_uri),
            (halo, START - dt.timedelta(hours=1), "not a uri"),
        ],
    )
    body = _get(client, "/v1/me/player/recently-played", h)
    assert set(body) == {"items", "next", "cursors", "limit", "href"}
    assert [i["track"]["id"] for i in body["items"]] == [halo, yesterday, eple]
    assert body["limit"] == 20 and body["next"] is None
    assert body["href"] == "http://testserver/v1/me/player/recently-played?limit=20"
    first = body["items"][0]
    counted = START - dt.timedelta(hours=1) + dt.timedelta(seconds=31)  # when 30 s had been heard
    assert first["played_at"] == counted.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert first["context"] is None  # whatever a client sends that is not a context URI
    assert body["items"][1]["context"] == {
        "type": "album",
        "uri": album_uri,
        "href": f"http://testserver/v1/albums/{ids.albums['Help!']}",
        "external_urls": {"tonearm": f"http://testserver/album/{ids.albums['Help!']}"},
    }
    assert first["track"]["type"] == "track" and first["track"]["album"]["name"] == "I Am... Sasha Fierce"
    assert body["cursors"]["after"].startswith(f"{ms(START - dt.timedelta(hours=1)) + 31_000}:")
    assert body["cursors"]["before"].startswith(f"{ms(START - dt.timedelta(hours=3)) + 31_000}:")

    # Someone else's history is their own; nothing played is an empty answer, not an error.
    bob = sign_up_and_login(client, "bob@example.com")
    empty = _get(client, "/v1/me/player/recently-played", bob["headers"])
    assert empty["items"] == [] and empty["cursors"] is None and empty["next"] is None
    assert client.get("/v1/me/player/recently-played").status_code == 401


def test_cursor_paging_is_exact_at_equal_timestamps(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    t = list(seed(container).tracks.values())
    base = START - dt.timedelta(hours=5)
    same_a, same_b = base + dt.timedelta(minutes=10), base + dt.timedelta(minutes=20)
    # 9 plays: three in the same microsecond, two more in another, the rest apart.
    schedule = [
        (t[0], base),
        (t[1], same_a),
        (t[2], same_a),
        (t[3], same_a),
        (t[4], base + dt.timedelta(minutes=15)),
        (t[5], same_b),
        (t[6], same_b),
        (t[7], base + dt.timedelta(minutes=30)),
        (t[8], base + dt.timedelta(minutes=40)),
    ]
    listen(client, h, schedule)
    with container.db.read() as conn:
        expected = [
            (r.track_id, r.id)
            for r in conn.execute(
                sa.select(plays.c.track_id, plays.c.id).order_by(plays.c.played_at.desc(), plays.c.id.desc())
            )
        ]
    assert len(expected) == 9

    # Backwards, two at a time, following `next` (as spotipy's next() does).
    seen: list[str] = []
    url: str | None = "/v1/me/player/recently-played?limit=2"
    pages = 0
    while url:
        body = _get(client, _path(url) if url.startswith("http") else url, h)
        assert len(body["items"]) <= 2 and body["limit"] == 2
        seen += [i["track"]["id"] for i in body["items"]]
        url = body["next"]
        pages += 1
    assert seen == [track for track, _ in expected] and pages == 5

    # Forwards from the oldest play with `after`: the rest, each page still newest first.
    oldest_cursor = _get(client, "/v1/me/player/recently-played?limit=50", h)["cursors"]["before"]
    forward: list[list[str]] = []
    url = f"/v1/me/player/recently-played?limit=3&after={oldest_cursor}"
    while url:
        body = _get(client, _path(url) if url.startswith("http") else url, h)
        forward.append([i["track"]["id"] for i in body["items"]])
        url = body["next"]
        if url:
            assert "after=" in url
    newest_first = [track for track, _ in expected]
    assert forward == [newest_first[5:8], newest_first[2:5], newest_first[0:2]]

    # Plain milliseconds, as Spotify documents them: strictly before / after that instant.
    before_b = _get(client, f"/v1/me/player/recently-played?before={ms(same_b) + 31_000}", h)
    assert [i["track"]["id"] for i in before_b["items"]] == newest_first[4:]
    after_a = _get(client, f"/v1/me/player/recently-played?after={ms(same_a) + 31_000}", h)
    assert [i["track"]["id"] for i in after_a["items"]] == newest_first[:5]
    # A cursor naming a play of someone else only counts as its millisecond.
    bob = sign_up_and_login(client, "bob@example.com")
    listen(client, bob["headers"], [(t[0], base)])
    assert (
        _get(client, f"/v1/me/player/recently-played?before={oldest_cursor}", bob["headers"])["items"] == []
    )


def test_recently_played_bad_input(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    cases = [
        ("limit=0", "limit: must be between 1 and 50"),
        ("limit=51", "limit: must be between 1 and 50"),
        ("limit=ten", "limit"),
        ("before=1&after=2", "give one of them, not both"),
        ("before=yesterday", "before: 'yesterday' is not a Unix time in milliseconds"),
        ("after=-5", "after: '-5' is not a Unix time"),
        ("before=99999999999999999999", "is not a Unix time"),
        ("before=999999999999999", "is not a Unix time"),  # past year 9999
        ("before=12:ab", "is not a Unix time"),
    ]
    for query, message in cases:
        r = client.get(f"/v1/me/player/recently-played?{query}", headers=h)
        assert r.status_code == 400, (query, r.text)
        assert message in r.json()["error"]["message"], (query, r.json())


def test_tracks_the_listener_can_no_longer_see_are_left_out(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    ids = seed(container).tracks
    listen(
        client,
        h,
        [(ids["Eple"], START - dt.timedelta(hours=2)), (ids["Halo"], START - dt.timedelta(hours=1))],
    )
    with container.db.write() as conn:  # its uploader made it private
        conn.execute(sa.update(tracks).where(tracks.c.id == ids["Halo"]).values(visibility="private"))
    container.catalog.invalidate_track(ids["Halo"])
    recent = _get(client, "/v1/me/player/recently-played", h)
    assert [i["track"]["id"] for i in recent["items"]] == [ids["Eple"]]
    top = _get(client, "/v1/me/top/tracks?time_range=short_term", h)
    assert [i["id"] for i in top["items"]] == [ids["Eple"]] and top["total"] == 1


# Top tracks and artists -------------------------------------------------------------------------------
def test_top_lists_per_time_range(client: TestClient, container: Container, clock: FrozenClock) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    seeded = seed(container)
    ids, artists = seeded.tracks, seeded.artists
    bohemian, yesterday, eple = ids["Bohemian Rhapsody"], ids["Yesterday"], ids["Eple"]
    listen(client, h, [(bohemian, clock.now() - dt.timedelta(hours=n + 1)) for n in range(6)])
    clock.advance(100 * 86400)
    listen(client, h, [(yesterday, clock.now() - dt.timedelta(hours=n + 1)) for n in range(4)])
    clock.advance(60 * 86400)
    listen(client, h, [(eple, clock.now() - dt.timedelta(hours=1))])
    # Now: Eple was played today, Yesterday 4 times 2 months ago, Bohemian Rhapsody 6 times
    # 5 months ago. short_term (4 weeks): Eple alone. medium_term: 4 x 2**(-60/90) = 2.5 beats
    # 6 x 2**(-160/90) = 1.8, ahead of 1 play today. long_term counts plays.
    expected = {
        "short_term": [eple],
        "medium_term": [yesterday, bohemian, eple],
        "long_term": [bohemian, yesterday, eple],
    }
    for time_range, order in expected.items():
        body = _get(client, f"/v1/me/top/tracks?time_range={time_range}", h)
        assert [i["id"] for i in body["items"]] == order, time_range
        assert body["total"] == len(order) and body["items"][0]["type"] == "track"
        assert body["href"] == f"http://testserver/v1/me/top/tracks?time_range={time_range}&offset=0&limit=20"
    artist_order = {
        "short_term": ["Röyksopp"],
        "medium_term": ["The Beatles", "Queen", "Röyksopp"],
        "long_term": ["Queen", "The Beatles", "Röyksopp"],
    }
    for time_range, names in artist_order.items():
        body = _get(client, f"/v1/me/top/artists?time_range={time_range}", h)
        assert [i["name"] for i in body["items"]] == names, time_range
        assert body["items"][0]["type"] == "artist" and body["items"][0]["id"] == artists[names[0]]
    assert [i["id"] for i in _get(client, "/v1/me/top/tracks", h)["items"]] == expected["medium_term"]

    paged = _get(client, "/v1/me/top/tracks?time_range=long_term&limit=1&offset=1", h)
    assert [i["id"] for i in paged["items"]] == [yesterday] and paged["total"] == 3
    assert paged["next"] is not None and paged["previous"] is not None
    assert parse_qs(urlsplit(paged["next"]).query) == {
        "time_range": ["long_term"],
        "offset": ["2"],
        "limit": ["1"],
    }
    past_end = _get(client, "/v1/me/top/tracks?time_range=long_term&offset=10", h)
    assert past_end["items"] == [] and past_end["total"] == 3

    # Four more weeks of silence: nothing is short-term any more.
    clock.advance(29 * 86400)
    assert _get(client, "/v1/me/top/tracks?time_range=short_term", h)["total"] == 0


def test_scores_follow_every_counted_play(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    ids = seed(container).tracks
    moments = [START - dt.timedelta(days=d, minutes=m) for d in (1, 9, 20) for m in (0, 7)]
    listen(client, h, [(ids["Don't Stop Me Now"], at) for at in moments] + [(ids["Halo"], moments[0])])
    with container.db.read() as conn:
        rows = {(r.kind, r.item_id): r for r in conn.execute(sa.select(listening_scores))}
    queen = rows[("artist", seed_artist(container, "Queen"))]
    track = rows[("track", ids["Don't Stop Me Now"])]
    counted = [at + dt.timedelta(seconds=31) for at in moments]
    for row in (queen, track):
        assert row.plays == 6 and row.ms_played == 6 * 31_000
        assert row.short == pytest.approx(sum(decayed(at)[0] for at in counted), rel=1e-12)
        assert row.medium == pytest.approx(sum(decayed(at)[1] for at in counted), rel=1e-12)
        assert row.last_played_at == max(counted)
    assert rows[("track", ids["Halo"])].plays == 1 and len(rows) == 4  # 2 tracks, 2 artists
    # A batch that arrives late (an offline phone) adds its plays but keeps the newest time.
    listen(client, h, [(ids["Don't Stop Me Now"], START - dt.timedelta(days=25))])
    with container.db.read() as conn:
        late = conn.execute(
            sa.select(listening_scores).where(listening_scores.c.item_id == ids["Don't Stop Me Now"])
        ).one()
    assert late.plays == 7 and late.last_played_at == max(counted)


def seed_artist(container: Container, name: str) -> str:
    from tonearm.domains.catalog.tables import artists

    with container.db.read() as conn:
        return str(conn.execute(sa.select(artists.c.id).where(artists.c.name == name)).scalar_one())


def test_the_migration_backfills_scores_from_existing_plays(
    client: TestClient, container: Container, db_url: str
) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    ids = seed(container).tracks
    listen(
        client,
        h,
        [(ids["Yesterday"], START - dt.timedelta(days=d)) for d in (1, 2, 15)]
        + [(ids["Bohemian Rhapsody"], START - dt.timedelta(days=3))],
    )
    bob = sign_up_and_login(client, "bob@example.com")
    listen(client, bob["headers"], [(ids["Eple"], START - dt.timedelta(days=4))])
    cols = [c for c in listening_scores.c if c.name not in ("short", "medium")]
    with container.db.read() as conn:
        kept = {
            tuple(r[:-2]): r[-2:]
            for r in conn.execute(sa.select(*cols, listening_scores.c.short, listening_scores.c.medium))
        }
    assert len(kept) == 6  # ada: 2 tracks and their 2 artists; bob: 1 track, 1 artist
    container.db.dispose()
    migrate.downgrade(db_url, "0004")  # the schema before listening scores; plays stay
    migrate.upgrade(db_url)
    with container.db.read() as conn:
        rebuilt = {
            tuple(r[:-2]): r[-2:]
            for r in conn.execute(sa.select(*cols, listening_scores.c.short, listening_scores.c.medium))
        }
    assert rebuilt.keys() == kept.keys()
    for key, (short, medium) in kept.items():
        assert rebuilt[key] == (pytest.approx(short, rel=1e-12), pytest.approx(medium, rel=1e-12))


# The yearly summary ---------------------------------------------------------------------------------
def test_year_summary_in_utc_and_in_the_listeners_time_zone(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    h = ada["headers"]
    ids = seed(container).tracks
    # Logged in (tokens are minted at the real time); now to a January, for the turn of the year.
    clock.advance((dt.datetime(2026, 1, 20, 12, 0, tzinfo=dt.UTC) - clock.now()).total_seconds())
    # Counted 31 s after each start. In Paris (UTC+1) the first is already 2026, at 00:30.
    listen(
        client,
        h,
        [
            (ids["Yesterday"], dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)),
            (ids["Bohemian Rhapsody"], dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)),
            (ids["Bohemian Rhapsody"], dt.datetime(2026, 1, 5, 8, 10, tzinfo=dt.UTC)),
            (ids["Eple"], dt.datetime(2026, 1, 19, 22, 45, tzinfo=dt.UTC)),
        ],
    )
    utc = _get(client, "/v1/me/stats/2026", h)
    assert utc["year"] == 2026 and utc["time_zone"] == "UTC"
    assert utc["plays"] == 3 and utc["ms_played"] == 93_000 and utc["minutes_played"] == 1
    assert utc["distinct_tracks"] == 2 and utc["distinct_artists"] == 2
    assert [(t["track"]["id"], t["plays"]) for t in utc["top_tracks"]] == [
        (ids["Bohemian Rhapsody"], 2),
        (ids["Eple"], 1),
    ]
    assert [(a["artist"]["name"], a["plays"]) for a in utc["top_artists"]] == [("Queen", 2), ("Röyksopp", 1)]
    assert utc["top_artists"][0]["artist"]["uri"].startswith("tonearm:artist:")
    assert [(g["name"], g["plays"]) for g in utc["top_genres"]] == [("Rock", 2), ("Electronic", 1)]
    assert len(utc["by_hour"]) == 24 and len(utc["by_month"]) == 12
    assert {b["hour"]: b["plays"] for b in utc["by_hour"] if b["plays"]} == {8: 2, 22: 1}
    assert {b["month"]: b["plays"] for b in utc["by_month"] if b["plays"]} == {1: 3}

    paris = _get(client, "/v1/me/stats/2026?tz=Europe/Paris", h)
    assert paris["time_zone"] == "Europe/Paris" and paris["plays"] == 4 and paris["distinct_artists"] == 3
    assert {b["hour"]: b["plays"] for b in paris["by_hour"] if b["plays"]} == {0: 1, 9: 2, 23: 1}
    assert [(g["name"], g["plays"]) for g in paris["top_genres"]] == [
        ("Rock", 3),
        ("Electronic", 1),
        ("Pop", 1),
    ]
    last_year = _get(client, "/v1/me/stats/2025", h)
    assert last_year["plays"] == 1 and last_year["by_month"][11]["plays"] == 1
    assert last_year["by_hour"][23] == {"hour": 23, "plays": 1, "minutes_played": 0}
    assert _get(client, "/v1/me/stats/2025?tz=Europe/Paris", h)["plays"] == 0

    # A new play shows at once (the summary is cached, and dropped when a play counts).
    listen(client, h, [(ids["Halo"], dt.datetime(2026, 1, 20, 9, 0, tzinfo=dt.UTC))])
    assert _get(client, "/v1/me/stats/2026", h)["plays"] == 4
    # Nobody else's plays.
    assert _get(client, "/v1/me/stats/2026", bob["headers"])["plays"] == 0


def test_bad_input_is_a_clear_error(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    cases = [
        ("/v1/me/top/albums", "type: must be artists or tracks, not 'albums'"),
        ("/v1/me/top/tracks?time_range=forever", "time_range: must be short_term, medium_term or long_term"),
        ("/v1/me/top/artists?limit=0", "limit: must be between 1 and 50"),
        ("/v1/me/top/artists?limit=51", "limit: must be between 1 and 50"),
        ("/v1/me/top/artists?offset=-1", "offset: must not be negative"),
        ("/v1/me/stats/1999", f"year: must be between 2000 and {START.year}"),
        (f"/v1/me/stats/{START.year + 1}", f"year: must be between 2000 and {START.year}"),
        ("/v1/me/stats/twenty", "year: 'twenty' is not a year"),
        ("/v1/me/stats/20260", "is not a year"),
        ("/v1/me/stats/2026?tz=Mars/Olympus_Mons", "tz: unknown time zone 'Mars/Olympus_Mons'"),
        ("/v1/me/stats/2026?tz=../../etc/passwd", "tz: '../../etc/passwd' is not an IANA time zone"),
        ("/v1/me/stats/2026?tz=Europe", "tz: unknown time zone 'Europe'"),
    ]
    for url, message in cases:
        r = client.get(url, headers=h)
        assert r.status_code == 400, (url, r.text)
        assert message in r.json()["error"]["message"], (url, r.json())
    for url in ("/v1/me/top/tracks", "/v1/me/stats/2026"):
        assert client.get(url).status_code == 401
