"""Ingest and playback with the blobs on an S3-compatible object store (moto's server, over HTTP):
the pipeline copies blobs out for ffmpeg and writes renditions back; listeners are redirected to
presigned URLs and fetch (Range) bytes from the store itself, never through us."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests import s3server
from tests.helpers import make_settings
from tonearm.adapters.blobs.s3 import S3BlobStore
from tonearm.bootstrap import Container, bootstrap
from tonearm.http.app import create_app

from .conftest import sign_up_and_login
from .test_playback import _grant, _path, _ready_track


@pytest.fixture
def s3_app(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, have_ffmpeg: None
) -> Iterator[tuple[TestClient, Container]]:
    s3server.use_test_credentials(monkeypatch)
    bucket = s3server.new_bucket()
    blob_url = f"s3://{bucket}/media?endpoint={s3server.endpoint()}&region=us-east-1"
    c = bootstrap(make_settings(tmp_path, db_url, blob_url=blob_url))
    try:
        assert isinstance(c.blobs, S3BlobStore)
        with TestClient(create_app(c, start_workers=False)) as client:
            yield client, c
    finally:
        c.close()


def _keys(c: Container) -> set[str]:
    assert isinstance(c.blobs, S3BlobStore)
    pages = s3server.client().get_paginator("list_objects_v2").paginate(Bucket=c.blobs.bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _redirect(client: TestClient, url: str) -> str:
    """GETs one of our signed URLs and returns where it sends the listener (the object store)."""
    r = client.get(_path(url), follow_redirects=False)
    assert r.status_code == 302, r.text
    location: str = r.headers["location"]
    assert location.startswith(f"{s3server.endpoint()}/"), location  # straight to the store
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"].startswith("private, max-age=")
    return location


def test_ingest_runs_on_s3_and_playback_redirects_to_presigned_urls(
    s3_app: tuple[TestClient, Container], tmp_path: Path
) -> None:
    client, c = s3_app
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, c, tmp_path, tok["headers"], seconds=6)

    # The pipeline read the upload back out of the bucket (ffmpeg needs a file), stored every rung,
    # its HLS file and the lossless original there, and removed its temporary copies.
    keys = _keys(c)
    assert {
        f"media/tracks/{track_id}/{name}"
        for name in ("aac_96.m4a", "aac_160.m4a", "aac_320.m4a", "original.flac", "hls/aac_160.mp4")
    } <= keys, keys
    assert all(k.startswith("media/") for k in keys)
    assert not [k for k in keys if k.startswith("media/uploads/")]  # the upload's blob is gone
    assert not [p for p in (c.settings.data_dir / "tmp").rglob("*") if p.is_file()]
    # Cover art is read back from the bucket too.
    images = client.get(f"/v1/tracks/{track_id}", headers=tok["headers"]).json()["album"]["images"]
    pic = client.get(_path(images[-1]["url"]))
    assert pic.status_code == 200 and pic.headers["content-type"] == "image/jpeg"

    grant: dict[str, Any] = _grant(client, track_id, tok["headers"])
    rendition = grant["renditions"][0]
    location = _redirect(client, rendition["url"])
    whole = httpx.get(location)
    assert whole.status_code == 200 and len(whole.content) == rendition["size_bytes"]
    assert whole.content[4:8] == b"ftyp" and whole.headers["content-type"] == "audio/mp4"
    part = httpx.get(location, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == whole.content[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(whole.content)}"

    start = grant["hls"]["start"]
    hls_location = _redirect(client, start["url"])
    assert urlsplit(hls_location).path.endswith(f"/tracks/{track_id}/hls/aac_160.mp4")
    first = httpx.get(hls_location, headers={"Range": start["range"]})
    assert first.status_code == 206 and first.content[4:8] == b"ftyp"
    assert first.headers["content-type"] == "audio/mp4"
    lo, hi = (int(x) for x in start["range"].removeprefix("bytes=").split("-"))
    assert len(first.content) == hi - lo + 1

    # Authorization stays ours: a bad signature or an expired URL is refused, never redirected.
    for bad in (
        rendition["url"].replace("sig=", "sig=A"),
        start["url"].replace("sig=", "sig=A"),
        rendition["url"].replace(f"exp={grant['expires_at']}", "exp=1000000000"),
    ):
        r = client.get(_path(bad), follow_redirects=False)
        assert r.status_code == 403 and "location" not in r.headers, r.text


def test_on_demand_rendition_is_transcoded_from_s3_and_redirected(
    s3_app: tuple[TestClient, Container], tmp_path: Path
) -> None:
    client, c = s3_app
    tok = sign_up_and_login(client)
    track_id = _ready_track(client, c, tmp_path, tok["headers"], seconds=3)
    g = _grant(client, track_id, tok["headers"], format="opus_96")
    opus = next(r for r in g["renditions"] if r["name"] == "opus_96")
    assert opus["ready"] is False
    location = _redirect(client, opus["url"])  # transcoded from the bucket's original, stored back
    assert any(k.startswith(f"media/tracks/{track_id}/opus_96") for k in _keys(c))
    body = httpx.get(location)
    assert body.status_code == 200 and body.content[:4] == b"OggS"
    assert body.headers["content-type"] == "audio/ogg"
