"""Media retrieval: stream, download, hls.m3u8, getCoverArt, getAvatar, getLyrics, getLyricsBySongId.

Bytes come from the same renditions the web player streams (StreamingService), with the
listener's plan applied: a free listener gets at most 160 kb/s whatever `maxBitRate` or `format`
says, and never the lossless original. `format` picks a codec from a fixed table; the rendition
is made once on first use (`ensure_rendition`) and kept. `timeOffset` (the transcodeOffset
extension) cuts the chosen rendition from the offset without re-encoding it (ffmpeg stream copy,
a fixed argument list: only a bounded number reaches it). None of these count a play: apps
report plays with `scrobble` (see scrobbling.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import sqlalchemy as sa
from starlette.responses import RedirectResponse, Response, StreamingResponse

from tonearm import media
from tonearm.domains.accounts.tables import users
from tonearm.domains.streaming.service import (
    ONDEMAND_KBPS,
    PLAYLIST_CONTENT_TYPE,
    PlaybackInfo,
    Rendition,
    parse_rendition_name,
)
from tonearm.domains.streaming.service import Entitlements as StreamQuality
from tonearm.http.byteranges import AccelResponse, BlobResponse, Representation
from tonearm.kernel.errors import NotFound
from tonearm.kernel.ids import is_valid_id
from tonearm.ports.blobs import local_copy
from tonearm.subsonic import objects
from tonearm.subsonic.protocol import GENERIC, NOT_AUTHORIZED, Call, SubsonicError, method, not_found

# What `format` may ask for, and the codec it means. Anything else is refused: a client's string
# never becomes an ffmpeg argument.
FORMATS: dict[str, str] = {
    "raw": "raw",  # the original file (Subsonic 1.9: "disable transcoding"), within the plan
    "mp3": "mp3",
    "opus": "opus",
    "ogg": "opus",
    "aac": "aac",
    "m4a": "aac",
    "flac": "flac",
}
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_IMAGE_CACHE = "public, max-age=31536000, immutable"  # an image id never changes its bytes
_ENTITY_IMAGE_CACHE = "private, max-age=3600"  # an album's cover may be replaced
_OFFSET_RE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,6})?$")
_AVATAR_SIZE = 300


def _info(call: Call, track_id: str) -> PlaybackInfo:
    """The track's playback info, if the caller may play it; unknown, malformed and invisible ids
    all answer 70."""
    if not is_valid_id(track_id):
        raise not_found("Song")
    try:
        return call.c.streaming.visible_info(track_id, call.user_id)
    except NotFound:
        raise not_found("Song") from None


def _max_bitrate(call: Call, name: str) -> int:
    return call.params.int(name, 0)


def _best_lossy(info: PlaybackInfo, cap: int) -> Rendition | None:
    """The richest lossy rendition at or under `cap` kb/s (AAC first at equal rates: it has HLS)."""
    fits = [r for r in info.renditions.values() if 0 < r.bitrate_kbps <= cap]
    return max(fits, key=lambda r: (r.bitrate_kbps, r.codec == "aac"), default=None)


def _target_kbps(cap: int) -> int:
    """The on-demand bitrate for a cap: the highest allowed at or under it, else the lowest."""
    return max((k for k in ONDEMAND_KBPS if k <= cap), default=ONDEMAND_KBPS[0])


def choose_rendition(
    call: Call, info: PlaybackInfo, quality: StreamQuality, fmt: str | None, max_bitrate: int
) -> Rendition:
    """The rendition `stream` serves: what the client asked for, within its plan and its
    `maxBitRate` (0 = no limit of its own), made now if it does not exist yet."""
    cap = quality.max_kbps if max_bitrate <= 0 else min(quality.max_kbps, max_bitrate)
    codec = FORMATS.get(fmt.lower(), "") if fmt else "raw"
    if not codec:
        raise SubsonicError(
            GENERIC,
            f"Parameter format: {fmt[:40]!r} is not a format this server streams; "
            f"use one of {', '.join(FORMATS)}"
            if fmt
            else "Parameter format is empty",
        )
    streaming = call.c.streaming
    if codec in ("raw", "flac"):
        original = info.renditions.get("original")
        if original is not None:
            rate = original.bitrate_kbps or _average_kbps(original)
            allowed = quality.lossless if original.lossless else original.bitrate_kbps <= quality.max_kbps
            if allowed and (max_bitrate <= 0 or rate <= max_bitrate):
                if codec == "raw" or original.codec == "flac":
                    return original
                if original.lossless:  # FLAC asked of an ALAC or WAV original: made once, kept
                    return info.renditions.get("flac") or streaming.ensure_rendition(
                        info, media.RenditionSpec("flac", 0, "flac")
                    )
        # Above the plan or the client's limit: the best lossy rendition that fits.
        best = _best_lossy(info, cap)
        if best is not None:
            return best
        codec = "aac"
    kbps = _target_kbps(cap)
    name = f"{codec}_{kbps}"
    existing = info.renditions.get(name)
    if existing is not None:
        return existing
    spec = parse_rendition_name(name)
    assert spec is not None  # a codec from FORMATS and a rate from ONDEMAND_KBPS
    return streaming.ensure_rendition(info, spec)


def _average_kbps(r: Rendition) -> int:
    return math.ceil(r.size_bytes * 8 / r.duration_ms) if r.duration_ms else 0


def _time_offset(call: Call, info: PlaybackInfo) -> float:
    raw = call.params.opt("timeOffset")
    if raw is None or raw == "":
        return 0.0
    if not _OFFSET_RE.match(raw):
        raise SubsonicError(GENERIC, f"Parameter timeOffset must be a number of seconds, not {raw[:40]!r}")
    offset = float(raw)
    if offset > 0 and offset * 1000 >= info.duration_ms:
        raise SubsonicError(
            GENERIC,
            f"Parameter timeOffset: {raw} s is past the end of the song ({info.duration_ms / 1000} s)",
        )
    return offset


@method("stream", inline=False)
def stream(call: Call) -> Response:
    """The song's audio, as the caller's plan and parameters allow; Range requests are answered
    (206) for whole renditions. Does not count a play."""
    info = _info(call, call.params.req("id"))
    quality = call.c.entitlements.for_user(call.user_id).quality
    fmt = call.params.opt("format")
    r = choose_rendition(call, info, quality, fmt, _max_bitrate(call, "maxBitRate"))
    offset = _time_offset(call, info)
    call.params.bool("estimateContentLength", False)  # our lengths are exact: always sent
    if offset > 0:
        return _stream_from(call, r, offset)
    return serve_blob(
        call, r.blob_key, r.size_bytes, f'"{r.id}"', r.created_at, r.content_type, "private, max-age=3600"
    )


@method("download", inline=False)
def download(call: Call) -> Response:
    """The original file (the richest rendition when no original was kept), as an attachment.
    Downloads are offline listening: plans with the `offline` feature only."""
    track_id = call.params.req("id")
    info = _info(call, track_id)
    ent = call.c.entitlements.for_user(call.user_id)
    if not ent.offline:
        raise SubsonicError(
            NOT_AUTHORIZED,
            "Downloading songs is part of Premium (offline listening); your plan can stream them",
        )
    r = info.renditions.get("original") or max(
        info.renditions.values(), key=lambda x: (x.lossless, x.bitrate_kbps), default=None
    )
    if r is None:
        raise not_found("Song file")
    song = objects.songs(call, [track_id])
    title = song[0]["title"] if song else track_id
    headers = {"Content-Disposition": _attachment(f"{title}.{r.container}")}
    return serve_blob(
        call, r.blob_key, r.size_bytes, f'"{r.id}"', r.created_at, r.content_type, "private", headers
    )


def _attachment(filename: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()-]", "_", filename)[:150] or "song"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename[:150], safe='')}"


@method("hls.m3u8", inline=False)
def hls(call: Call) -> Response:
    """An HLS master playlist over the song's AAC renditions the plan allows, at or under the
    highest `bitRate` given (the lowest one when all are above it). Its URLs are signed for the
    caller and expire like a playback grant's."""
    info = _info(call, call.params.req("id"))
    quality = call.c.entitlements.for_user(call.user_id).quality
    rates = []
    for raw in call.params.all("bitRate"):
        kbps = raw.split("@", 1)[0]
        if not kbps.isdigit() or len(kbps) > 7:
            raise SubsonicError(
                GENERIC, f"Parameter bitRate must be kb/s (e.g. 160 or 1000@480x360), not {raw[:40]!r}"
            )
        rates.append(int(kbps))
    cap = min(quality.max_kbps, max(rates)) if rates and max(rates) > 0 else quality.max_kbps
    aac = sorted(r.bitrate_kbps for r in info.renditions.values() if r.codec == "aac" and r.bitrate_kbps)
    if not aac:
        raise not_found("Adaptive stream of this song")
    if aac[0] > cap:
        cap = aac[0] if aac[0] <= quality.max_kbps else cap
    grant = StreamQuality(cap, False)
    streaming = call.c.streaming
    exp = int(time.time()) + streaming.grant_ttl_s + math.ceil(info.duration_ms / 1000)
    sig = streaming.signer.sign(info.track_id, "master", call.user_id, exp, grant.cap)
    text = streaming.master_playlist(info.track_id, call.user_id, str(exp), sig, grant.cap)
    # The master's variant URIs are relative to /hls/<track>/; this one is served from /rest/.
    base = f"{streaming.base}/hls/{info.track_id}/"
    lines = [line if not line or line.startswith("#") else base + line for line in text.split("\n")]
    return Response(
        "\n".join(lines), media_type=PLAYLIST_CONTENT_TYPE, headers={"Cache-Control": "private, no-store"}
    )


