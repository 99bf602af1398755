"""The encrypted file of a real track (upload, transcode, encrypt, Range, decrypt), and the
licence lifecycle: expiry and renewal, removal, and Premium ending."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers import make_tone
from tests.premium import make_free, make_premium
from tonearm.domains.accounts.tables import users
from tonearm.domains.billing.tables import subscription_members
from tonearm.domains.devices.licences import (
    HEADER,
    LicenceError,
    b64d,
    decrypt_file,
    offline_key,
    parse_header,
    unwrap_content_key,
)
from tonearm.domains.devices.service import OfflineFile
from tonearm.domains.devices.tables import downloads

from .conftest import Env, insert_tracks

DAY = 24 * 3600


def _uploaded_track(env: Env, tmp_path: Path, tok: dict[str, Any]) -> str:
    src = make_tone(tmp_path / "song.flac", seconds=3, tags={"title": "Offline"})
    with src.open("rb") as fh:
        up = env.client.post(
            "/v1/me/uploads",
            headers=tok["headers"],
            files={"file": ("song.flac", fh, "application/octet-stream")},
            data={"visibility": "private"},
        )
    assert up.status_code in (201, 202), up.text
    env.c.worker(name="test").drain()
    done = env.client.get(f"/v1/me/uploads/{up.json()['id']}", headers=tok["headers"]).json()
    assert done["status"] == "ready", done
    return str(done["track"]["id"])


def _path(url: str) -> str:
    return url.replace("http://testserver", "")


def _plaintext(env: Env, track_id: str, name: str) -> bytes:
    env.c.streaming.invalidate(track_id)
    r = env.c.streaming.info(track_id).renditions[name]
    with env.c.blobs.open(r.blob_key) as fh:
        return fh.read()


def test_a_real_track_downloads_encrypted_and_decrypts_with_its_licence(
    env: Env, tmp_path: Path, have_ffmpeg: None
) -> None:
    tok = env.listener()
    phone, laptop = env.device(tok), env.device(tok, "Laptop", "desktop")
    track = _uploaded_track(env, tmp_path, tok)  # the owner's private upload: theirs to download
    r = env.client.post(
        f"/v1/me/devices/{phone['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    )
    assert r.status_code == 200, r.text
    item = r.json()["items"][0]
    url = _path(item["url"])

    whole = env.client.get(url)
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "application/vnd.tonearm.offline"
    assert whole.headers["accept-ranges"] == "bytes"
    assert len(whole.content) == item["size_bytes"]
    plain = _plaintext(env, track, "aac_320")
    assert plain[:64] not in whole.content
    key = unwrap_content_key(item["licence"], b64d(phone["device_key"]))
    assert decrypt_file(whole.content, key) == plain
    with pytest.raises(LicenceError):
        unwrap_content_key(item["licence"], b64d(laptop["device_key"]))

    part = env.client.get(url, headers={"Range": f"bytes=0-{HEADER.size - 1}"})
    assert part.status_code == 206 and part.content == whole.content[: HEADER.size]
    assert parse_header(part.content).plaintext_size == len(plain)
    middle = env.client.get(url, headers={"Range": "bytes=1000-1999"})
    assert middle.status_code == 206 and middle.content == whole.content[1000:2000]
    assert middle.headers["content-range"] == f"bytes 1000-1999/{len(whole.content)}"
    # Made once: a second fetch (and a HEAD) is the same file, ETag and all.
    again = env.client.get(url)
    assert again.content == whole.content and again.headers["etag"] == whole.headers["etag"]
    assert env.client.head(url).headers["content-length"] == str(len(whole.content))

    # The laptop's licence for the same track opens the same file: one file for every device.
    r = env.client.post(
        f"/v1/me/devices/{laptop['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    )
    laptop_item = r.json()["items"][0]
    laptop_key = unwrap_content_key(laptop_item["licence"], b64d(laptop["device_key"]))
    laptop_file = env.client.get(_path(laptop_item["url"]))
    assert laptop_file.content == whole.content and laptop_key == key

    # A rendition the track lacks is made on its first download, then encrypted.
    r = env.client.post(
        f"/v1/me/devices/{phone['id']}/downloads",
        json={"ids": [track], "rendition": "opus_96"},
        headers=tok["headers"],
    )
    opus = r.json()["items"][0]
    assert opus["size_bytes"] is None and opus["content_type"] == "audio/ogg"
    body = env.client.get(_path(opus["url"]))
    assert body.status_code == 200
    opus_key = unwrap_content_key(opus["licence"], b64d(phone["device_key"]))
    assert decrypt_file(body.content, opus_key) == _plaintext(env, track, "opus_96")
    # The download is now opus_96: the aac_320 URL no longer serves.
    assert env.client.get(url).status_code == 403

    # The uploader deletes the track: its encrypted copies go with its renditions.
    offline = [offline_key(track, r.id) for r in env.c.streaming.info(track).renditions.values()]
    assert sum(env.c.blobs.exists(k) for k in offline) == 2  # aac_320 and opus_96 were made
    assert env.client.delete(f"/v1/tracks/{track}", headers=tok["headers"]).status_code == 204
    assert not any(env.c.blobs.exists(k) for k in offline)


def test_download_urls_are_signed_for_the_user_and_device(env: Env, tmp_path: Path) -> None:
    tok = env.listener()
    phone, laptop = env.device(tok), env.device(tok, "Laptop", "desktop")
    track = insert_tracks(env.c, 1, audio=b"not really audio " * 5000)[0]
    item = env.client.post(
        f"/v1/me/devices/{phone['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    ).json()["items"][0]
    url = _path(item["url"])
    assert env.client.get(url).status_code == 200
    tampered = [
        url.replace("sig=", "sig=A"),
        url.replace(f"d={phone['id']}", f"d={laptop['id']}"),  # another device's (it has no such download)
        url.replace("aac_320.tenc", "aac_160.tenc"),
        url.replace("exp=", "exp=9"),
        url.split("?")[0],
    ]
    for bad in tampered:
        r = env.client.get(bad)
        assert r.status_code == 403, (bad, r.text)
        assert "blobs" not in r.text and "tracks/" not in r.text
    eve = env.listener("eve@example.com")
    assert env.client.get(url, headers=eve["headers"]).status_code == 403  # not her URL
    assert env.client.get(url, headers=tok["headers"]).status_code == 200
    assert env.client.get(url.replace(".tenc", ".mp3")).status_code == 404
    # A rendition whose audio went missing on the server answers 404, not an error page.
    lost = insert_tracks(env.c, 1)[0]
    lost_item = env.client.post(
        f"/v1/me/devices/{phone['id']}/downloads", json={"ids": [lost]}, headers=tok["headers"]
    ).json()["items"][0]
    r = env.client.get(_path(lost_item["url"]))
    assert r.status_code == 404 and "missing on the server" in r.json()["error"]["message"]

    # A tampered licence is caught by its signature (the server verifies what a device shows it).
    licence = item["licence"]
    env.c.devices.issuer.verify(licence)
    for field, value in (("expires_at", licence["expires_at"] + 30 * DAY), ("track_id", "A" * 22)):
        edited = {**licence, field: value}
        with pytest.raises(LicenceError, match="signature"):
            env.c.devices.issuer.verify(edited)
        with pytest.raises(LicenceError):
            unwrap_content_key(edited, b64d(phone["device_key"]))


def test_licences_expire_and_renew(env: Env) -> None:
    tok = env.listener()
    device = env.device(tok)
    tracks = insert_tracks(env.c, 2, audio=b"x" * 200_000)
    base = f"/v1/me/devices/{device['id']}"
    first = env.client.post(f"{base}/downloads", json={"ids": tracks}, headers=tok["headers"]).json()
    url = _path(first["items"][0]["url"])
    assert env.client.get(url).status_code == 200

    env.clock.advance(29 * DAY)
    assert env.client.get(url).status_code == 200  # still valid offline
    env.clock.advance(2 * DAY)
    refused = env.client.get(url)
    assert refused.status_code == 403 and "expired" in refused.json()["error"]["message"]
    listed = env.client.get(f"{base}/downloads", headers=tok["headers"]).json()
    assert [i["state"] for i in listed["items"]] == ["expired", "expired"]
    assert env.client.get(f"{base}/downloads?state=expired", headers=tok["headers"]).json()["total"] == 2
    assert env.client.get(f"{base}/downloads?state=active", headers=tok["headers"]).json()["total"] == 0
    assert env.client.get("/v1/me/devices", headers=tok["headers"]).json()["devices"][0]["downloads"] == 0

    renewed = env.client.post(f"{base}/licences/renew", headers=tok["headers"])
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert sorted(i["track_id"] for i in body["items"]) == sorted(tracks) and body["revoked"] == []
    new_item = next(i for i in body["items"] if i["track_id"] == first["items"][0]["track_id"])
    assert new_item["licence"]["expires_at"] > first["items"][0]["licence"]["expires_at"]
    content_key = unwrap_content_key(new_item["licence"], b64d(device["device_key"]))
    data = env.client.get(_path(new_item["url"]))
    assert data.status_code == 200 and decrypt_file(data.content, content_key) == b"x" * 200_000
    listed = env.client.get(f"{base}/downloads", headers=tok["headers"]).json()
    assert [i["state"] for i in listed["items"]] == ["active", "active"]
    devices = env.client.get("/v1/me/devices", headers=tok["headers"]).json()["devices"]
    assert devices[0]["licences_renewed_at"] is not None and devices[0]["downloads"] == 2
    assert devices[0]["last_seen_at"] > device["last_seen_at"]


def test_removing_a_device_revokes_its_downloads(env: Env) -> None:
    tok = env.listener()
    device = env.device(tok)
    track = insert_tracks(env.c, 1, audio=b"y" * 1000)[0]
    item = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    ).json()["items"][0]
    assert env.client.delete(f"/v1/me/devices/{device['id']}", headers=tok["headers"]).status_code == 204
    r = env.client.get(_path(item["url"]))
    assert r.status_code == 403


def test_premium_ending_revokes_every_download(env: Env) -> None:
    tok = env.listener()
    phone, laptop = env.device(tok), env.device(tok, "Laptop", "desktop")
    tracks = insert_tracks(env.c, 3, audio=b"z" * 1000)
    urls = []
    for d in (phone, laptop):
        r = env.client.post(
            f"/v1/me/devices/{d['id']}/downloads", json={"ids": tracks}, headers=tok["headers"]
        )
        urls.append(_path(r.json()["items"][0]["url"]))
    assert env.client.get(urls[0]).status_code == 200

    make_free(env.c, tok["user_id"])
    env.c.devices.product_changed(tok["user_id"], "free")
    for d in (phone, laptop):
        items = env.client.get(f"/v1/me/devices/{d['id']}/downloads", headers=tok["headers"]).json()["items"]
        assert {(i["state"], i["revoke_reason"]) for i in items} == {("revoked", "premium_ended")}
    for url in urls:
        r = env.client.get(url)
        assert r.status_code == 403 and "premium_ended" in r.json()["error"]["message"]
    decision = env.c.entitlements.decisions(tok["user_id"])[0]
    assert (decision.action, decision.allowed, decision.reason) == ("download", False, "premium_ended")
    assert "6 offline downloads revoked" in decision.detail
    r = env.client.post(f"/v1/me/devices/{phone['id']}/licences/renew", headers=tok["headers"])
    assert r.status_code == 403 and "Premium feature" in r.json()["error"]["message"]


def test_a_lapse_billing_did_not_announce_is_caught_online(env: Env) -> None:
    """Without the product-change notice, the device's next online check revokes all the same."""
    tok = env.listener()
    device = env.device(tok)
    tracks = insert_tracks(env.c, 2, audio=b"w" * 1000)
    base = f"/v1/me/devices/{device['id']}"
    item = env.client.post(f"{base}/downloads", json={"ids": tracks}, headers=tok["headers"]).json()["items"][
        0
    ]
    make_free(env.c, tok["user_id"])
    assert env.client.get(_path(item["url"])).status_code == 403
    items = env.client.get(f"{base}/downloads", headers=tok["headers"]).json()["items"]
    assert {(i["state"], i["revoke_reason"]) for i in items} == {("revoked", "premium_ended")}


