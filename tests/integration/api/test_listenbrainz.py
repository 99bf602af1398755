"""The ListenBrainz-compatible API (/1/submit-listens, /1/validate-token), driven by the real
`liblistenbrainz` client against a live server (uvicorn in a thread), on SQLite and PostgreSQL:
listens land in the same history as the web player's plays, once."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import liblistenbrainz
import orjson
import pytest
import sqlalchemy as sa
import uvicorn
from liblistenbrainz.errors import InvalidAuthTokenException, ListenBrainzAPIException

from tests.conftest import _pg_url, _private_pg_schema
from tests.e2e.test_server_and_worker import _free_port
from tests.helpers import make_settings
from tests.integration.api.test_search_api import Seeded, seed
from tests.integration.subsonic.conftest import Listener, make_listener
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.schemas import PlayerEvent
from tonearm.domains.history.tables import now_playing, plays
from tonearm.http.app import create_app


@dataclass
class Live:
    c: Container
    base: str
    seeded: Seeded
    other: Listener
    _n: list[int]

    def listener(self) -> Listener:
        self._n[0] += 1
        return make_listener(self.c, f"lb{self._n[0]}@example.com")

    def client(self, who: Listener) -> liblistenbrainz.ListenBrainz:
        lb = liblistenbrainz.ListenBrainz(api_base_url=self.base)
        lb.set_auth_token(who.api_key)  # checks it with /1/validate-token
        return lb

    def plays_of(self, who: Listener) -> list[tuple[str, dt.datetime]]:
        with self.c.db.read() as conn:
            rows = conn.execute(
                sa.select(plays.c.track_id, plays.c.played_at)
                .where(plays.c.user_id == who.user_id)
                .order_by(plays.c.played_at, plays.c.track_id)
            ).all()
        return [(r.track_id, r.played_at) for r in rows]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("listenbrainz")
    with _private_pg_schema("lb_") if request.param == "postgres" else contextlib.nullcontext() as schema:
        url = _pg_url(schema) if schema else f"sqlite:///{tmp / 'lb.db'}"
        migrate.upgrade(url)
        c = bootstrap(make_settings(tmp, url, search_url="memory://"))
        server = None
        thread = None
        try:
            other = make_listener(c, "other@example.com")
            seeded = seed(c, private_owner=other.user_id)
            port = _free_port()
            config = uvicorn.Config(
                create_app(c, start_workers=False),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 20
            while not server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.02)
            yield Live(c, f"http://127.0.0.1:{port}", seeded, other, [0])
        finally:
            if server is not None and thread is not None:
                server.should_exit = True
                thread.join(10)
            c.close()


def _ago(**kw: float) -> int:
    return int((dt.datetime.now(dt.UTC) - dt.timedelta(**kw)).timestamp())


def test_validate_token(live: Live) -> None:
    who = live.listener()
    live.client(who)  # no exception: valid
    with pytest.raises(InvalidAuthTokenException):
        liblistenbrainz.ListenBrainz(api_base_url=live.base).set_auth_token("not-a-key")
    ok = httpx.get(f"{live.base}/1/validate-token", params={"token": who.api_key})
    assert ok.status_code == 200
    assert ok.json() == {"code": 200, "message": "Token valid.", "valid": True, "user_name": who.email}
    bad = httpx.get(f"{live.base}/1/validate-token", headers={"Authorization": "Token nope"})
    assert bad.json() == {"code": 200, "message": "Token invalid.", "valid": False}
    none = httpx.get(f"{live.base}/1/validate-token")
    assert none.status_code == 400 and none.json()["code"] == 400 and "token" in none.json()["error"]


def test_a_single_listen_counts_a_play_matched_by_name(live: Live) -> None:
    who = live.listener()
    lb = live.client(who)
    eple = live.seeded.tracks["Eple"]
    with live.c.db.read() as conn:
        before = conn.execute(sa.select(tracks.c.play_count).where(tracks.c.id == eple)).scalar_one()
    at = _ago(hours=2)
    answer = lb.submit_single_listen(liblistenbrainz.Listen("eple", "RÖYKSOPP", listened_at=at))
    assert answer == {"status": "ok", "accepted": 1, "duplicates": 0, "unmatched": 0}
    assert live.plays_of(who) == [(eple, dt.datetime.fromtimestamp(at, dt.UTC))]
    with live.c.db.read() as conn:
        after = conn.execute(sa.select(tracks.c.play_count).where(tracks.c.id == eple)).scalar_one()
    assert after == before + 1
    top = orjson.loads(
        orjson.dumps(live.c.history.top(who.user_id, "tracks", time_range="long_term", limit=5))
    )
    assert [t["id"] for t in top["items"]] == [eple]


def test_an_import_matches_by_id_uri_and_name_and_skips_what_it_cannot(live: Live) -> None:
    who = live.listener()
    lb = live.client(who)
    t = live.seeded.tracks
    listens = [
        liblistenbrainz.Listen(
            "Anything", "Anyone", listened_at=_ago(days=3), additional_info={"tonearm_track_id": t["Halo"]}
        ),
        liblistenbrainz.Listen(
            "Renamed",
            "Someone",
            listened_at=_ago(days=2),
            additional_info={"origin_url": f"http://testserver/track/{t['Yesterday']}"},
        ),
        liblistenbrainz.Listen(
            "Love of My Life", "Queen", release_name="A Night at the Opera", listened_at=_ago(days=1)
        ),
        liblistenbrainz.Listen(
            "Bohemian Like You", "The Dandy Warhols feat. Nobody", listened_at=_ago(hours=20)
        ),
        liblistenbrainz.Listen("Not In The Catalog", "Queen", listened_at=_ago(hours=10)),
        # Another listener's private upload is not there for this one.
        liblistenbrainz.Listen("Secret Demo", "Bedroom Artist", listened_at=_ago(hours=5)),
    ]
    answer = lb.submit_multiple_listens(listens)
    assert answer == {"status": "ok", "accepted": 4, "duplicates": 0, "unmatched": 2}
    assert [track for track, _ in live.plays_of(who)] == [
        t["Halo"],
        t["Yesterday"],
        t["Love of My Life"],
        t["Bohemian Like You"],
    ]
    # The same import again adds nothing.
    again = lb.submit_multiple_listens(listens)
    assert again == {"status": "ok", "accepted": 0, "duplicates": 4, "unmatched": 2}
    assert len(live.plays_of(who)) == 4


def test_a_listen_the_web_player_counted_is_not_counted_again(live: Live) -> None:
    who = live.listener()
    halo = live.seeded.tracks["Halo"]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    events = [
        PlayerEvent(id="e1", type="start", track_id=halo, playback_id="p1", timestamp=start, position_ms=0),
        PlayerEvent(
            id="e2",
            type="progress",
            track_id=halo,
            playback_id="p1",
            timestamp=start + dt.timedelta(seconds=35),
            position_ms=35_000,
        ),
    ]
    assert live.c.history.record(who.user_id, events)["plays_counted"] == 1
    # A scrobbler watching the web player reports the same listening, dated at its start.
    lb = live.client(who)
    answer = lb.submit_single_listen(
        liblistenbrainz.Listen("Halo", "Beyoncé", listened_at=int(start.timestamp()))
    )
    assert answer["duplicates"] == 1 and answer["accepted"] == 0
    assert len(live.plays_of(who)) == 1
    # Played again after the song's 3 minutes: a new play.
    later = int((start + dt.timedelta(minutes=4)).timestamp())
    assert (
        lb.submit_single_listen(liblistenbrainz.Listen("Halo", "Beyoncé", listened_at=later))["accepted"] == 1
    )
    assert len(live.plays_of(who)) == 2


def test_playing_now_sets_now_playing_without_a_play(live: Live) -> None:
    who = live.listener()
    lb = live.client(who)
    answer = lb.submit_playing_now(
        liblistenbrainz.Listen(
            "Yesterday", "The Beatles", additional_info={"submission_client": "Pano Scrobbler"}
        )
    )
    assert answer["status"] == "ok"
    with live.c.db.read() as conn:
        row = conn.execute(sa.select(now_playing).where(now_playing.c.user_id == who.user_id)).one()
    assert row.track_id == live.seeded.tracks["Yesterday"] and row.client == "Pano Scrobbler"
    assert live.plays_of(who) == []


def test_a_bad_token_is_401(live: Live) -> None:
    lb = liblistenbrainz.ListenBrainz(api_base_url=live.base)
    lb.set_auth_token("wrong-token", check_validity=False)
    with pytest.raises(ListenBrainzAPIException) as err:
        lb.submit_single_listen(liblistenbrainz.Listen("Halo", "Beyoncé", listened_at=_ago(hours=1)))
    assert err.value.status_code == 401 and err.value.message == "Invalid authorization token."
    bare = httpx.post(f"{live.base}/1/submit-listens", json={"listen_type": "single", "payload": []})
    assert bare.status_code == 401 and bare.json()["code"] == 401


def test_guessing_tokens_is_rate_limited(live: Live) -> None:
    """Wrong tokens share the Subsonic sign-ins' budget per address: after 30 in a minute, 429."""
    key = "app-auth:127.0.0.1"
    live.c.limiter.reset(key)
    try:
        for _ in range(30):
            r = httpx.get(f"{live.base}/1/validate-token", params={"token": "guess"})
            assert r.json()["valid"] is False
        who = live.listener()
        blocked = httpx.get(f"{live.base}/1/validate-token", params={"token": who.api_key})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert blocked.json()["code"] == 429 and "try again" in blocked.json()["error"]
        # A Subsonic app from the same address waits too (one budget for guessing keys).
        ping = httpx.get(f"{live.base}/rest/ping", params={"apiKey": who.api_key, "f": "json"})
        assert ping.json()["subsonic-response"]["error"]["code"] == 0
    finally:
        live.c.limiter.reset(key)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "JSON"),
        ({"listen_type": "radio", "payload": []}, "listen_type"),
        ({"listen_type": "import", "payload": []}, "payload"),
        ({"listen_type": "single", "payload": [{}, {}]}, "exactly one"),
        (
            {
                "listen_type": "single",
                "payload": [{"track_metadata": {"artist_name": "a", "track_name": "b"}}],
            },
            "listened_at",
        ),
        (
            {
                "listen_type": "playing_now",
                "payload": [
                    {"listened_at": 1700000000, "track_metadata": {"artist_name": "a", "track_name": "b"}}
                ],
            },
            "listened_at",
        ),
        (
            {
                "listen_type": "single",
                "payload": [{"listened_at": 1000, "track_metadata": {"artist_name": "a", "track_name": "b"}}],
            },
            "too low",
        ),
        (
            {
                "listen_type": "single",
                "payload": [
                    {"listened_at": 99999999999, "track_metadata": {"artist_name": "a", "track_name": "b"}}
                ],
            },
            "too high",
        ),
        (
            {
                "listen_type": "single",
                "payload": [{"listened_at": 1700000000, "track_metadata": {"artist_name": "a"}}],
            },
            "track_name",
        ),
    ],
)
def test_invalid_submissions_are_400_in_listenbrainz_shape(live: Live, body: Any, needle: str) -> None:
    who = live.listener()
    headers = {"Authorization": f"Token {who.api_key}"}
    if isinstance(body, bytes):
        r = httpx.post(f"{live.base}/1/submit-listens", content=body, headers=headers)
    else:
        r = httpx.post(f"{live.base}/1/submit-listens", json=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 400 and needle in r.json()["error"]
    assert live.plays_of(who) == []
