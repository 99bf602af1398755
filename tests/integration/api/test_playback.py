"""Playback end to end through the API: grants, HLS playlists (validated by the m3u8 parser and by
ffprobe over real HTTP), signed URLs, on-demand renditions, bad input, and player events."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import m3u8
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.helpers import make_settings, make_tone
from tests.premium import make_premium
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import renditions, tracks
from tonearm.domains.history.tables import plays
from tonearm.http.app import create_app

from .conftest import sign_up_and_login
from .test_ingest import drain, upload


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _ready_track(
    client: TestClient,
    container: Container,
    tmp_path: Path,
    headers: dict[str, str],
    *,
    seconds: float = 12,
    visibility: str = "private",
) -> str:
    src = make_tone(tmp_path / f"s{seconds}.flac", seconds=seconds, tags={"title": "Streamed"}, noise=True)
    up = upload(client, headers, src, visibility=visibility).json()
    drain(container)
    done = client.get(f"/v1/me/uploads/{up['id']}", headers=headers).json()
    assert done["status"] == "ready", done
    return str(done["track"]["id"])


def _premium(client: TestClient, container: Container, tok: dict[str, Any]) -> dict[str, str]:
    make_premium(container, tok["user_id"])
    fresh = client.post(
        "/api/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": "correct horse"},
    ).json()
    return {"Authorization": f"Bearer {fresh['access_token']}"}


def _grant(client: TestClient, track_id: str, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = client.get(f"/v1/tracks/{track_id}/playback", headers=headers, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_hls_master_and_media_playlists_are_valid_and_follow_the_plan(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"])
    free = _grant(client, track_id, tok["headers"])
    master_r = client.get(_path(free["hls"]["master_url"]))
    assert master_r.status_code == 200
    assert master_r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    master = m3u8.loads(master_r.text)
    assert master.is_variant
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in master_r.text
    bandwidths = {}
    for p in master.playlists:
        info = p.stream_info
        assert info.codecs == "mp4a.40.2"
        assert info.bandwidth >= info.average_bandwidth > 0
        bandwidths[p.uri.split(".")[0]] = info.average_bandwidth
    assert set(bandwidths) == {"aac_96", "aac_160"}  # the free plan stops at 160 kb/s
    assert master.playlists[0].uri.startswith("aac_160")  # the start rendition comes first
    assert bandwidths["aac_96"] < bandwidths["aac_160"]

    base = _path(free["hls"]["master_url"]).rsplit("/", 1)[0]
    seg_counts = set()
    for p in master.playlists:
        media_r = client.get(f"{base}/{p.uri}")
        assert media_r.status_code == 200
        media = m3u8.loads(media_r.text)
        assert media.is_independent_segments and media.is_endlist and media.playlist_type == "vod"
        assert media.segment_map and media.segment_map[0].byterange
        segs = media.segments
        seg_counts.add(tuple(round(s.duration, 2) for s in segs))
        assert segs[0].duration <= 1.5  # a small first segment: playback starts at once
        assert abs(sum(s.duration for s in segs) - 12) < 0.2
        assert media.target_duration >= max(s.duration for s in segs)
        # Every byte range really is a fragment of the file: a moof box starts each one.
        length, offset = (int(x) for x in segs[1].byterange.split("@"))
        part = client.get(f"{base}/{segs[1].uri}", headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        assert part.status_code == 206 and len(part.content) == length
        assert part.content[4:8] in (b"moof", b"styp")
    assert len(seg_counts) == 1  # segment boundaries line up across renditions: gapless switching

    start = free["hls"]["start"]
    first = client.get(_path(start["url"]), headers={"Range": start["range"]})
    assert first.status_code == 206 and first.content[4:8] == b"ftyp"
    assert first.headers["content-type"] == "audio/mp4"

    premium = _grant(client, track_id, _premium(client, container, tok))
    pm = m3u8.loads(client.get(_path(premium["hls"]["master_url"])).text)
    assert {p.uri.split(".")[0] for p in pm.playlists} == {"aac_96", "aac_160", "aac_320"}


def test_signed_urls_reject_tampering_expiry_and_other_users(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"], seconds=3, visibility="public")
    g = _grant(client, track_id, tok["headers"])
    master = _path(g["hls"]["master_url"])
    assert client.get(master).status_code == 200
    # The plan's cap is inside the signature: lifting it breaks the URL.
    lifted = client.get(master.replace("q=160", "q=320L"))
    assert lifted.status_code == 403 and "signature" in lifted.json()["error"]["message"]
    seg = _path(g["hls"]["start"]["url"])
    assert client.get(seg.replace("aac_160.mp4", "aac_320.mp4")).status_code == 403
    expired = seg.replace(f"exp={g['expires_at']}", "exp=1000000000")
    r = client.get(expired)
    assert r.status_code == 403
    other = sign_up_and_login(client, "eve@example.com")
    # Eve's token with Ada's URL: a capability granted to someone else.
    r = client.get(seg, headers=other["headers"])
    assert r.status_code == 403 and "another user" in r.json()["error"]["message"]
    # Eve may not pass Ada's URL off as hers either: the user is signed.
    forged = seg.replace(f"u={tok['user_id']}", f"u={other['user_id']}")
    assert client.get(forged).status_code == 403
    for r in (lifted, client.get(expired)):
        assert "blobs" not in r.text and "tracks/" not in r.text


def test_range_requests_through_the_app(client: TestClient, container: Container, tmp_path: Path) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"], seconds=3)
    url = _path(_grant(client, track_id, tok["headers"])["renditions"][0]["url"])
    whole = client.get(url)
    size = len(whole.content)
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    assert whole.headers["accept-ranges"] == "bytes"
    suffix = client.get(url, headers={"Range": "bytes=-100"})
    assert suffix.status_code == 206 and suffix.content == whole.content[-100:]
    assert suffix.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
    tail = client.get(url, headers={"Range": f"bytes={size - 10}-"})
    assert tail.content == whole.content[-10:]
    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["error"]["status"] == 416
    for bad in ("bytes=abc", "bytes=5-2", "bytes=--5", "bytes=0-1," * 20):
        r = client.get(url, headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.json()["error"]["message"]
    huge = client.get(url, headers={"Range": "bytes=0-99999999999999"})
    assert huge.status_code == 206 and huge.content == whole.content
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == whole.content
    fresh = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == whole.content[:10]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    head = client.head(url)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == size


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/stream/..%2F..%2Fetc/passwd", 404),
        ("/stream/%2e%2e/aac_96", 400),
        ("/stream/abc%5C..%5Cx/aac_96", 400),
        ("/stream/abc%00/aac_96", 400),
        ("/hls/..%2F/master.m3u8", 404),
    ],
)
def test_path_like_ids_never_reach_the_file_system(client: TestClient, path: str, status: int) -> None:
    r = client.get(path + "?u=x&exp=9999999999&sig=x")
    assert r.status_code in (status, 403, 404)
    assert r.json()["error"]["message"]


def test_unknown_codecs_and_bitrates_are_refused_clearly(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"], seconds=3)
    for fmt, status, words in (
        ("wav_999", 400, "unknown rendition"),
        ("aac_100", 400, "unsupported bitrate"),
        ("../../x", 400, "unknown rendition"),
        ("aac_320", 403, "above what your plan"),
        ("flac", 403, "above what your plan"),
    ):
        r = client.get(f"/v1/tracks/{track_id}/playback", headers=tok["headers"], params={"format": fmt})
        assert r.status_code == status, (fmt, r.text)
        assert words in r.json()["error"]["message"]
    g = _grant(client, track_id, tok["headers"])
    url = _path(g["renditions"][0]["url"]).replace("/aac_96?", "/vorbis_96?")
    r = client.get(url)
    assert r.status_code == 400 and "unknown rendition" in r.json()["error"]["message"]


def _transcodes() -> float:
    return REGISTRY.get_sample_value("tonearm_ondemand_transcodes_total") or 0.0


def test_a_missing_rendition_is_transcoded_once_for_concurrent_requests(
    client: TestClient, container: Container, tmp_path: Path, db_url: str
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"], seconds=6)
    g = _grant(client, track_id, tok["headers"], format="opus_96")
    opus = next(r for r in g["renditions"] if r["name"] == "opus_96")
    assert opus["ready"] is False and opus["size_bytes"] is None
    # A second process (its own container, same database and blobs) asks at the same time.
    other = bootstrap(make_settings(tmp_path, db_url))
    before = _transcodes()
    try:
        with TestClient(create_app(other, start_workers=False)) as client2:
            clients = [client, client2] * 4
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(lambda c: c.get(_path(opus["url"])), clients))
    finally:
        other.close()
    assert all(r.status_code == 200 for r in results), [r.text[:200] for r in results]
    assert len({r.content for r in results}) == 1
    assert results[0].content[:4] == b"OggS" and results[0].headers["content-type"] == "audio/ogg"
    assert _transcodes() - before == 1
    with container.db.read() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).where(
                renditions.c.track_id == track_id, renditions.c.name == "opus_96"
            )
        ).scalar_one()
    assert n == 1
    again = _grant(client, track_id, tok["headers"], format="opus_96")
    assert next(r for r in again["renditions"] if r["name"] == "opus_96")["ready"] is True


def test_tracks_without_hls_are_packaged_on_first_request(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"], seconds=5)
    with container.db.write() as conn:  # as if ingested before HLS existed
        conn.execute(
            sa.update(renditions)
            .where(renditions.c.track_id == track_id)
            .values(hls_blob_key=None, hls_index=None)
        )
    container.catalog.invalidate_track(track_id)
    g = _grant(client, track_id, tok["headers"])
    assert g["hls"]["start"] is None  # nothing packaged yet, so no prefetch hint
    master = m3u8.loads(client.get(_path(g["hls"]["master_url"])).text)
    assert len(master.playlists) == 2
    base = _path(g["hls"]["master_url"]).rsplit("/", 1)[0]
    media = m3u8.loads(client.get(f"{base}/{master.playlists[0].uri}").text)
    assert media.segments and media.segment_map


# Player events ------------------------------------------------------------------------------------
def _event(i: str, kind: str, track_id: str, pb: str = "pb1", **kw: Any) -> dict[str, Any]:
    ts = kw.pop("ts", dt.datetime.now(dt.UTC))
    return {"id": i, "type": kind, "track_id": track_id, "playback_id": pb, "timestamp": ts.isoformat(), **kw}


def test_player_events_are_idempotent_and_count_a_play_at_30_seconds(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    h = tok["headers"]
    track_id = _ready_track(client, container, tmp_path, h, seconds=45)
    batch = [
        _event("e1", "start", track_id, position_ms=0, rendition="aac_160", startup_ms=120),
        _event("e2", "progress", track_id, position_ms=10_000, ms_played=10_000, rendition="aac_160"),
        _event("e3", "rebuffer", track_id, position_ms=10_000, duration_ms=500, rendition="aac_160"),
    ]
    r = client.post("/v1/me/player/events", headers=h, json={"events": batch})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0, "rejected": [], "plays_counted": 0}
    again = client.post("/v1/me/player/events", headers=h, json={"events": batch})
    assert again.json()["duplicates"] == 3 and again.json()["accepted"] == 0
    # A seek forward to 40 s is not 40 s heard: ms_played says 25 s, so no play yet.
    seek = [_event("e4", "seek", track_id, position_ms=40_000, ms_played=25_000)]
    assert client.post("/v1/me/player/events", headers=h, json={"events": seek}).json()["plays_counted"] == 0
    more = [
        _event("e5", "progress", track_id, position_ms=45_000, ms_played=30_000),
        _event("e6", "end", track_id, position_ms=45_000, ms_played=30_500),
    ]
    assert client.post("/v1/me/player/events", headers=h, json={"events": more}).json()["plays_counted"] == 1
    assert client.post("/v1/me/player/events", headers=h, json={"events": more}).json()["plays_counted"] == 0
    with container.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(plays)).scalar_one() == 1
        assert conn.execute(sa.select(tracks.c.play_count).where(tracks.c.id == track_id)).scalar_one() == 1
    metrics = client.get("/metrics").text
    assert 'tonearm_playback_startup_seconds_count{rendition="aac_160"}' in metrics
    assert 'tonearm_playback_rebuffer_ratio{rendition="aac_160"}' in metrics


def test_player_events_refuse_bad_input_and_keep_the_rest(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    owner = sign_up_and_login(client)
    private = _ready_track(client, container, tmp_path, owner["headers"], seconds=3)
    eve = sign_up_and_login(client, "eve@example.com")
    h = eve["headers"]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    r = client.post(
        "/v1/me/player/events",
        headers=h,
        json={"events": [_event("x1", "start", private), _event("x2", "start", private, pb="p2", ts=future)]},
    )
    assert r.status_code == 200
    reasons = {x["id"]: x["reason"] for x in r.json()["rejected"]}
    assert "not found" in reasons["x1"] and r.json()["accepted"] == 0
    for body, words in (
        ({"events": []}, "events"),
        ({"events": [_event("a", "teleport", private)]}, "type"),
        ({"events": [_event("a/../b", "start", private)]}, "id"),
        ({"events": [_event(str(i), "start", private) for i in range(101)]}, "events"),
        ({"events": [_event("a", "start", private, position_ms=-5)]}, "position_ms"),
    ):
        bad = client.post("/v1/me/player/events", headers=h, json=body)
        assert bad.status_code == 400, body
        assert words in bad.json()["error"]["message"]
    naive = _event("n", "start", private)
    naive["timestamp"] = "2026-01-01T00:00:00"
    assert client.post("/v1/me/player/events", headers=h, json={"events": [naive]}).status_code == 400
    assert client.post("/v1/me/player/events", json={"events": [naive]}).status_code == 401


# A real client nobody here wrote ------------------------------------------------------------------
@pytest.fixture
def live(container: Container) -> Iterator[str]:
    """The app on a real socket (ffprobe cannot talk to a TestClient)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    container.settings.public_url = f"http://127.0.0.1:{port}"
    container.streaming.base = container.settings.public_url
    server = uvicorn.Server(
        uvicorn.Config(create_app(container, start_workers=False), port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield container.settings.public_url
    server.should_exit = True
    thread.join(10)


def test_ffprobe_plays_our_hls_over_http(
    client: TestClient, container: Container, tmp_path: Path, live: str
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"])
    g = _grant(client, track_id, tok["headers"])
    assert g["hls"]["master_url"].startswith(live)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", g["hls"]["master_url"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    info = json.loads(probe.stdout)
    codecs = {s["codec_name"] for s in info["streams"]}
    assert codecs == {"aac"}
    assert abs(float(info["format"]["duration"]) - 12) < 0.3
    # And decoding a whole variant through the playlist gives the whole track.
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", g["hls"]["master_url"], "-map", "0:a:0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decode.returncode == 0, decode.stderr
    # The DASH manifest over the same files, read by ffmpeg's DASH demuxer.
    dash = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format", g["hls"]["dash_url"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    dash_info = json.loads(dash.stdout)
    assert {s["codec_name"] for s in dash_info["streams"]} == {"aac"}
    assert abs(float(dash_info["format"]["duration"]) - 12) < 0.3


def test_dash_manifest_mirrors_the_hls_segments(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, container, tmp_path, tok["headers"], seconds=9)
    g = _grant(client, track_id, tok["headers"])
    r = client.get(_path(g["hls"]["dash_url"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/dash+xml"
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    mpd = ElementTree.fromstring(r.text)  # noqa: S314 - our own server's output, in a test
    reps = mpd.findall(".//d:Representation", ns)
    assert {rep.get("id") for rep in reps} == {"aac_96", "aac_160"}
    master = m3u8.loads(client.get(_path(g["hls"]["master_url"])).text)
    base = _path(g["hls"]["master_url"]).rsplit("/", 1)[0]
    media = m3u8.loads(client.get(f"{base}/{master.playlists[0].uri}").text)
    rep = next(x for x in reps if x.get("id") == master.playlists[0].uri.split(".")[0])
    ranges = [u.get("mediaRange") for u in rep.findall(".//d:SegmentURL", ns)]
    hls_ranges = []
    for seg in media.segments:
        length, offset = (int(x) for x in seg.byterange.split("@"))
        hls_ranges.append(f"{offset}-{offset + length - 1}")
    assert ranges == hls_ranges
    url = rep.findtext("d:BaseURL", namespaces=ns)
    assert url is not None
    first = client.get(url, headers={"Range": f"bytes={ranges[0]}"})
    assert first.status_code == 206 and first.content[4:8] == b"moof"
    lifted = client.get(_path(g["hls"]["dash_url"]).replace("q=160", "q=320L"))
    assert lifted.status_code == 403