def test_renewal_revokes_tracks_that_became_unavailable(env: Env) -> None:
    tok = env.listener()
    uploader = env.listener("bob@example.com", premium=False)
    device = env.device(tok)
    mine = insert_tracks(env.c, 1)[0]
    theirs = insert_tracks(env.c, 1, owner=uploader["user_id"])[0]  # public, for now
    base = f"/v1/me/devices/{device['id']}"
    r = env.client.post(f"{base}/downloads", json={"ids": [mine, theirs]}, headers=tok["headers"])
    assert r.status_code == 200
    made_private = env.client.patch(
        f"/v1/tracks/{theirs}", json={"visibility": "private"}, headers=uploader["headers"]
    )
    assert made_private.status_code == 200, made_private.text
    body = env.client.post(f"{base}/licences/renew", headers=tok["headers"]).json()
    assert [i["track_id"] for i in body["items"]] == [mine]
    assert body["revoked"] == [{"track_id": theirs, "reason": "not_downloadable"}]


def test_the_file_is_made_once_and_served_from_a_store_without_local_paths(
    make_env: Callable[..., Env],
) -> None:
    """On the in-memory store the bytes are streamed; requests at once all get the same file."""
    env = make_env(blob_url="memory://")
    tok = env.listener()
    device = env.device(tok)
    audio = bytes(range(256)) * 1000
    track = insert_tracks(env.c, 1, audio=audio)[0]
    item = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": [track]}, headers=tok["headers"]
    ).json()["items"][0]
    query = dict(p.split("=", 1) for p in item["url"].split("?", 1)[1].split("&"))

    def resolve(_: int) -> OfflineFile:
        return env.c.devices.offline_file(
            track, "aac_320.tenc", query["u"], query["d"], query["exp"], query["sig"]
        )

    with ThreadPoolExecutor(4) as pool:
        files = list(pool.map(resolve, range(8)))
    assert len({(f.blob_key, f.size, f.etag) for f in files}) == 1
    body = env.client.get(_path(item["url"]))
    assert body.status_code == 200 and len(body.content) == files[0].size == item["size_bytes"]
    key = unwrap_content_key(item["licence"], b64d(device["device_key"]))
    assert decrypt_file(body.content, key) == audio


