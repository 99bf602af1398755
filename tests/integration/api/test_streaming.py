"""The first cut of playback: grants follow entitlements, stream URLs are signed, expire, serve Range."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.helpers import make_tone
from tests.premium import make_premium
from tonearm.bootstrap import Container

from .conftest import sign_up_and_login
from .test_ingest import drain, upload


def _ready_track(client: TestClient, container: Container, tmp_path: Path, headers: dict[str, str]) -> str:
    src = make_tone(tmp_path / "s.flac", seconds=3, tags={"title": "Streamed"})
    up = upload(client, headers, src).json()
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=headers).json()
    assert done["status"] == "ready", done
    return str(done["track"]["id"])


def test_grant_caps_free_and_opens_lossless_to_premium(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"])
    free = client.get(f"/v1/tracks/{track_id}/playback", headers=tok["headers"]).json()
    assert {r["name"] for r in free["renditions"]} == {"aac_96", "aac_160"}
    assert free["quality_cap_kbps"] == 160 and free["loudness"]["gain_db"] is not None
    make_premium(container, tok["user_id"])
    fresh = client.post(
        "/api/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": "correct horse"},
    ).json()
    premium = client.get(
        f"/v1/tracks/{track_id}/playback", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    ).json()
    assert {r["name"] for r in premium["renditions"]} == {"aac_96", "aac_160", "aac_320", "original"}


def test_stream_urls_are_signed_expire_and_serve_ranges(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"])
    grant = client.get(f"/v1/tracks/{track_id}/playback", headers=tok["headers"]).json()
    url = grant["renditions"][0]["url"].replace("http://testserver", "")
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(whole.content)}"
    tampered = url.replace("sig=", "sig=A")
    assert client.get(tampered).json()["error"]["status"] == 403
    other_rendition = url.replace("/aac_96?", "/aac_320?").replace("/aac_160?", "/aac_320?")
    assert client.get(other_rendition).status_code == 403  # a free grant does not stretch to 320k
    expired = url.split("exp=")[0] + "exp=1000000000&" + url.split("&", 2)[-1]
    r = client.get(expired)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    assert "/data/" not in r.text and "blobs" not in r.text


def test_no_grant_for_someone_elses_private_track(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    owner = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, owner["headers"])
    eve = sign_up_and_login(client, "eve@example.com")
    r = client.get(f"/v1/tracks/{track_id}/playback", headers=eve["headers"])
    assert r.status_code == 404
    assert client.get(f"/v1/tracks/{track_id}/playback").status_code == 401


def test_pipeline_and_streaming_work_on_a_store_without_local_paths(tmp_path: Path, db_url: str) -> None:
    """The in-memory blob store has no file paths: ingest copies blobs out, streaming sends chunks."""
    from tests.helpers import make_settings
    from tonearm.bootstrap import bootstrap
    from tonearm.http.app import create_app

    c = bootstrap(make_settings(tmp_path, db_url, blob_url="memory://"))
    with TestClient(create_app(c, start_workers=False)) as client:
        tok = sign_up_and_login(client)
        track_id = _ready_track(client, c, tmp_path, tok["headers"])
        grant = client.get(f"/v1/tracks/{track_id}/playback", headers=tok["headers"]).json()
        rendition = grant["renditions"][0]
        body = client.get(rendition["url"].replace("http://testserver", ""))
        assert body.status_code == 200 and len(body.content) == rendition["size_bytes"]
        assert body.content[4:8] == b"ftyp"  # an MP4 rendition, sent from memory
