"""Media retrieval over Subsonic with real audio: stream (plan caps, maxBitRate, format, Range,
timeOffset), download, hls.m3u8, getCoverArt, getAvatar and the lyrics methods, on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.helpers import make_tone
from tests.integration.subsonic.conftest import Listener, World
from tests.premium import make_premium
from tests.subsonic import check, error_code
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import albums, tracks
from tonearm.domains.history.tables import plays
from tonearm.domains.ingest.service import ReceivedFile

SECONDS = 6


@dataclass
class Audio:
    track: str  # public FLAC upload (a lossless original is kept)
    private: str  # another listener's private upload
    album: str
    image: str
    premium: Listener


def _ingest(world: World, owner: str, path: Path, visibility: str) -> str:
    data = path.read_bytes()
    received = ReceivedFile(path, path.name, len(data), hashlib.sha256(data).hexdigest(), data[:64])
    upload_id = world.c.ingest.receive(owner, received, visibility=visibility)
    world.c.worker(name="test").drain()
    status = world.c.ingest.upload_status(upload_id, owner)
    assert status["status"] == "ready", status
    return str(status["track"]["id"])


@pytest.fixture(scope="module")
def audio(world: World, tmp_path_factory: pytest.TempPathFactory) -> Audio:
    tmp = tmp_path_factory.mktemp("audio")
    flac = make_tone(
        tmp / "tone.flac",
        seconds=SECONDS,
        noise=True,
        tags={"title": "Tone Flac", "artist": "Sine Wave", "album": "Test Tones"},
    )
    mp3 = make_tone(tmp / "secret.mp3", seconds=3, tags={"title": "Private Tone", "artist": "Hidden"})
    track = _ingest(world, world.admin.user_id, flac, "public")
    private = _ingest(world, world.other.user_id, mp3, "private")
    with world.c.db.read() as conn:
        album, image = conn.execute(
            sa.select(albums.c.id, albums.c.image_id)
            .join(tracks, tracks.c.album_id == albums.c.id)
            .where(tracks.c.id == track)
        ).one()
    premium = world.new_listener()
    make_premium(world.c, premium.user_id)
    return Audio(track, private, album, image, premium)


def _get(
    world: World, method: str, who: Listener | None = None, headers: Any = None, **params: Any
) -> httpx.Response:
    who = who or world.me
    r: httpx.Response = world.client.get(f"/rest/{method}", params={**who.auth, **params}, headers=headers)
    return r


def _failed(world: World, method: str, who: Listener | None = None, **params: Any) -> tuple[int, str]:
    """The error code and message of a binary method's failure, checked in XML and JSON."""
    xml = _get(world, method, who, **params)
    assert xml.headers["content-type"].startswith("text/xml"), xml.headers
    root = check(method, xml)
    body = check(method, _get(world, method, who, f="json", **params))
    assert error_code(root) == error_code(body)
    return body["error"]["code"], body["error"]["message"]


def _rendition_bytes(world: World, track_id: str, name: str) -> bytes:
    info = world.c.streaming.info(track_id)
    r = info.renditions[name]
    with world.c.blobs.open(r.blob_key) as fh:
        return fh.read()


def _probe(data: bytes, tmp: Path) -> dict[str, Any]:
    path = tmp / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", str(path)],
        check=True,
        capture_output=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_stream_caps_a_free_listener_and_gives_premium_the_original(world: World, audio: Audio) -> None:
    free = _get(world, "stream", id=audio.track)
    assert free.status_code == 200 and free.headers["content-type"] == "audio/mp4"
    assert free.content == _rendition_bytes(world, audio.track, "aac_160")
    # raw is the original, but not beyond the plan.
    assert _get(world, "stream", id=audio.track, format="raw").content == free.content
    assert _get(world, "stream", id=audio.track, maxBitRate=320).content == free.content
    assert _get(world, "stream", id=audio.track, maxBitRate=100).content == _rendition_bytes(
        world, audio.track, "aac_96"
    )
    premium = _get(world, "stream", audio.premium, id=audio.track)
    assert premium.headers["content-type"] == "audio/flac"
    assert premium.content == _rendition_bytes(world, audio.track, "original")
    assert premium.content[:4] == b"fLaC"
    capped = _get(world, "stream", audio.premium, id=audio.track, maxBitRate=320)
    assert capped.content == _rendition_bytes(world, audio.track, "aac_320")