def test_a_family_member_who_leaves_the_plan_loses_their_downloads(env: Env) -> None:
    """Through billing itself: leaving a plan makes the member free, and billing's product-change
    notice revokes their downloads (the manager's stay)."""
    manager = env.listener("manager@example.com", premium=False)
    member = env.listener("member@example.com", premium=False)
    sub_id = make_premium(env.c, manager["user_id"], "premium_family")
    with env.c.db.write() as conn:
        conn.execute(
            sa.insert(subscription_members).values(
                subscription_id=sub_id, user_id=member["user_id"], role="member", joined_at=env.clock.now()
            )
        )
        conn.execute(sa.update(users).where(users.c.id == member["user_id"]).values(product="premium"))
    env.c.entitlements.invalidate()
    tracks = insert_tracks(env.c, 2, audio=b"f" * 1000)
    mine, theirs = env.device(member), env.device(manager)
    for tok, device in ((member, mine), (manager, theirs)):
        r = env.client.post(
            f"/v1/me/devices/{device['id']}/downloads", json={"ids": tracks}, headers=tok["headers"]
        )
        assert r.status_code == 200, r.text

    env.c.billing.leave(member["user_id"])
    with env.c.db.read() as conn:  # revoked by the notice itself, before any device asks
        reasons = conn.execute(sa.select(downloads.c.device_id, downloads.c.revoke_reason)).all()
    assert sorted(reasons) == sorted([(mine["id"], "premium_ended")] * 2 + [(theirs["id"], None)] * 2)
    items = env.c.devices.downloads(member["user_id"], mine["id"])["items"]
    assert {(i["state"], i["revoke_reason"]) for i in items} == {("revoked", "premium_ended")}
    items = env.c.devices.downloads(manager["user_id"], theirs["id"])["items"]
    assert {i["state"] for i in items} == {"active"}
