"""The free skip limit: 6 per rolling hour, used by `POST /v1/me/player/next` and by `skip` player
events alike, refused with a reason and the time of the next one; premium unlimited."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.premium import make_premium
from tonearm.bootstrap import Container
from tonearm.domains.entitlements.refusals import Refused
from tonearm.domains.entitlements.tables import skips
from tonearm.kernel.clock import FrozenClock, iso

from .conftest import listener, music, play, skip_event


def _skip_rows(c: Container, user_id: str) -> int:
    with c.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(skips).where(skips.c.user_id == user_id)
            ).scalar_one()
        )


def test_the_seventh_skip_is_refused_until_the_first_is_an_hour_old(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    h = tok["headers"]
    play(client, h, music(container, 12))
    first = clock.now()
    for _ in range(6):
        assert client.post("/v1/me/player/next", headers=h).status_code == 204
        clock.advance(60)
    r = client.post("/v1/me/player/next", headers=h)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["reason"] == "skip_limit"
    next_at = first + dt.timedelta(hours=1)
    assert err["next_skip_at"] == iso(next_at)
    assert err["message"].startswith(
        "You've used your 6 skips for this hour. Your next skip is available at "
    )
    assert f"at {next_at:%H:%M}Z (in 54 minutes). Premium has unlimited skips." in err["message"]
    assert r.headers["retry-after"] == str(54 * 60)
    # The refused skip changed nothing: still on the 7th track.
    assert client.get("/v1/me/player", headers=h).json()["item"]["name"] == "Song 7"

    # Moving on when a track ended is not a skip, and going back is never limited; but a
    # "trackdone" long before the track's end is a skip like any other.
    early = client.post("/v1/me/player/next", headers=h, params={"reason": "trackdone"})
    assert early.status_code == 403 and early.json()["error"]["reason"] == "skip_limit"
    clock.advance(180)  # Song 7 (180 s) has now played out
    assert client.post("/v1/me/player/next", headers=h, params={"reason": "trackdone"}).status_code == 204
    assert client.post("/v1/me/player/previous", headers=h).status_code == 204
    assert client.get("/v1/me/player", headers=h).json()["item"]["name"] == "Song 7"
    state = client.get("/v1/me/player", headers=h).json()
    assert state["actions"]["disallows"]["skipping_next"] is True

    clock.advance((next_at - clock.now()).total_seconds() - 1)
    assert client.post("/v1/me/player/next", headers=h).json()["error"]["reason"] == "skip_limit"
    clock.advance(1)  # the first skip is now an hour old: it no longer counts
    assert client.post("/v1/me/player/next", headers=h).status_code == 204
    assert client.post("/v1/me/player/next", headers=h).status_code == 403  # the second is not yet

    log = client.get("/v1/me/entitlements/log", headers=h).json()["items"]
    assert [d["reason"] for d in log] == ["skip_limit"] * 4
    assert all(d["action"] == "skip" and d["allowed"] is False for d in log)


def test_skip_events_use_the_same_skips_and_a_refused_one_is_rejected_alone(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    h = tok["headers"]
    ids = music(container, 10)
    play(client, h, ids)
    for _ in range(3):
        assert client.post("/v1/me/player/next", headers=h).status_code == 204
    now = clock.now()
    progress = {
        "id": "p1",
        "type": "progress",
        "track_id": ids[0],
        "playback_id": "pb-p1",
        "timestamp": now.isoformat(),
        "position_ms": 1000,
    }
    batch = {"events": [skip_event(f"s{i}", ids[i], now) for i in range(5)] + [progress]}
    body = client.post("/v1/me/player/events", headers=h, json=batch).json()
    assert body["accepted"] == 4 and body["duplicates"] == 0
    rejected = {r["id"]: r for r in body["rejected"]}
    assert set(rejected) == {"s3", "s4"}  # skips 4 to 6 were left; the 7th and 8th are not
    assert rejected["s3"]["reason"] == "skip_limit"
    assert rejected["s3"]["next_skip_at"] == iso(now + dt.timedelta(hours=1))
    assert "You've used your 6 skips for this hour" in rejected["s3"]["message"]

    # A retried batch uses no more skips: its known events are duplicates.
    again = client.post("/v1/me/player/events", headers=h, json=batch).json()
    assert again["accepted"] == 0 and again["duplicates"] == 4 and len(again["rejected"]) == 2
    assert _skip_rows(container, tok["user_id"]) == 6
    assert client.post("/v1/me/player/next", headers=h).json()["error"]["reason"] == "skip_limit"

    clock.advance(3600)
    later = {"events": [skip_event("s9", ids[1], clock.now())]}
    assert client.post("/v1/me/player/events", headers=h, json=later).json()["accepted"] == 1


def test_premium_skips_are_unlimited_and_write_nothing(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    h = tok["headers"]
    make_premium(container, tok["user_id"])
    ids = music(container, 30)
    play(client, h, ids)
    for _ in range(20):
        assert client.post("/v1/me/player/next", headers=h).status_code == 204
    events = {"events": [skip_event(f"s{i}", ids[i], clock.now()) for i in range(10)]}
    assert client.post("/v1/me/player/events", headers=h, json=events).json()["accepted"] == 10
    assert _skip_rows(container, tok["user_id"]) == 0
    assert client.get("/v1/me/player", headers=h).json()["item"]["name"] == "Song 21"
    assert client.get("/v1/me/entitlements/log", headers=h).json()["items"] == []


def test_concurrent_skips_at_the_limit_let_one_through(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    user_id = tok["user_id"]
    ids = music(container, 2)
    for _ in range(5):
        container.entitlements.use_skip(user_id, ids[0])
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def skip() -> None:
        barrier.wait()
        try:
            container.entitlements.use_skip(user_id, ids[1])
            outcomes.append("ok")
        except Refused as r:
            outcomes.append(r.reason)

    threads = [threading.Thread(target=skip) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["skip_limit"] * 5
    assert _skip_rows(container, user_id) == 6
