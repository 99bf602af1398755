"""Audio ads: admins run them from their own uploads; a listener without `ad_free` hears one before
every third track, cannot skip it, completes it; premium (and any plan with `ad_free`) never."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tests.premium import make_premium
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.billing.tables import plan_features
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.entitlements.refusals import Refused
from tonearm.domains.entitlements.tables import ad_impressions, ad_state, entitlement_log
from tonearm.kernel.clock import FrozenClock

from .conftest import PASSWORD, admin, grant, listener, music, play, skip_event, uploaded


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _run_ad(client: TestClient, headers: dict[str, str], track_id: str, name: str = "Spring Sale") -> str:
    r = client.post(
        "/v1/admin/ads",
        headers=headers,
        json={
            "track_id": track_id,
            "name": name,
            "advertiser": "Acme",
            "click_url": "https://acme.example/sale",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_free_listener_hears_an_unskippable_ad_before_every_third_track(
    client: TestClient, container: Container, clock: FrozenClock, tmp_path: Path
) -> None:
    boss = admin(client, container)
    ad_track = uploaded(client, container, tmp_path, boss["headers"], seconds=3)
    ad_id = _run_ad(client, boss["headers"], ad_track)
    tok = listener(client)
    h = tok["headers"]
    ids = music(container, 6)
    assert client.get(f"/v1/tracks/{ad_track}", headers=h).status_code == 404  # not music to listeners

    assert "ad" not in grant(client, ids[0], h)
    assert "ad" not in grant(client, ids[1], h)
    third = grant(client, ids[2], h)
    assert third["track"]["id"] == ids[2]  # the grant itself is whole
    ad = third["ad"]
    assert ad["id"] == ad_id and ad["skippable"] is False
    assert (ad["name"], ad["advertiser"], ad["click_url"]) == (
        "Spring Sale",
        "Acme",
        "https://acme.example/sale",
    )
    assert 2900 <= ad["duration_ms"] <= 3100
    assert {r["name"] for r in ad["renditions"]} == {"aac_96", "aac_160"}  # never above 160 kb/s
    audio = client.get(_path(ad["renditions"][0]["url"]))
    assert (
        audio.status_code == 200
        and audio.headers["content-type"] == "audio/mp4"
        and len(audio.content) > 1000
    )
    assert client.get(_path(ad["hls"]["master_url"])).status_code == 200
    impression = ad["impression_id"]

    # While it plays: other tracks and skipping wait; the same track again brings the same ad.
    r = client.get(f"/v1/tracks/{ids[3]}/playback", headers=h)
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["reason"] == "ad_playing" and err["impression_id"] == impression
    assert "An ad is playing until" in err["message"] and "Ads can't be skipped" in err["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 4
    play(client, h, ids[2:])
    for params in ({}, {"reason": "trackdone"}):
        r = client.post("/v1/me/player/next", headers=h, params=params)
        assert r.status_code == 403 and r.json()["error"]["reason"] == "ad_playing"
    assert grant(client, ids[2], h)["ad"]["impression_id"] == impression
    events = {"events": [skip_event("s1", ad_track, clock.now())]}
    body = client.post("/v1/me/player/events", headers=h, json=events).json()
    assert body["rejected"] == [{"id": "s1", "reason": "ad_unskippable", "message": "ads can't be skipped"}]

    # Completion: only the listener's own impression, and only once the ad could have played.
    eve = listener(client, "eve@example.com")
    assert client.post(f"/v1/me/ads/{impression}/complete", headers=eve["headers"]).status_code == 404
    early = client.post(f"/v1/me/ads/{impression}/complete", headers=h)
    assert early.status_code == 409 and "once it has played to the end" in early.json()["error"]["message"]
    clock.advance(1.5)
    assert client.post(f"/v1/me/ads/{impression}/complete", headers=h).status_code == 204
    assert client.post(f"/v1/me/ads/{impression}/complete", headers=h).status_code == 204  # idempotent
    assert client.post("/v1/me/player/next", headers=h).status_code == 204

    # Two more tracks without, then the next ad; this one is not completed: it ends on its own.
    assert "ad" not in grant(client, ids[3], h)
    assert "ad" not in grant(client, ids[4], h)
    second = grant(client, ids[5], h)["ad"]
    assert second["impression_id"] != impression
    assert client.get(f"/v1/tracks/{ids[0]}/playback", headers=h).status_code == 403
    clock.advance(3.2)
    assert "ad" not in grant(client, ids[0], h)

    listing = client.get("/v1/admin/ads", headers=boss["headers"]).json()
    assert listing["total"] == 1
    assert (listing["items"][0]["impressions"], listing["items"][0]["completions"]) == (2, 1)
    log = client.get("/v1/me/entitlements/log", headers=h).json()["items"]
    reasons = [d["reason"] for d in log]
    assert reasons.count("ad_served") == 2 and reasons.count("ad_playing") == 4
    served = [d for d in log if d["reason"] == "ad_served"][-1]
    assert served["action"] == "ad" and served["allowed"] is True and ids[2] in served["detail"]


def test_only_admins_run_ads_from_an_admins_ready_upload(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    boss = admin(client, container)
    tok = listener(client)
    (song,) = music(container, 1)  # a catalog track nobody uploaded
    ad_track = uploaded(client, container, tmp_path, boss["headers"])
    body = {"track_id": ad_track, "name": "Sale", "advertiser": "Acme"}
    r = client.post("/v1/admin/ads", headers=tok["headers"], json=body)
    assert r.status_code == 403 and "only admins" in r.json()["error"]["message"]
    assert client.get("/v1/admin/ads", headers=tok["headers"]).status_code == 403
    r = client.post("/v1/admin/ads", headers=boss["headers"], json=body | {"track_id": song})
    assert r.status_code == 400 and "not uploaded by an admin" in r.json()["error"]["message"]
    r = client.post("/v1/admin/ads", headers=boss["headers"], json=body | {"track_id": "0" * 22})
    assert r.status_code == 404
    r = client.post(
        "/v1/admin/ads", headers=boss["headers"], json=body | {"click_url": "javascript:alert(1)"}
    )
    assert r.status_code == 400 and "click_url" in r.json()["error"]["message"]
    r = client.post("/v1/admin/ads", headers=boss["headers"], json=body | {"name": " "})
    assert r.status_code == 400

    ad_id = _run_ad(client, boss["headers"], ad_track)
    paused = client.patch(
        f"/v1/admin/ads/{ad_id}", headers=boss["headers"], json={"active": False, "name": "Later"}
    )
    assert paused.status_code == 200 and paused.json()["active"] is False and paused.json()["name"] == "Later"
    assert (
        client.patch(f"/v1/admin/ads/{ad_id}", headers=tok["headers"], json={"active": True}).status_code
        == 403
    )
    ids = music(container, 3)
    assert all("ad" not in grant(client, t, tok["headers"]) for t in ids)  # a paused ad is not served
    assert client.delete(f"/v1/admin/ads/{ad_id}", headers=boss["headers"]).status_code == 204
    assert client.get(f"/v1/admin/ads/{ad_id}", headers=boss["headers"]).status_code == 404
    assert client.delete(f"/v1/admin/ads/{ad_id}", headers=boss["headers"]).status_code == 404


def test_premium_and_ad_free_plans_hear_no_ads_and_cost_no_writes(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    boss = admin(client, container)
    _run_ad(client, boss["headers"], uploaded(client, container, tmp_path, boss["headers"]))
    ids = music(container, 3)
    rich = listener(client)
    make_premium(container, rich["user_id"])
    for _ in range(3):
        assert all("ad" not in grant(client, t, rich["headers"]) for t in ids)
    with container.db.read() as conn:
        assert conn.execute(sa.select(ad_state).where(ad_state.c.user_id == rich["user_id"])).first() is None

    # Features are data: give the free plan ad_free and free listeners hear none either.
    free = listener(client, "eve@example.com")
    with container.db.write() as conn:
        conn.execute(sa.insert(plan_features).values(plan_id="free", feature_id="ad_free"))
    container.entitlements.invalidate()
    assert all("ad" not in grant(client, t, free["headers"]) for t in ids + ids)
    summary = client.get("/v1/me/entitlements", headers=free["headers"]).json()
    assert summary["product"] == "free" and summary["features"]["ad_free"] is True and summary["ads"] is None


def test_ads_take_turns_and_the_first_ad_run_is_heard_at_once(
    client: TestClient, container: Container, clock: FrozenClock, tmp_path: Path
) -> None:
    boss = admin(client, container)
    tok = listener(client)
    h = tok["headers"]
    ids = music(container, 4)
    for t in ids:  # no ad exists: nothing to hear, nothing logged
        assert "ad" not in grant(client, t, h)
    assert client.get("/v1/me/entitlements/log", headers=h).json()["items"] == []
    first = _run_ad(client, boss["headers"], uploaded(client, container, tmp_path, boss["headers"]), "One")
    second = _run_ad(client, boss["headers"], uploaded(client, container, tmp_path, boss["headers"]), "Two")
    heard = [grant(client, ids[0], h)["ad"]["id"]]  # overdue: the very next track
    for _ in range(2):
        clock.advance(10)
        assert "ad" not in grant(client, ids[1], h)
        assert "ad" not in grant(client, ids[2], h)
        heard.append(grant(client, ids[3], h)["ad"]["id"])
    assert sorted(heard[:2]) == sorted([first, second])  # each once before either twice
    assert heard[2] == heard[0]  # then the one heard least recently


# The ledger and its write-behind (see ads.py): service-level, with ads whose audio is a catalog
# row an admin owns (no upload needed: the grant only signs URLs).


def _ad(c: Container, name: str = "Sale") -> str:
    boss = c.accounts.sign_up(f"{name.lower()}@example.com", PASSWORD, "Root", None, role="admin")
    (track_id,) = music(c, 1, seconds=30)
    with c.db.write() as conn:
        conn.execute(
            sa.update(tracks).where(tracks.c.id == track_id).values(owner_user_id=boss, visibility="private")
        )
    return str(c.entitlements.ads.create(track_id, name, "Acme", None)["id"])


def _grant(c: Container, track_id: str, user_id: str, fmt: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(
        c.entitlements.grant(track_id, c.entitlements.for_user(user_id), fmt=fmt)
    )
    return body


def _rows(c: Container, table: sa.Table, user_id: str) -> list[Any]:
    with c.db.read() as conn:
        return list(conn.execute(sa.select(table).where(table.c.user_id == user_id)).all())


def test_what_a_process_decided_is_written_on_close_and_read_by_the_next(
    container: Container, clock: FrozenClock, tmp_path: Path, db_url: str
) -> None:
    def restart(c: Container) -> Container:
        c.close()  # writes what the grant path queued
        return bootstrap(
            make_settings(tmp_path, db_url, search_url="memory://", search_indexer=False), clock=clock
        )

    ad_id = _ad(container)
    ada = container.accounts.sign_up("ada@example.com", PASSWORD, "Ada", None)
    ids = music(container, 4)
    assert "ad" not in _grant(container, ids[0], ada)

    c = restart(container)  # the count goes on where it was
    try:
        assert c.entitlements.summary(ada)["ads"]["tracks_until_next_ad"] == 1
        assert "ad" not in _grant(c, ids[1], ada)
        ad = _grant(c, ids[2], ada)["ad"]
        assert ad["id"] == ad_id
        c = restart(c)  # the ad is still playing: the guard holds in the next process too
        with pytest.raises(Refused) as refused:
            _grant(c, ids[3], ada)
        assert refused.value.reason == "ad_playing"
        assert refused.value.extra["impression_id"] == ad["impression_id"]
        assert _grant(c, ids[2], ada)["ad"]["impression_id"] == ad["impression_id"]
        clock.advance(30)
        c.entitlements.ads.complete(ada, ad["impression_id"])
        assert "ad" not in _grant(c, ids[3], ada)
        c = restart(c)
        assert c.entitlements.summary(ada)["ads"]["tracks_until_next_ad"] == 1
        assert c.entitlements.ads.get(ad_id)["impressions"] == 1
        assert c.entitlements.ads.get(ad_id)["completions"] == 1
        assert sorted(d.reason for d in c.entitlements.decisions(ada)) == ["ad_playing", "ad_served"]
    finally:
        c.close()


def test_a_failed_flush_keeps_its_rows_for_the_next(container: Container, clock: FrozenClock) -> None:
    c = container
    ada = c.accounts.sign_up("ada@example.com", PASSWORD, "Ada", None)
    ids = music(c, 1)
    with c.db.write() as conn:  # the database refuses the log's rows for a while
        conn.execute(sa.text("ALTER TABLE entitlement_log RENAME TO entitlement_log_away"))
    _grant(c, ids[0], ada)
    with pytest.raises(Refused):
        _grant(c, ids[0], ada, fmt="flac")
    with pytest.raises(sa.exc.DBAPIError):
        c.entitlements.flush()
    assert _rows(c, ad_state, ada) == []  # one transaction: nothing of the batch was written
    with c.db.write() as conn:
        conn.execute(sa.text("ALTER TABLE entitlement_log_away RENAME TO entitlement_log"))
    c.entitlements.flush()
    assert [r.tracks_since_ad for r in _rows(c, ad_state, ada)] == [1]
    assert [r.reason for r in _rows(c, entitlement_log, ada)] == ["premium_required"]


def test_queued_rows_of_a_deleted_account_are_dropped_not_retried(
    container: Container, clock: FrozenClock
) -> None:
    c = container
    _ad(c)
    ada = c.accounts.sign_up("ada@example.com", PASSWORD, "Ada", None)
    bo = c.accounts.sign_up("bo@example.com", PASSWORD, "Bo", None)
    ids = music(c, 3)
    for who in (ada, bo):
        c.entitlements.summary(who)  # in the ledger: the grants below read nothing of theirs
    with c.db.write() as conn:
        conn.execute(sa.text("ALTER TABLE ad_state RENAME TO ad_state_away"))  # hold the queue
    try:
        for t in ids:
            _grant(c, t, ada)
            _grant(c, t, bo)
        with c.db.write() as conn:
            c.accounts.delete_user(conn, ada)
    finally:
        with c.db.write() as conn:
            conn.execute(sa.text("ALTER TABLE ad_state_away RENAME TO ad_state"))
    c.entitlements.flush()  # Ada's rows refer to no one: dropped; Bo's are written
    assert c.entitlements.writes.queued() == 0
    assert [r.tracks_since_ad for r in _rows(c, ad_state, bo)] == [0]
    assert len(_rows(c, ad_impressions, bo)) == 1
    assert _rows(c, ad_state, ada) == [] and _rows(c, ad_impressions, ada) == []
