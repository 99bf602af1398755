"""The server-side player in Spotify's shapes: play (uris, contexts, offsets), state, queue,
next/previous, pause, seek, shuffle, repeat, and every bad input answered clearly."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.premium import make_premium
from tonearm.bootstrap import Container
from tonearm.kernel.clock import FrozenClock

from .conftest import album_of, listener, music, play


def _state(client: TestClient, h: dict[str, str]) -> dict[str, Any]:
    r = client.get("/v1/me/player", headers=h)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _now_playing(client: TestClient, h: dict[str, str]) -> str:
    return str(_state(client, h)["item"]["name"])


def test_play_state_queue_next_previous_pause_seek(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    h = tok["headers"]
    assert client.get("/v1/me/player", headers=h).status_code == 204
    assert client.get("/v1/me/player/queue", headers=h).json() == {"currently_playing": None, "queue": []}
    r = client.post("/v1/me/player/next", headers=h)
    assert r.status_code == 404 and r.json()["error"]["reason"] == "no_active_playback"

    ids = music(container, 5, seconds=200)
    play(client, h, ids)
    state = _state(client, h)
    assert state["is_playing"] is True and state["progress_ms"] == 0
    assert state["item"]["id"] == ids[0] and state["item"]["type"] == "track" and state["item"]["album"]
    assert (state["shuffle_state"], state["repeat_state"], state["context"]) == (False, "off", None)
    assert state["currently_playing_type"] == "track" and state["device"]["is_active"] is True
    clock.advance(30)
    assert _state(client, h)["progress_ms"] == 30_000  # the playhead moves with the clock
    queue = client.get("/v1/me/player/queue", headers=h).json()
    assert queue["currently_playing"]["id"] == ids[0]
    assert [t["id"] for t in queue["queue"]] == ids[1:]

    assert client.put("/v1/me/player/pause", headers=h).status_code == 204
    clock.advance(30)
    paused = _state(client, h)
    assert paused["is_playing"] is False and paused["progress_ms"] == 30_000
    assert paused["actions"]["disallows"] == {"pausing": True}
    assert client.put("/v1/me/player/play", headers=h).status_code == 204  # no body: resume
    clock.advance(5)
    assert _state(client, h)["progress_ms"] == 35_000
    assert client.put("/v1/me/player/seek", headers=h, params={"position_ms": 120_000}).status_code == 204
    assert _state(client, h)["progress_ms"] == 120_000

    assert client.post("/v1/me/player/next", headers=h).status_code == 204
    assert _state(client, h)["item"]["id"] == ids[1] and _state(client, h)["progress_ms"] == 0
    assert client.post("/v1/me/player/previous", headers=h).status_code == 204
    assert client.post("/v1/me/player/previous", headers=h).status_code == 204  # at the start: restart
    assert _state(client, h)["item"]["id"] == ids[0]

    extra = music(container, 1)[0]
    assert (
        client.post("/v1/me/player/queue", headers=h, params={"uri": f"tonearm:track:{extra}"}).status_code
        == 204
    )
    assert client.get("/v1/me/player/queue", headers=h).json()["queue"][-1]["id"] == extra
    current = client.get("/v1/me/player/currently-playing", headers=h).json()
    assert current["item"]["id"] == ids[0] and "device" not in current


def test_contexts_offsets_repeat_and_shuffle(client: TestClient, container: Container) -> None:
    tok = listener(client)
    h = tok["headers"]
    make_premium(container, tok["user_id"])  # skips unlimited: this is about moving, not limits
    ids = music(container, 4)
    album = album_of(container, ids[0])
    body = {"context_uri": f"tonearm:album:{album}", "offset": {"position": 2}, "position_ms": 1000}
    assert client.put("/v1/me/player/play", headers=h, json=body).status_code == 204
    state = _state(client, h)
    assert state["item"]["id"] == ids[2] and state["progress_ms"] == 1000
    assert state["context"]["type"] == "album" and state["context"]["uri"] == f"tonearm:album:{album}"
    assert state["context"]["href"].endswith(f"/v1/albums/{album}")
    body = {"context_uri": f"spotify:album:{album}", "offset": {"uri": f"tonearm:track:{ids[3]}"}}
    assert client.put("/v1/me/player/play", headers=h, json=body).status_code == 204
    assert _state(client, h)["item"]["id"] == ids[3]

    # At the end: repeat off stops, repeat context goes round, repeat track replays a finished track.
    def track_done() -> None:
        near_end = {"position_ms": 179_000}  # the tracks last 180 s: a "trackdone" is believed now
        assert client.put("/v1/me/player/seek", headers=h, params=near_end).status_code == 204
        assert client.post("/v1/me/player/next", headers=h, params={"reason": "trackdone"}).status_code == 204

    track_done()
    assert _state(client, h)["is_playing"] is False and _state(client, h)["item"]["id"] == ids[3]
    assert client.put("/v1/me/player/repeat", headers=h, params={"state": "context"}).status_code == 204
    track_done()
    assert _state(client, h)["item"]["id"] == ids[0] and _state(client, h)["repeat_state"] == "context"
    assert client.put("/v1/me/player/repeat", headers=h, params={"state": "track"}).status_code == 204
    track_done()
    assert _state(client, h)["item"]["id"] == ids[0]
    # An early "trackdone" is a skip: with repeat=track it moves on (and would use a free skip).
    assert client.post("/v1/me/player/next", headers=h, params={"reason": "trackdone"}).status_code == 204
    assert _state(client, h)["item"]["id"] == ids[1]
    assert client.post("/v1/me/player/previous", headers=h).status_code == 204
    assert client.post("/v1/me/player/next", headers=h).status_code == 204  # a skip moves on anyway
    assert _state(client, h)["item"]["id"] == ids[1]

    assert client.put("/v1/me/player/shuffle", headers=h, params={"state": "true"}).status_code == 204
    shuffled = client.get("/v1/me/player/queue", headers=h).json()
    assert shuffled["currently_playing"]["id"] == ids[1]
    assert sorted(t["id"] for t in shuffled["queue"][:2]) == sorted(ids[2:])  # the rest, in any order
    assert _state(client, h)["shuffle_state"] is True
    assert client.put("/v1/me/player/shuffle", headers=h, params={"state": "false"}).status_code == 204
    after = client.get("/v1/me/player/queue", headers=h).json()
    assert after["currently_playing"]["id"] == ids[1]
    assert [t["id"] for t in after["queue"][:2]] == ids[2:]  # the album's order again


def test_bad_player_input_is_refused_clearly(client: TestClient, container: Container) -> None:
    tok = listener(client)
    h = tok["headers"]
    ids = music(container, 2)

    def refused(method: str, path: str, status: int, words: str, **kw: Any) -> None:
        r = client.request(method, path, headers=h, **kw)
        assert r.status_code == status, (path, r.text)
        assert words in r.json()["error"]["message"], r.json()

    missing = ["0" * 22, "1" * 22]
    refused(
        "PUT",
        "/v1/me/player/play",
        404,
        f"tracks not found: {missing[0]}, {missing[1]}",
        json={"uris": [f"tonearm:track:{ids[0]}", *(f"tonearm:track:{m}" for m in missing)]},
    )
    refused(
        "PUT", "/v1/me/player/play", 400, "not track URIs", json={"uris": ["tonearm:album:" + ids[0], "nope"]}
    )
    refused(
        "PUT",
        "/v1/me/player/play",
        400,
        "between 1 and 1000 track URIs, not 1001",
        json={"uris": [f"tonearm:track:{ids[0]}"] * 1001},
    )
    refused("PUT", "/v1/me/player/play", 400, "between 1 and 1000", json={"uris": []})
    refused(
        "PUT",
        "/v1/me/player/play",
        400,
        "not both",
        json={
            "uris": [f"tonearm:track:{ids[0]}"],
            "context_uri": f"tonearm:album:{album_of(container, ids[0])}",
        },
    )
    refused(
        "PUT",
        "/v1/me/player/play",
        400,
        "offset.position: 5 is past the end",
        json={"uris": [f"tonearm:track:{ids[0]}"], "offset": {"position": 5}},
    )
    refused("PUT", "/v1/me/player/play", 400, "is not a URI like", json={"context_uri": "tonearm:genre:rock"})
    refused(
        "PUT", "/v1/me/player/play", 404, "not found", json={"context_uri": "tonearm:playlist:" + "0" * 22}
    )
    refused("PUT", "/v1/me/player/play", 404, "nothing is playing")  # resume, with nothing to resume
    refused(
        "PUT",
        "/v1/me/player/play",
        400,
        "past the end of the track",
        json={"uris": [f"tonearm:track:{ids[0]}"], "position_ms": 10_000_000},
    )

    play(client, h, ids)
    refused("PUT", "/v1/me/player/repeat", 400, "must be one of off, track, context", params={"state": "all"})
    refused("PUT", "/v1/me/player/shuffle", 400, "must be true or false", params={"state": "yes"})
    refused("PUT", "/v1/me/player/seek", 400, "must not be negative", params={"position_ms": -1})
    refused(
        "PUT", "/v1/me/player/seek", 400, "past the end of the track", params={"position_ms": 999_999_999}
    )
    refused("POST", "/v1/me/player/next", 400, "only trackdone", params={"reason": "bored"})
    refused("POST", "/v1/me/player/queue", 400, "is not a URI like", params={"uri": "tonearm:album:x"})
    refused(
        "POST", "/v1/me/player/queue", 404, "tracks not found", params={"uri": "tonearm:track:" + "2" * 22}
    )
    assert client.get("/v1/me/player", headers={}).status_code == 401
