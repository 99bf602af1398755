"""The listener's data through the API, on SQLite and PostgreSQL: an export holds everything of
theirs and nothing of anyone else's, its download link is signed, short-lived and private; and
deleting the account removes every row that names the user, in every table, with their files."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.accounts.tables import api_keys, app_passwords, sessions, users
from tonearm.domains.billing.tables import invoices, payments, subscription_members, subscriptions
from tonearm.domains.catalog.tables import albums, artists, image_variants, images, renditions, tracks
from tonearm.domains.devices.tables import devices
from tonearm.domains.history.tables import data_exports, now_playing, play_events, plays
from tonearm.domains.ingest.tables import uploads
from tonearm.domains.library.tables import playlist_collaborators, playlist_entries, playlists, ratings
from tonearm.domains.player.tables import bookmarks, saved_queues
from tonearm.domains.privacy.archive import COVERAGE
from tonearm.domains.sharing.tables import share_links
from tonearm.kernel import changes
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.ids import new_id
from tonearm.kernel.schema import metadata

from .conftest import sign_up_and_login
from .test_history import listen
from .test_search_api import Seeded, seed

START = dt.datetime.now(dt.UTC).replace(microsecond=0)  # tokens are checked against the real time
PASSWORD = "correct horse"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def container(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url), clock=clock)
    yield c
    c.close()


def user_columns() -> list[sa.Column[Any]]:
    """Every column in the schema that refers to a user."""
    return [
        fk.parent
        for table in metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == "users" and fk.column.name == "id"
    ]


@dataclass
class Person:
    user_id: str
    headers: dict[str, str]
    token: str
    playlist: str
    share_code: str


def make_person(
    client: TestClient, c: Container, seeded: Seeded, email: str, name: str, liked: str
) -> Person:
    """A listener with something in every corner: likes, a saved album, a follow, plays with a
    context, a playlist (with a collaborator), a share link, a device, a subscription."""
    tok = sign_up_and_login(client, email)
    h, user_id = tok["headers"], tok["user_id"]
    assert client.put(f"/v1/me/tracks?ids={liked}", headers=h).status_code == 200
    assert client.put(f"/v1/me/albums?ids={seeded.albums['Jazz']}", headers=h).status_code == 200
    queen = seeded.artists["Queen"]
    assert client.put(f"/v1/me/following?type=artist&ids={queen}", headers=h).status_code == 204
    listen(
        client,
        h,
        [
            (liked, START - dt.timedelta(hours=2), f"tonearm:album:{seeded.albums['Jazz']}"),
            (seeded.tracks["Yesterday"], START - dt.timedelta(hours=1)),
        ],
    )
    now = c.clock.now()
    playlist, code = new_id(), f"{name[:4]}{new_id()[:6]}"
    with c.db.write() as conn:
        conn.execute(
            sa.insert(playlists).values(
                id=playlist, owner_id=user_id, name=f"{name}'s mix", created_at=now, updated_at=now
            )
        )
        conn.execute(
            sa.insert(playlist_entries),
            [
                {
                    "id": new_id(),
                    "playlist_id": playlist,
                    "track_id": seeded.tracks[title],
                    "position_key": key,
                    "added_by": user_id,
                    "added_at": now,
                }
                for key, title in (("a1", "Halo"), ("a0", "Yesterday"))
            ],
        )
        conn.execute(
            sa.insert(share_links).values(
                code=code, user_id=user_id, kind="playlist", object_id=playlist, created_at=now
            )
        )
        conn.execute(
            sa.insert(devices).values(
                id=new_id(),
                user_id=user_id,
                name=f"{name}'s phone",
                kind="phone",
                created_at=now,
                last_seen_at=now,
            )
        )
        sub = new_id()
        conn.execute(
            sa.insert(subscriptions).values(
                id=sub,
                user_id=user_id,
                plan_id="premium_individual",
                status="active",
                current_period_start=now,
                current_period_end=now + dt.timedelta(days=30),
                payment_method_token=f"pm_secret_{name}",
                created_at=now,
            )
        )
        conn.execute(
            sa.insert(subscription_members).values(
                subscription_id=sub, user_id=user_id, role="manager", joined_at=now
            )
        )
        pay = new_id()
        conn.execute(
            sa.insert(payments).values(
                id=pay,
                user_id=user_id,
                subscription_id=sub,
                amount_minor=1099,
                currency="EUR",
                status="succeeded",
                gateway="fake",
                idempotency_key=f"idem-{name}",
                created_at=now,
            )
        )
        conn.execute(
            sa.insert(invoices).values(
                id=new_id(),
                user_id=user_id,
                subscription_id=sub,
                payment_id=pay,
                amount_minor=1099,
                currency="EUR",
                period_start=now,
                period_end=now + dt.timedelta(days=30),
                status="paid",
                created_at=now,
            )
        )
        # What Subsonic apps keep: a rating, a bookmark, a saved queue, what plays now.
        conn.execute(
            sa.insert(ratings).values(
                user_id=user_id, kind="album", item_id=seeded.albums["Jazz"], rating=4, updated_at=now
            )
        )
        conn.execute(
            sa.insert(bookmarks).values(
                user_id=user_id,
                track_id=liked,
                position_ms=61_000,
                comment=name,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            sa.insert(saved_queues).values(
                user_id=user_id,
                track_ids=f'["{liked}", "{seeded.tracks["Halo"]}"]',
                current_index=1,
                position_ms=5000,
                changed_at=now,
                changed_by=f"{name}'s app",
            )
        )
        conn.execute(
            sa.insert(now_playing).values(user_id=user_id, track_id=liked, client="DSub", started_at=now)
        )
    c.credentials.create_key(user_id, f"{name}'s Symfonium")
    c.credentials.reset_app_password(user_id)
    return Person(user_id, h, tok["access_token"], playlist, code)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def export_now(client: TestClient, c: Container, h: dict[str, str]) -> dict[str, Any]:
    r = client.post("/v1/me/exports", headers=h)
    assert r.status_code == 202, r.text
    c.worker(name="test").drain()
    body: dict[str, Any] = client.get(f"/v1/me/exports/{r.json()['id']}", headers=h).json()
    assert body["status"] == "ready", body
    return body


# Export ---------------------------------------------------------------------------------------------
def test_the_export_holds_the_users_data_and_nothing_of_anyone_else(
    client: TestClient, container: Container
) -> None:
    seeded = seed(container)
    ada = make_person(client, container, seeded, "ada@example.com", "Ada", seeded.tracks["Eple"])
    bob = make_person(client, container, seeded, "bob@example.com", "Bobby", seeded.tracks["Halo"])
    with container.db.write() as conn:  # Bob may edit Ada's playlist, and added a track to it
        conn.execute(
            sa.insert(playlist_collaborators).values(
                playlist_id=ada.playlist, user_id=bob.user_id, created_at=START
            )
        )
        conn.execute(
            sa.insert(playlist_entries).values(
                id=new_id(),
                playlist_id=ada.playlist,
                track_id=seeded.tracks["Halo"],
                position_key="a2",
                added_by=bob.user_id,
                added_at=START,
            )
        )

    first = client.post("/v1/me/exports", headers=ada.headers)
    assert first.status_code == 202
    started = first.json()
    assert (
        started["status"] == "pending"
        and started["href"] == f"http://testserver/v1/me/exports/{started['id']}"
    )
    assert client.post("/v1/me/exports", headers=ada.headers).json()["id"] == started["id"]  # one at a time
    assert (
        client.get(started["href"].removeprefix("http://testserver"), headers=ada.headers).json()["download"]
        is None
    )
    container.worker(name="test").drain()
    status = client.get(f"/v1/me/exports/{started['id']}", headers=ada.headers).json()
    assert status["status"] == "ready" and status["size_bytes"] > 0 and status["expires_at"].endswith("Z")

    r = client.get(_path(status["download"]["url"]))  # the link alone is enough (a browser follows it)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith('attachment; filename="tonearm-data-')
    assert len(r.content) == status["size_bytes"]
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    files = {name: zf.read(name) for name in zf.namelist()}
    assert set(files) == {
        "README.txt",
        "profile.json",
        "liked_tracks.json",
        "saved_albums.json",
        "followed_artists.json",
        "playlists.json",
        "playlist_collaborations.json",
        "plays.json",
        "play_events.json",
        "playbacks.json",
        "top_items.json",
        "uploads.json",
        "uploaded_tracks.json",
        "share_links.json",
        "sessions.json",
        "devices.json",
        "billing.json",
        "entitlements.json",
        "player_queue.json",
        "not_interested.json",
        "ratings.json",
        "bookmarks.json",
        "saved_play_queue.json",
        "now_playing.json",
        "api_keys.json",
    }
    data = {name: json.loads(body) for name, body in files.items() if name.endswith(".json")}
    assert data["profile.json"]["email"] == "ada@example.com" and "password_hash" not in data["profile.json"]
    assert [t["track"]["name"] for t in data["liked_tracks.json"]] == ["Eple"]
    assert [a["album"]["name"] for a in data["saved_albums.json"]] == ["Jazz"]
    assert [a["artist"]["name"] for a in data["followed_artists.json"]] == ["Queen"]
    [mix] = data["playlists.json"]
    assert mix["name"] == "Ada's mix" and mix["collaborators"] == [bob.user_id]
    assert [t["track"]["name"] for t in mix["tracks"]] == ["Yesterday", "Halo", "Halo"]  # in playlist order
    assert [(p["track"]["name"], p["context_uri"]) for p in data["plays.json"]] == [
        ("Eple", f"tonearm:album:{seeded.albums['Jazz']}"),
        ("Yesterday", None),
    ]
    assert len(data["play_events.json"]) == 4 and len(data["playbacks.json"]) == 2
    assert {i["type"] for i in data["top_items.json"]} == {"track", "artist"}
    assert [s["code"] for s in data["share_links.json"]] == [ada.share_code]
    assert len(data["sessions.json"]) == 1 and set(data["sessions.json"][0]) == {
        "id",
        "user_agent",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert [d["name"] for d in data["devices.json"]] == ["Ada's phone"]
    assert data["billing.json"]["payments"][0]["amount_minor"] == 1099
    jazz = seeded.albums["Jazz"]
    assert data["ratings.json"] == [
        {
            "type": "album",
            "rating": 4,
            "updated_at": data["ratings.json"][0]["updated_at"],
            "album": {"id": jazz, "uri": f"tonearm:album:{jazz}", "name": "Jazz"},
        }
    ]
    assert [(b["track"]["name"], b["position_ms"], b["comment"]) for b in data["bookmarks.json"]] == [
        ("Eple", 61_000, "Ada")
    ]
    queue = data["saved_play_queue.json"]
    assert [t["name"] for t in queue["tracks"]] == ["Eple", "Halo"] and queue["current_index"] == 1
    assert queue["position_ms"] == 5000 and queue["changed_by"] == "Ada's app"
    assert (
        data["now_playing.json"]["track"]["name"] == "Eple" and data["now_playing.json"]["client"] == "DSub"
    )
    [key] = data["api_keys.json"]
    assert key["name"] == "Ada's Symfonium" and set(key) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
    }
    readme = files["README.txt"].decode()
    assert "ada@example.com" in readme and "plays.json                     (     2)  every play" in readme

    # Nothing of Bob's (but his id, as her playlist's collaborator), no secret, anywhere in it.
    everything = b"\n".join(files.values()).decode()
    with container.db.read() as conn:
        secrets_ = [
            *conn.execute(sa.select(sessions.c.refresh_hash)).scalars(),
            *conn.execute(sa.select(users.c.password_hash)).scalars(),
            *conn.execute(sa.select(api_keys.c.key_hash)).scalars(),
            *conn.execute(sa.select(app_passwords.c.ciphertext)).scalars(),
        ]
    secrets_ += [container.credentials.app_password(p.user_id)["app_password"] for p in (ada, bob)]
    for needle in ("bob@example.com", "Bobby's mix", bob.share_code, "Bobby's phone", "idem-", "pm_secret"):
        assert needle not in everything, needle
    for secret in secrets_:
        assert secret not in everything
    # Bob's collaboration shows in *his* export: the playlist he may edit and the track he added.
    bobs = zipfile.ZipFile(
        io.BytesIO(client.get(_path(export_now(client, container, bob.headers)["download"]["url"])).content)
    )
    collab = json.loads(bobs.read("playlist_collaborations.json"))
    assert [p["name"] for p in collab["playlists"]] == ["Ada's mix"]
    assert [t["track"]["name"] for t in collab["tracks_you_added"]] == ["Halo"]


def test_export_links_are_private_signed_and_short_lived(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    seeded = seed(container)
    ada = make_person(client, container, seeded, "ada@example.com", "Ada", seeded.tracks["Eple"])
    bob = make_person(client, container, seeded, "bob@example.com", "Bobby", seeded.tracks["Halo"])
    status = export_now(client, container, ada.headers)
    export_id, url = status["id"], _path(status["download"]["url"])
    assert client.get(url, headers=ada.headers).status_code == 200  # with the owner's token too

    # Another user's export is as good as missing; their token cannot ride on the owner's link.
    for method, path in (("GET", f"/v1/me/exports/{export_id}"),):
        r = client.request(method, path, headers=bob.headers)
        assert r.status_code == 404 and r.json()["error"]["message"] == f"export {export_id} not found"
    r = client.get(url, headers=bob.headers)
    assert r.status_code == 403 and "another user" in r.json()["error"]["message"]

    # Tampering with any part of the link is refused.
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = [
        ({**q, "sig": q["sig"][:-2] + ("AA" if q["sig"][-2:] != "AA" else "BB")}, "signature"),
        ({**q, "exp": str(int(q["exp"]) + 3600)}, "signature"),
        ({**q, "u": bob.user_id}, "signature"),
        ({k: v for k, v in q.items() if k != "sig"}, "not signed"),
        ({**q, "exp": "soon"}, "expiry"),
    ]
    for params, message in tampered:
        r = client.get(f"{parts.path}?{urlencode(params)}")
        assert r.status_code == 403 and message in r.json()["error"]["message"], (params, r.text)
    # Bob's own valid link does not open Ada's export.
    bobs = export_now(client, container, bob.headers)
    bq = {k: v[0] for k, v in parse_qs(urlsplit(bobs["download"]["url"]).query).items()}
    assert client.get(f"/exports/{export_id}/archive.zip?{urlencode(bq)}").status_code == 403

    # Links last 10 minutes; asking for the status again gives a fresh one.
    clock.advance(601)
    r = client.get(url)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    fresh = client.get(f"/v1/me/exports/{export_id}", headers=ada.headers).json()["download"]["url"]
    assert client.get(_path(fresh)).status_code == 200

    # Exports are kept 7 days, then they (and their file) are gone.
    with container.db.read() as conn:
        key = conn.execute(
            sa.select(data_exports.c.blob_key).where(data_exports.c.id == export_id)
        ).scalar_one()
    assert container.blobs.exists(key)
    clock.advance(7 * 86400)
    r = client.get(f"/v1/me/exports/{export_id}", headers=ada.headers)
    assert r.status_code == 404 and "expired" in r.json()["error"]["message"]
    assert not container.blobs.exists(key)
    assert client.get(f"/v1/me/exports/{export_id}", headers=ada.headers).status_code == 404

    for bad, status_code in (("nope", 400), ("0" * 22, 404)):
        r = client.get(f"/v1/me/exports/{bad}", headers=ada.headers)
        assert r.status_code == status_code and r.json()["error"]["status"] == status_code
    assert client.post("/v1/me/exports").status_code == 401


def test_every_table_that_names_a_user_is_exported_or_says_why_not() -> None:
    tables = {col.table.name for col in user_columns()} | {"users"}
    assert tables == set(COVERAGE), tables ^ set(COVERAGE)


# Deletion --------------------------------------------------------------------------------------------
def _blob(c: Container, key: str) -> str:
    c.blobs.put_bytes(key, b"bytes of " + key.encode())
    return key


def test_deleting_the_account_removes_every_row_and_file_of_the_user(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    seeded = seed(container)
    assert client.get("/v1/search", params={"q": "eple", "type": "track"}).json()["tracks"]["total"] == 1
    ada = make_person(client, container, seeded, "ada@example.com", "Ada", seeded.tracks["Eple"])
    bob = make_person(client, container, seeded, "bob@example.com", "Bobby", seeded.tracks["Eple"])
    ids = seeded.tracks
    now = clock.now()
    # Ada uploaded Eple (public: Bob likes it and played it) and a private demo, which has a
    # rendition file; an upload is still pending with its file; she has an avatar.
    demo, avatar = new_id(), new_id()
    keys = [_blob(container, f"tracks/{demo}/aac_160.m4a"), _blob(container, f"uploads/{new_id()}")]
    keys += [_blob(container, f"images/{avatar}/{s}.jpg") for s in (640, 300, 64)]
    with container.db.write() as conn:
        conn.execute(sa.update(tracks).where(tracks.c.id == ids["Eple"]).values(owner_user_id=ada.user_id))
        conn.execute(
            sa.insert(tracks).values(
                id=demo, title="Demo Take", album_id=seeded.albums["Melody A.M."], duration_ms=1000,
                status="ready", visibility="private", owner_user_id=ada.user_id, content_hash="d" * 64,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(
            sa.insert(renditions).values(
                id=new_id(), track_id=demo, name="aac_160", codec="aac", bitrate_kbps=160, container="mp4",
                content_type="audio/mp4", blob_key=keys[0], size_bytes=9, duration_ms=1000, created_at=now,
            )
        )  # fmt: skip
        conn.execute(
            sa.insert(uploads).values(
                id=new_id(), user_id=ada.user_id, filename="next.flac", status="pending", size_bytes=9,
                content_hash="e" * 64, blob_key=keys[1], created_at=now, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(sa.insert(images).values(id=avatar, source="uploaded", created_at=now))
        conn.execute(
            sa.insert(image_variants),
            [
                {"image_id": avatar, "size": s, "width": s, "height": s,
                 "blob_key": f"images/{avatar}/{s}.jpg", "content_type": "image/jpeg", "bytes": 9}
                for s in (640, 300, 64)
            ],
        )  # fmt: skip
        conn.execute(sa.update(users).where(users.c.id == ada.user_id).values(avatar_image_id=avatar))
        melody_cover = conn.execute(
            sa.select(albums.c.image_id).where(albums.c.id == seeded.albums["Melody A.M."])
        ).scalar_one()
        cover_keys = list(
            conn.execute(
                sa.select(image_variants.c.blob_key).where(image_variants.c.image_id == melody_cover)
            ).scalars()
        )
    keys += [_blob(container, k) for k in cover_keys]
    export_key = f"exports/{ada.user_id}/{export_now(client, container, ada.headers)['id']}.zip"
    keys.append(export_key)
    assert all(container.blobs.exists(k) for k in keys)
    with container.db.read() as conn:
        queen = seeded.artists["Queen"]
        assert conn.execute(sa.select(artists.c.followers).where(artists.c.id == queen)).scalar_one() == 2
        seq_before = changes.head(conn)

    # The password again, or nothing happens.
    wrong = client.request("DELETE", "/v1/me", json={"password": "not it"}, headers=ada.headers)
    assert wrong.status_code == 403 and wrong.json()["error"]["message"] == "password: incorrect"
    for bad_body in (None, {}, {"password": ""}, {"password": PASSWORD, "extra": 1}):
        r = client.request("DELETE", "/v1/me", json=bad_body, headers=ada.headers)
        assert r.status_code == 400, (bad_body, r.text)
    assert client.request("DELETE", "/v1/me", json={"password": PASSWORD}).status_code == 401
    assert client.get("/v1/me", headers=ada.headers).status_code == 200

    assert (
        client.request("DELETE", "/v1/me", json={"password": PASSWORD}, headers=ada.headers).status_code
        == 204
    )

    # Every row that names her, in every table, is gone (or no longer names her).
    with container.db.read() as conn:
        for col in user_columns():
            n = conn.execute(
                sa.select(sa.func.count()).select_from(col.table).where(col == ada.user_id)
            ).scalar_one()
            assert n == 0, f"{col.table.name}.{col.name} still holds {n} row(s) of the deleted user"
        assert conn.execute(sa.select(users.c.id).where(users.c.id == ada.user_id)).first() is None
        # Her tracks, the album they alone made up, its artist and the unused images went too.
        gone = {ids["Eple"], demo}
        assert conn.execute(sa.select(tracks.c.id).where(tracks.c.id.in_(gone))).all() == []
        assert (
            conn.execute(sa.select(albums.c.id).where(albums.c.id == seeded.albums["Melody A.M."])).first()
            is None
        )
        assert (
            conn.execute(sa.select(artists.c.id).where(artists.c.id == seeded.artists["Röyksopp"])).first()
            is None
        )
        assert conn.execute(sa.select(images.c.id).where(images.c.id.in_([avatar, melody_cover]))).all() == []
        # Search is told: the change log names her tracks, their album and artist.
        noted = {
            (r.entity, r.entity_id)
            for r in conn.execute(sa.select(changes.changes).where(changes.changes.c.seq > seq_before))
        }
        assert {("track", ids["Eple"]), ("track", demo), ("album", seeded.albums["Melody A.M."])} <= noted
        assert ("playlist", ada.playlist) in noted
        # Her follow no longer counts; Bob's data is all there (but Eple, which was hers).
        assert conn.execute(sa.select(artists.c.followers).where(artists.c.id == queen)).scalar_one() == 1
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(plays).where(plays.c.user_id == bob.user_id)
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(play_events)
                .where(play_events.c.user_id == bob.user_id)
            ).scalar_one()
            == 2
        )
        assert (
            conn.execute(sa.select(playlists.c.id).where(playlists.c.owner_id == bob.user_id)).scalar_one()
            == bob.playlist
        )
    for key in keys:
        assert not container.blobs.exists(key), key
    # Search forgets her tracks and their artist.
    assert container.indexer.wait_caught_up()
    found = client.get("/v1/search", params={"q": "eple royksopp", "type": "track,artist"}).json()
    assert found["tracks"]["items"] == [] and found["artists"]["items"] == []
    # The old token is refused at once; the e-mail address is free again.
    assert client.get("/v1/me", headers=ada.headers).status_code == 401
    assert client.get("/v1/me/tracks", headers=ada.headers).status_code == 401
    assert client.get(f"/v1/tracks/{ids['Eple']}").status_code == 404
    assert (
        client.get("/v1/me/tracks", headers=bob.headers).json()["total"] == 0
    )  # his like of Eple went with it
    again = sign_up_and_login(client, "ada@example.com")
    assert again["user_id"] != ada.user_id
    assert client.get("/v1/me/player/recently-played", headers=again["headers"]).json()["items"] == []


def test_wrong_passwords_are_rate_limited(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    ada = sign_up_and_login(client)
    limit = container.settings.login_attempts_per_minute
    for _ in range(limit):
        r = client.request("DELETE", "/v1/me", json={"password": "guess"}, headers=ada["headers"])
        assert r.status_code == 403
    r = client.request("DELETE", "/v1/me", json={"password": PASSWORD}, headers=ada["headers"])
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "too many wrong passwords" in r.json()["error"]["message"]
    clock.advance(61)
    r = client.request("DELETE", "/v1/me", json={"password": PASSWORD}, headers=ada["headers"])
    assert r.status_code == 204


def test_an_export_whose_job_never_finished_does_not_block_the_next(
    client: TestClient, container: Container, clock: FrozenClock
) -> None:
    ada = sign_up_and_login(client)
    stuck = client.post("/v1/me/exports", headers=ada["headers"]).json()["id"]  # no worker runs it
    clock.advance(3600)
    assert client.post("/v1/me/exports", headers=ada["headers"]).json()["id"] == stuck  # still in the making
    clock.advance(6 * 3600)
    fresh = client.post("/v1/me/exports", headers=ada["headers"])
    assert fresh.status_code == 202 and fresh.json()["id"] != stuck
    container.worker(name="test").drain()  # the old job finds its export given up, and leaves it
    assert (
        client.get(f"/v1/me/exports/{fresh.json()['id']}", headers=ada["headers"]).json()["status"] == "ready"
    )
    assert client.get(f"/v1/me/exports/{stuck}", headers=ada["headers"]).status_code == 404
