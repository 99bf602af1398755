"""Issuing offline downloads: Premium only, all-or-none validation, the per-device limit, and
10,000 licences for one device in one call."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from tests.premium import make_premium
from tonearm.domains.devices.licences import LicenceError, b64d, unwrap_content_key
from tonearm.domains.devices.tables import downloads
from tonearm.domains.entitlements.tables import ads
from tonearm.kernel.ids import new_id

from .conftest import Env, insert_tracks


def _stored(env: Env, device_id: str) -> int:
    with env.c.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(downloads).where(downloads.c.device_id == device_id)
            ).scalar_one()
        )


def test_free_listeners_cannot_download(env: Env) -> None:
    tok = env.listener(premium=False)
    device = env.device(tok)
    track = insert_tracks(env.c, 1)[0]
    r = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    )
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "Offline downloads are a Premium feature"
    decision = env.c.entitlements.decisions(tok["user_id"])[0]
    assert (decision.action, decision.allowed, decision.reason) == ("download", False, "premium_required")
    assert _stored(env, device["id"]) == 0
    # Renewal too; a plan is all it takes.
    assert (
        env.client.post(f"/v1/me/devices/{device['id']}/licences/renew", headers=tok["headers"]).status_code
        == 403
    )
    make_premium(env.c, tok["user_id"])
    r = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    )
    assert r.status_code == 200, r.text


def test_a_download_carries_a_licence_for_this_device_only(env: Env) -> None:
    tok = env.listener()
    phone, laptop = env.device(tok), env.device(tok, "Laptop", "desktop")
    a, b = insert_tracks(env.c, 2)
    r = env.client.post(
        f"/v1/me/devices/{phone['id']}/downloads", json={"ids": [a, b, a]}, headers=tok["headers"]
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["new"], body["renewed"]) == (2, 0)  # the duplicate counts once
    assert [i["track_id"] for i in body["items"]] == [a, b]
    item = body["items"][0]
    assert item["rendition"] == "aac_320" and item["content_type"] == "audio/mp4"
    assert item["url"].startswith(f"http://testserver/offline/{a}/aac_320.tenc?")
    assert item["size_bytes"] > 7_000_000  # the encrypted file: the rendition plus header and tags
    licence = item["licence"]
    assert licence["device_id"] == phone["id"] and licence["track_id"] == a
    key = unwrap_content_key(licence, b64d(phone["device_key"]))
    assert key == env.c.devices.issuer.content_key(a, "aac_320")
    try:
        unwrap_content_key(licence, b64d(laptop["device_key"]))
        raise AssertionError("another device's key unwrapped the licence")
    except LicenceError:
        pass
    env.c.devices.issuer.verify(licence)
    # Asking again renews (no new slot); a lower rendition replaces the licence.
    again = env.client.post(
        f"/v1/me/devices/{phone['id']}/downloads",
        json={"ids": [a], "rendition": "aac_160"},
        headers=tok["headers"],
    ).json()
    assert (again["new"], again["renewed"]) == (0, 1)
    assert again["items"][0]["size_bytes"] is None  # aac_160 is not made yet: made on first fetch
    listed = env.client.get("/v1/me/devices", headers=tok["headers"]).json()["devices"]
    assert {d["name"]: d["downloads"] for d in listed} == {"Phone": 2, "Laptop": 0}


def test_renditions_follow_the_plan(env: Env) -> None:
    tok = env.listener()
    device = env.device(tok)
    track = insert_tracks(env.c, 1)[0]
    url = f"/v1/me/devices/{device['id']}/downloads"
    bad = env.client.post(url, json={"ids": [track], "rendition": "wav_9000"}, headers=tok["headers"])
    assert bad.status_code == 400 and "unknown rendition" in bad.json()["error"]["message"]
    hls = env.client.post(url, json={"ids": [track], "rendition": "hls"}, headers=tok["headers"])
    assert hls.status_code == 400
    original = env.client.post(url, json={"ids": [track], "rendition": "original"}, headers=tok["headers"])
    assert original.status_code == 400  # this track kept no lossless original
    assert "has no original file" in original.json()["error"]["message"]


def test_tracks_that_cannot_be_downloaded_fail_the_whole_request(env: Env) -> None:
    tok = env.listener()
    other = env.listener("bob@example.com", premium=False)
    device = env.device(tok)
    ok = insert_tracks(env.c, 3)
    private = insert_tracks(env.c, 1, owner=other["user_id"], visibility="private")[0]
    processing = insert_tracks(env.c, 1, owner=tok["user_id"], status="processing", rendition=None)[0]
    others_processing = insert_tracks(env.c, 1, owner=other["user_id"], status="processing")[0]
    ad = insert_tracks(env.c, 1)[0]
    with env.c.db.write() as conn:
        conn.execute(
            sa.insert(ads).values(
                id=new_id(), track_id=ad, name="Jingle", advertiser="Acme", created_at=env.clock.now()
            )
        )
    unknown = new_id()
    ids = [*ok, private, processing, others_processing, ad, unknown, "../../etc/passwd"]
    r = env.client.post(f"/v1/me/devices/{device['id']}/downloads", json={"ids": ids}, headers=tok["headers"])
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert message.startswith("6 of the 9 tracks cannot be downloaded, so none were: ")
    assert f"{private}: not found" in message  # someone else's private upload: like a missing one
    assert f"{unknown}: not found" in message
    assert f"{others_processing}: not found" in message
    assert f"{processing}: not ready yet" in message
    assert f"{ad}: an audio ad" in message
    assert "'../../etc/passwd': not a track id" in message
    assert all(t not in message for t in ok)
    assert _stored(env, device["id"]) == 0
    decision = env.c.entitlements.decisions(tok["user_id"])[0]
    assert (decision.action, decision.allowed, decision.reason) == ("download", False, "not_downloadable")
    # The 20 first are listed, then how many more.
    many = [new_id() for _ in range(25)]
    r = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": many}, headers=tok["headers"]
    )
    assert r.status_code == 400 and r.json()["error"]["message"].endswith("; and 5 more")
    empty = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": []}, headers=tok["headers"]
    )
    assert empty.status_code == 400


def test_the_per_device_limit_counts_active_downloads(make_env: Callable[..., Env]) -> None:
    env = make_env(max_downloads_per_device=3)
    tok = env.listener()
    device = env.device(tok)
    url = f"/v1/me/devices/{device['id']}/downloads"
    t = insert_tracks(env.c, 5)
    assert env.client.post(url, json={"ids": t[:3]}, headers=tok["headers"]).status_code == 200
    r = env.client.post(url, json={"ids": [t[3]]}, headers=tok["headers"])
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert message.startswith("This device has 3 of the 3 downloads it may keep, so 0 more fit; ")
    assert "this request adds 1 new tracks" in message
    decision = env.c.entitlements.decisions(tok["user_id"])[0]
    assert (decision.action, decision.allowed, decision.reason) == ("download", False, "download_limit")
    # Renewing what is there takes no slot; a request that would overflow stores nothing.
    assert env.client.post(url, json={"ids": t[:3]}, headers=tok["headers"]).status_code == 200
    assert env.client.post(url, json={"ids": [t[0], t[3]]}, headers=tok["headers"]).status_code == 403
    assert _stored(env, device["id"]) == 3
    # Removing one frees its slot; another device has its own.
    r = env.client.request("DELETE", url, json={"ids": [t[1]]}, headers=tok["headers"])
    assert r.status_code == 200 and r.json() == {"removed": 1}
    assert env.client.post(url, json={"ids": [t[3]]}, headers=tok["headers"]).status_code == 200
    other = env.device(tok, "Tablet", "phone")
    r = env.client.post(
        f"/v1/me/devices/{other['id']}/downloads", json={"ids": t[2:5]}, headers=tok["headers"]
    )
    assert r.status_code == 200
    states = env.client.get(url, headers=tok["headers"]).json()["items"]
    assert {(i["track_id"], i["state"], i["revoke_reason"]) for i in states} == {
        (t[0], "active", None),
        (t[1], "revoked", "removed"),
        (t[2], "active", None),
        (t[3], "active", None),
    }


def test_ten_thousand_downloads_on_one_device(env: Env) -> None:
    tok = env.listener()
    device = env.device(tok)
    ids = insert_tracks(env.c, 10_001)
    url = f"/v1/me/devices/{device['id']}/downloads"
    r = env.client.post(url, json={"ids": ids[:10_000]}, headers=tok["headers"])
    assert r.status_code == 200, r.text[:500]
    items = r.json()["items"]
    assert len(items) == 10_000 and len({i["licence"]["wrapped_key"] for i in items}) == 10_000
    key = b64d(device["device_key"])
    for item in (items[0], items[4321], items[-1]):
        content_key = unwrap_content_key(item["licence"], key)
        assert content_key == env.c.devices.issuer.content_key(item["track_id"], "aac_320")
    assert _stored(env, device["id"]) == 10_000
    listed = env.client.get("/v1/me/devices", headers=tok["headers"]).json()["devices"]
    assert listed[0]["downloads"] == 10_000
    r = env.client.post(url, json={"ids": [ids[10_000]]}, headers=tok["headers"])
    assert r.status_code == 403
    assert r.json()["error"]["message"].startswith("This device has 10,000 of the 10,000 downloads")
    assert _stored(env, device["id"]) == 10_000
    too_many = env.client.post(url, json={"ids": ids[:1] * 10_001}, headers=tok["headers"])
    assert too_many.status_code == 400  # more than 10,000 ids in one call, duplicates or not
    page = env.client.get(f"{url}?limit=1000&offset=9500", headers=tok["headers"]).json()
    assert page["total"] == 10_000 and len(page["items"]) == 500 and page["next"] is None
