"""`GET /v1/me/entitlements` for free and premium listeners, and the decision log for the listener
and for admins."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.premium import make_premium
from tonearm.bootstrap import Container
from tonearm.kernel.clock import FrozenClock, iso

from .conftest import admin, grant, listener, music, play

FEATURES = ("ad_free", "unlimited_skips", "high_quality", "offline", "personalised")


def test_free_listener_sees_limits_and_where_they_stand(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    h = tok["headers"]
    fresh = client.get("/v1/me/entitlements", headers=h).json()
    assert fresh == {
        "product": "free",
        "plan": {"id": "free", "name": "Free"},
        "features": dict.fromkeys(FEATURES, False),
        "quality": {"max_kbps": 160, "lossless": False},
        "skips": {"limit": 6, "used": 0, "remaining": 6, "window_s": 3600, "next_skip_at": None},
        "ads": {"every_tracks": 3, "tracks_until_next_ad": 2},
        "offline": {
            "allowed": False,
            "max_devices": 5,
            "max_downloads_per_device": 10000,
            "licence_days": 30,
        },
    }
    ids = music(container, 8)
    grant(client, ids[0], h)
    play(client, h, ids)
    started = clock.now()
    for _ in range(6):
        assert client.post("/v1/me/player/next", headers=h).status_code == 204
        clock.advance(30)
    now = client.get("/v1/me/entitlements", headers=h).json()
    assert now["skips"] == {
        "limit": 6,
        "used": 6,
        "remaining": 0,
        "window_s": 3600,
        "next_skip_at": iso(started + dt.timedelta(hours=1)),
    }
    assert now["ads"]["tracks_until_next_ad"] == 1


def test_premium_listener_sees_everything_unlimited(client: TestClient, container: Container) -> None:
    tok = listener(client)
    make_premium(container, tok["user_id"], "premium_duo")
    body = client.get("/v1/me/entitlements", headers=tok["headers"]).json()
    assert body["product"] == "premium"
    assert body["plan"] == {"id": "premium_duo", "name": "Premium Duo"}
    assert body["features"] == dict.fromkeys(FEATURES, True)
    assert body["quality"] == {"max_kbps": 320, "lossless": True}
    assert body["skips"] == {
        "limit": None,
        "used": 0,
        "remaining": None,
        "window_s": 3600,
        "next_skip_at": None,
    }
    assert body["ads"] is None
    assert body["offline"]["allowed"] is True


def test_the_log_answers_why_for_the_listener_and_admins_only(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    tok = listener(client)
    h = tok["headers"]
    (track_id,) = music(container, 1)
    for fmt in ("aac_320", "flac"):
        client.get(f"/v1/tracks/{track_id}/playback", headers=h, params={"format": fmt})
        clock.advance(1)
    mine = client.get("/v1/me/entitlements/log", headers=h, params={"limit": 1}).json()["items"]
    assert len(mine) == 1 and mine[0]["reason"] == "premium_required" and "flac" in mine[0]["detail"]
    assert set(mine[0]) == {"at", "action", "allowed", "reason", "detail"}
    assert client.get("/v1/me/entitlements/log", headers=h, params={"limit": 0}).status_code == 400

    path = f"/v1/admin/users/{tok['user_id']}/entitlements/log"
    assert client.get(path, headers=h).status_code == 403
    boss = admin(client, container)
    theirs = client.get(path, headers=boss["headers"]).json()["items"]
    assert [d["detail"].split()[2] for d in theirs] == ["flac", "aac_320"]
    assert (
        client.get("/v1/admin/users/" + "0" * 22 + "/entitlements/log", headers=boss["headers"]).status_code
        == 404
    )