def test_stream_answers_range_requests_with_the_exact_bytes(world: World, audio: Audio) -> None:
    whole = _rendition_bytes(world, audio.track, "aac_160")
    part = _get(world, "stream", id=audio.track, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert part.content == whole[100:1100]
    tail = _get(world, "stream", id=audio.track, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole[-10:]
    assert _get(world, "stream", id=audio.track).headers["accept-ranges"] == "bytes"
    # Apps send every call as a form POST (formPost; py-sonic and py-opensonic do): a range too.
    posted = world.client.post(
        "/rest/stream",
        data={**world.me.auth, "id": audio.track},
        headers={"Range": "bytes=100-1099"},
    )
    assert posted.status_code == 206 and posted.content == whole[100:1100]


def test_behind_nginx_gets_go_to_nginx_and_form_posts_are_served_here(
    world: World, audio: Audio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx answers an internal redirect of a POST to a static file with 405: POSTs are sent
    from the app itself, GETs through X-Accel-Redirect."""
    monkeypatch.setattr(world.c.settings, "stream_delivery", "accel")
    got = _get(world, "stream", id=audio.track)
    assert got.status_code == 200 and got.headers["x-accel-redirect"].endswith(".m4a") and not got.content
    posted = world.client.post("/rest/stream", data={**world.me.auth, "id": audio.track})
    assert posted.status_code == 200 and "x-accel-redirect" not in posted.headers
    assert posted.content == _rendition_bytes(world, audio.track, "aac_160")


def test_format_mp3_transcodes_to_real_mp3_within_the_plan(
    world: World, audio: Audio, tmp_path: Path
) -> None:
    free = _get(world, "stream", id=audio.track, format="mp3")
    assert free.status_code == 200 and free.headers["content-type"] == "audio/mpeg"
    probe = _probe(free.content, tmp_path)
    assert probe["streams"][0]["codec_name"] == "mp3"
    assert int(probe["streams"][0]["bit_rate"]) == 160_000
    assert abs(float(probe["format"]["duration"]) - SECONDS) < 0.2
    premium = _get(world, "stream", audio.premium, id=audio.track, format="mp3")
    assert int(_probe(premium.content, tmp_path)["streams"][0]["bit_rate"]) == 320_000
    opus = _get(world, "stream", id=audio.track, format="opus", maxBitRate=64)
    stream = _probe(opus.content, tmp_path)["streams"][0]
    assert opus.headers["content-type"] == "audio/ogg" and stream["codec_name"] == "opus"
    # Made once, then kept as renditions.
    assert {"mp3_160", "mp3_320", "opus_64"} <= set(world.c.streaming.info(audio.track).renditions)


@pytest.mark.parametrize("fmt", ["mp3;rm -rf /", "wav", "-i file:/etc/passwd", "mp3_999"])
def test_a_format_outside_the_table_is_refused(world: World, audio: Audio, fmt: str) -> None:
    code, message = _failed(world, "stream", id=audio.track, format=fmt)
    assert code == 0 and "format" in message


def test_time_offset_starts_the_audio_later(world: World, audio: Audio, tmp_path: Path) -> None:
    r = _get(world, "stream", id=audio.track, format="mp3", timeOffset="2.5")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    probe = _probe(r.content, tmp_path)
    assert probe["streams"][0]["codec_name"] == "mp3"
    assert abs(float(probe["format"]["duration"]) - (SECONDS - 2.5)) < 0.3
    aac = _get(world, "stream", id=audio.track, timeOffset=3)
    assert aac.headers["content-type"] == "audio/aac"
    assert abs(float(_probe(aac.content, tmp_path)["format"]["duration"]) - (SECONDS - 3)) < 0.3
    flac = _get(world, "stream", audio.premium, id=audio.track, timeOffset=1)
    assert flac.content[:4] == b"fLaC"
    for bad in ("abc", "-1", "1e9", "nan", str(SECONDS + 1)):
        code, message = _failed(world, "stream", id=audio.track, timeOffset=bad)
        assert code == 0 and "timeOffset" in message, bad


def test_a_private_upload_of_another_listener_is_not_found(world: World, audio: Audio) -> None:
    for method in ("stream", "download", "hls.m3u8"):
        assert _failed(world, method, audio.premium, id=audio.private)[0] == 70
    assert _failed(world, "stream", id="x" * 22)[0] == 70
    assert _failed(world, "stream", id="../../etc/passwd")[0] == 70
    assert _failed(world, "stream")[0] == 10
    # Its owner streams it.
    assert _get(world, "stream", world.other, id=audio.private).status_code == 200


def test_streaming_counts_no_play(world: World, audio: Audio) -> None:
    def counted() -> tuple[int, int]:
        with world.c.db.read() as conn:
            count = conn.execute(
                sa.select(tracks.c.play_count).where(tracks.c.id == audio.track)
            ).scalar_one()
            rows = conn.execute(
                sa.select(sa.func.count()).select_from(plays).where(plays.c.track_id == audio.track)
            ).scalar_one()
        return int(count), int(rows)

    before = counted()
    for _ in range(3):
        assert _get(world, "stream", id=audio.track).status_code == 200
    assert counted() == before


def test_download_is_for_plans_with_offline_listening(world: World, audio: Audio) -> None:
    code, message = _failed(world, "download", id=audio.track)
    assert code == 50 and "Premium" in message
    r = _get(world, "download", audio.premium, id=audio.track)
    assert r.status_code == 200 and r.content == _rendition_bytes(world, audio.track, "original")
    assert r.headers["content-disposition"].startswith('attachment; filename="Tone Flac.flac"')


def test_hls_lists_the_variants_the_plan_allows_with_working_urls(world: World, audio: Audio) -> None:
    r = _get(world, "hls.m3u8", id=audio.track)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    uris = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    assert r.text.startswith("#EXTM3U") and uris
    assert all(u.startswith(f"http://testserver/hls/{audio.track}/aac_") for u in uris)
    assert not any("aac_320" in u for u in uris)  # free: up to 160 kb/s
    media = world.client.get(uris[0])
    assert media.status_code == 200 and "#EXTINF" in media.text
    premium = _get(world, "hls.m3u8", audio.premium, id=audio.track).text
    assert "aac_320.m3u8" in premium
    low = _get(world, "hls.m3u8", audio.premium, id=audio.track, bitRate=100).text
    assert "aac_96.m3u8" in low and "aac_160" not in low and "aac_320" not in low
    assert _failed(world, "hls.m3u8", id=audio.track, bitRate="fast")[0] == 0


def test_cover_art_by_image_album_and_song_id(world: World, audio: Audio) -> None:
    by_image = _get(world, "getCoverArt", id=audio.image)
    assert by_image.status_code == 200 and by_image.headers["content-type"].startswith("image/")
    assert "immutable" in by_image.headers["cache-control"]
    assert _get(world, "getCoverArt", id=audio.album).content == by_image.content
    assert _get(world, "getCoverArt", id=audio.track).content == by_image.content
    small = _get(world, "getCoverArt", id=audio.image, size=64)
    assert small.status_code == 200 and len(small.content) < len(by_image.content)
    etag = by_image.headers["etag"]
    again = _get(world, "getCoverArt", id=audio.image, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert _failed(world, "getCoverArt", id=audio.private)[0] == 70
    assert _failed(world, "getCoverArt", id="nope")[0] == 70


def test_avatar_of_oneself_only(world: World, audio: Audio) -> None:
    who = world.new_listener()
    assert _failed(world, "getAvatar", who, username=who.email)[0] == 70  # none set
    with world.c.db.write() as conn:
        conn.execute(sa.update(users).where(users.c.id == who.user_id).values(avatar_image_id=audio.image))
    mine = _get(world, "getAvatar", who, username=who.email.upper())
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("image/")
    assert _get(world, "getAvatar", world.admin, username=who.email).content == mine.content
    assert _failed(world, "getAvatar", world.me, username=who.email)[0] == 70


def test_lyrics_are_empty_not_made_up(world: World, audio: Audio) -> None:
    lyrics = world.rest("getLyrics", artist="Sine Wave", title="Tone Flac")["lyrics"]
    assert lyrics == {"value": ""}
    found = world.rest("getLyricsBySongId", id=audio.track)["lyricsList"]
    assert found == {"structuredLyrics": []}
    assert world.rest("getLyricsBySongId", id=audio.private)["error"]["code"] == 70
    assert world.rest("getLyricsBySongId")["error"]["code"] == 10