def serve_blob(
    call: Call,
    key: str,
    size: int,
    etag: str,
    modified: dt.datetime,
    content_type: str,
    cache_control: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A blob by the cheapest path, as the /stream endpoint sends it: nginx (X-Accel-Redirect),
    a local file with Range and conditional requests, a presigned URL, or read through."""
    extra = {"Cache-Control": cache_control, **(headers or {})}
    rep = Representation(
        size=size, etag=etag, last_modified=modified.replace(microsecond=0), content_type=content_type
    )
    c = call.c
    # nginx answers an internal redirect of a POST to a static file with 405, and apps send form
    # POSTs (formPost): those are served from here.
    if c.settings.stream_delivery == "accel" and call.request.method != "POST":
        return AccelResponse(f"{c.settings.accel_prefix.rstrip('/')}/{key}", rep, extra_headers=extra)
    path = c.blobs.local_path(key)
    if path is not None:
        if not path.exists():
            raise not_found("File")
        # Under formPost a POST is the same request as a GET (py-sonic and py-opensonic send every
        # call as a form POST, stream included); RFC 9110 ranges apply to GET only, so say GET.
        method = "GET" if call.request.method == "POST" else call.request.method
        return BlobResponse(path, rep, call.request.headers, method, extra_headers=extra)
    url = c.blobs.presigned_url(key, 600)
    if url:
        return RedirectResponse(url, status_code=302, headers=extra)

    async def chunks() -> AsyncIterator[bytes]:
        with c.blobs.open(key) as fh:
            while chunk := await anyio.to_thread.run_sync(fh.read, 1 << 16):
                yield chunk

    return StreamingResponse(chunks(), media_type=content_type, headers=extra)


def _stream_from(call: Call, r: Rendition, offset: float) -> Response:
    """The rendition from `offset` seconds on (media.cut_from), piped to the client. Its length is
    not known in advance, so no Content-Length (nor Range) is offered."""
    stack = contextlib.ExitStack()
    try:
        path: Path = stack.enter_context(local_copy(call.c.blobs, r.blob_key, call.c.streaming.tmp_dir))
        cut = media.cut_from(path, offset, r.codec)
    except BaseException:
        stack.close()
        raise
    proc, content_type = cut.process, cut.content_type
    stdout = proc.stdout
    assert stdout is not None
    fd = stdout.fileno()

    async def body() -> AsyncIterator[bytes]:
        try:
            while chunk := await anyio.to_thread.run_sync(os.read, fd, 1 << 16):
                yield chunk
        finally:
            # The client went away or the cut is done: ffmpeg must not outlive the response.
            if proc.poll() is None:
                proc.kill()
            await anyio.to_thread.run_sync(proc.wait)
            stdout.close()
            stack.close()

    return StreamingResponse(
        body(),
        media_type=content_type,
        headers={"Cache-Control": "private, no-store", "Accept-Ranges": "none"},
    )


# Images ---------------------------------------------------------------------------------------


@method("getCoverArt", inline=False)
def get_cover_art(call: Call) -> Response:
    """The image with this id, or the cover of the song, album, artist or playlist with this id
    (older clients pass those), at the stored size nearest above `size` (the largest without)."""
    item_id = call.params.req("id")
    size = call.params.opt_int("size", lo=1) or 10**6
    if not is_valid_id(item_id):
        raise not_found("Cover art")
    catalog = call.c.catalog
    try:
        return _image(call, catalog.image_variant(item_id, size), _IMAGE_CACHE)
    except NotFound:
        pass
    image_id = _cover_of(call, item_id)
    if image_id is None:
        raise not_found("Cover art")
    try:
        variant = catalog.image_variant(image_id, size)
    except NotFound:
        raise not_found("Cover art") from None
    return _image(call, variant, _ENTITY_IMAGE_CACHE)


def _cover_of(call: Call, item_id: str) -> str | None:
    for found in (objects.albums_by_id, objects.songs, objects.artists_by_id):
        items = found(call, [item_id])
        if items:
            cover: str | None = items[0].get("coverArt")
            return cover
    try:
        images = call.c.playlists.images(item_id, call.user_id)
    except NotFound:
        return None
    # Playlist images are listed as URLs: .../images/<image id>/<size>.
    return images[0]["url"].rsplit("/", 2)[1] if images else None


def _image(call: Call, variant: Any, cache_control: str) -> Response:
    return serve_blob(
        call,
        variant.blob_key,
        variant.bytes,
        f'"{variant.image_id}-{variant.size}"',
        _EPOCH,
        variant.content_type,
        cache_control,
    )


@method("getAvatar", inline=False)
def get_avatar(call: Call) -> Response:
    """The user's profile picture. Usernames are e-mail addresses, so only one's own avatar (or
    any, for an admin) is answered: anything else is 70, which says nothing about who exists."""
    assert call.caller is not None
    username = call.params.req("username")
    if username.lower() != call.caller.username.lower() and not call.is_admin:
        raise not_found("Avatar")
    with call.c.db.read() as conn:
        avatar = conn.execute(
            sa.select(users.c.avatar_image_id).where(sa.func.lower(users.c.email) == username.lower())
        ).scalar()
    if not avatar:
        raise not_found("Avatar")
    try:
        variant = call.c.catalog.image_variant(avatar, _AVATAR_SIZE)
    except NotFound:
        raise not_found("Avatar") from None
    return _image(call, variant, "private, max-age=3600")


# Lyrics ---------------------------------------------------------------------------------------


@method("getLyrics", inline=True)
def get_lyrics(call: Call) -> dict[str, Any]:
    """Tonearm keeps no lyrics: the answer is the empty `lyrics` element the specification allows
    (its text is the lyrics; there are none), never a made-up match."""
    call.params.opt("artist")
    call.params.opt("title")
    return {"lyrics": {"value": ""}}


@method("getLyricsBySongId")
def get_lyrics_by_song_id(call: Call) -> dict[str, Any]:
    """The song's structured lyrics: none are kept, so an empty list for a song the caller can
    see, and 70 for any other id."""
    track_id = call.params.req("id")
    call.params.bool("enhanced", False)
    if not is_valid_id(track_id) or not objects.songs(call, [track_id]):
        raise not_found("Song")
    return {"lyricsList": {"structuredLyrics": []}}
