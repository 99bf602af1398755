"""Playback: grants, signed progressive and HLS URLs, and renditions made on demand.

The grant is where entitlements are enforced: a listener gets URLs only for what the plan
allows (free: up to 160 kb/s; premium: up to 320 kb/s and the lossless original). Every URL it
hands out is signed for that user and expires (see signing.py), so the byte-serving endpoints
need no database: they verify a MAC and look the track up in a per-process cache. See
docs/streaming.md for the whole picture.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql, sqlite

from tonearm import media
from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.catalog.tables import rendition_claims, renditions, tracks
from tonearm.domains.streaming.signing import UrlSigner
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from tonearm.kernel.ids import new_id, uri
from tonearm.ports.blobs import BlobStore, local_copy

log = structlog.get_logger("tonearm.streaming")
ONDEMAND = Counter("tonearm_ondemand_transcodes_total", "Renditions transcoded because a request wanted them")
PACKAGED = Counter("tonearm_ondemand_hls_packagings_total", "Tracks packaged for HLS on first request")

TARGET_LUFS = -14.0  # what Spotify normalises to by default
FREE_MAX_KBPS = 160
PREMIUM_MAX_KBPS = 320
START_KBPS = 160  # the rendition a player should start with: small first segment, quick start
HLS_CONTENT_TYPE = "audio/mp4"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
# Renditions a client may ask for by name: what the ingest ladder makes, plus on-demand formats.
ONDEMAND_CODECS = ("aac", "opus", "mp3")
ONDEMAND_KBPS = (64, 96, 128, 160, 192, 256, 320)
_NAME_RE = re.compile(r"^(original|flac|(aac|opus|mp3)_(\d{2,3}))$")


@dataclass(frozen=True, slots=True)
class Entitlements:
    """What a listener's plan lets them stream: the quality part of their entitlements (the plan's
    features decide it: see domains/entitlements/service.py)."""

    max_kbps: int
    lossless: bool

    def allows(self, bitrate_kbps: int) -> bool:
        return self.lossless if bitrate_kbps == 0 else bitrate_kbps <= self.max_kbps

    @property
    def cap(self) -> str:
        """The entitlement as a signed URL parameter (master playlists list only what it allows)."""
        return f"{self.max_kbps}{'L' if self.lossless else ''}"

    @classmethod
    def from_cap(cls, cap: str) -> Entitlements:
        lossless = cap.endswith("L")
        digits = cap[:-1] if lossless else cap
        if not digits.isdigit():
            raise Forbidden("invalid stream URL")
        return cls(int(digits), lossless)


@dataclass(frozen=True, slots=True)
class Rendition:
    id: str
    name: str
    codec: str
    bitrate_kbps: int  # 0 = lossless
    container: str
    content_type: str
    blob_key: str
    size_bytes: int
    duration_ms: int
    is_original: bool
    created_at: dt.datetime
    hls_blob_key: str | None
    hls: media.HlsIndex | None

    @property
    def lossless(self) -> bool:
        return self.bitrate_kbps == 0


@dataclass(frozen=True, slots=True)
class PlaybackInfo:
    """Everything playback needs about one track; cached per process, invalidated on change."""

    track_id: str
    owner: str | None
    visibility: str
    duration_ms: int
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    renditions: dict[str, Rendition] = field(default_factory=dict)

    def visible_to(self, user_id: str | None) -> bool:
        return self.visibility == "public" or (user_id is not None and self.owner == user_id)

    @property
    def gain_db(self) -> float:
        if self.loudness_lufs is None:
            return 0.0
        gain = TARGET_LUFS - self.loudness_lufs
        if self.true_peak_dbtp is not None:
            gain = min(gain, -1.0 - self.true_peak_dbtp)  # never push peaks past -1 dBTP
        return round(gain, 2)


@dataclass(frozen=True, slots=True)
class TrackFile:
    """One track's state and one of its renditions, from `StreamingService.track_files`."""

    track_id: str
    status: str  # processing|ready|failed
    owner: str | None
    visibility: str
    rendition_id: str | None  # None: that rendition has not been made (yet)
    content_type: str | None
    size_bytes: int | None

    def visible_to(self, user_id: str) -> bool:
        return self.visibility == "public" or self.owner == user_id


def parse_rendition_name(name: str) -> media.RenditionSpec | None:
    """The spec a rendition name stands for; None for `original` (it cannot be made, only kept).
    Raises BadRequest for names outside the grammar, unknown codecs and unsupported bitrates."""
    m = _NAME_RE.match(name) if len(name) <= 16 else None
    if m is None:
        raise BadRequest(
            f"unknown rendition {name[:40]!r}: use original, flac, or <codec>_<kbps> with codec one of "
            f"{', '.join(ONDEMAND_CODECS)} and kbps one of {', '.join(map(str, ONDEMAND_KBPS))}"
        )
    if name == "original":
        return None
    if name == "flac":
        return media.RenditionSpec("flac", 0, "flac")
    codec, kbps = m.group(2), int(m.group(3))
    if kbps not in ONDEMAND_KBPS:
        raise BadRequest(
            f"unsupported bitrate {kbps} kb/s for {codec}: use one of {', '.join(map(str, ONDEMAND_KBPS))}"
        )
    container = {"aac": "m4a", "opus": "ogg", "mp3": "mp3"}[codec]
    return media.RenditionSpec(codec, kbps, container)


class StreamingService:
    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        blobs: BlobStore,
        clock: Clock,
        secret_key: str,
        public_url: str,
        *,
        tmp_dir: Path,
        grant_ttl_s: int = 900,
        cache_size: int = 10000,
        cache_ttl_s: float = 30.0,
        transcode_threads: int = 1,
        aac_coder: str = "fast",
        ondemand_wait_s: float = 120.0,
    ):
        self.db = db
        self.catalog = catalog
        self.blobs = blobs
        self.clock = clock
        self.signer = UrlSigner(secret_key)
        self.base = public_url.rstrip("/")
        self.grant_ttl_s = grant_ttl_s
        self.tmp_dir = tmp_dir
        self.transcode_threads = transcode_threads
        self.aac_coder = aac_coder
        self.ondemand_wait_s = ondemand_wait_s
        self._info: TTLCache[str, PlaybackInfo] = TTLCache(cache_size, cache_ttl_s)
        # A grant is reusable while most of its lifetime remains: repeated plays of a track (and
        # the benchmark's 200 listeners) cost a dictionary lookup, not 8 HMACs and a JSON dump.
        self._grants: TTLCache[tuple[str, str, str, str], tuple[int, PlaybackInfo, bytes]] = TTLCache(
            cache_size, min(60.0, grant_ttl_s / 4)
        )
        self._inflight: dict[tuple[str, str], threading.Event] = {}
        self._inflight_lock = threading.Lock()
        self._holder = f"{os.getpid()}-{new_id()[:8]}"
        catalog.on_invalidate(self.invalidate)

    # Cached track info ------------------------------------------------------------------------
    def invalidate(self, track_id: str) -> None:
        self._info.invalidate(track_id)

    def info(self, track_id: str) -> PlaybackInfo:
        """The track's playback info from the cache, else one database round trip."""
        hit = self._info.get(track_id)
        if hit is None:
            hit = self._load(track_id)
            self._info.put(track_id, hit)
        return hit

    def warm(self, track_id: str, name: str | None = None, *, hls: bool = False) -> bool:
        """True when serving this needs neither the database nor ffmpeg (the HTTP layer then
        answers on the event loop instead of hopping to a thread)."""
        info = self._info.get(track_id)
        if info is None or name is None:
            return info is not None
        r = info.renditions.get(name)
        return r is not None and (r.hls is not None or not hls)

    def _load(self, track_id: str) -> PlaybackInfo:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(
                    tracks.c.owner_user_id,
                    tracks.c.visibility,
                    tracks.c.status,
                    tracks.c.duration_ms.label("track_ms"),
                    tracks.c.loudness_lufs,
                    tracks.c.true_peak_dbtp,
                    renditions,
                )
                .select_from(tracks.outerjoin(renditions, renditions.c.track_id == tracks.c.id))
                .where(tracks.c.id == track_id)
            ).all()
        if not rows or rows[0].status != "ready":
            raise NotFound(f"track {track_id} not found")
        first = rows[0]
        info = PlaybackInfo(
            track_id,
            first.owner_user_id,
            first.visibility,
            first.track_ms,
            first.loudness_lufs,
            first.true_peak_dbtp,
        )
        for r in rows:
            if r.name is None:
                continue
            info.renditions[r.name] = Rendition(
                r.id,
                r.name,
                r.codec,
                r.bitrate_kbps,
                r.container,
                r.content_type,
                r.blob_key,
                r.size_bytes,
                r.duration_ms,
                r.is_original,
                r.created_at,
                r.hls_blob_key,
                media.HlsIndex.from_json(r.hls_index) if r.hls_index else None,
            )
        return info

    def visible_info(self, track_id: str, user_id: str) -> PlaybackInfo:
        check_id(track_id, "track")
        info = self.info(track_id)
        if not info.visible_to(user_id):
            # Another user's private upload answers exactly like a missing track (no probing).
            raise NotFound(f"track {track_id} not found")
        return info

    def track_files(self, track_ids: Sequence[str], name: str) -> dict[str, TrackFile]:
        """Status, owner and visibility of each of these tracks that exists, with its rendition
        `name` when it has been made, in bulk (offline downloads check 10,000 tracks at once):
        on PostgreSQL one query with the ids as one array, on SQLite one per 1,000 ids.
        Authorization is the caller's: see `TrackFile.visible_to`."""
        found: dict[str, TrackFile] = {}
        query = sa.select(
            tracks.c.id,
            tracks.c.status,
            tracks.c.owner_user_id,
            tracks.c.visibility,
            renditions.c.id.label("rendition_id"),
            renditions.c.content_type,
            renditions.c.size_bytes,
        ).select_from(
            tracks.outerjoin(renditions, (renditions.c.track_id == tracks.c.id) & (renditions.c.name == name))
        )
        with self.db.read() as conn:
            if conn.dialect.name == "postgresql":
                ids = sa.bindparam("ids", list(track_ids), type_=postgresql.ARRAY(sa.String()))
                batches = [query.where(tracks.c.id == sa.any_(ids))]
            else:
                batches = [
                    query.where(tracks.c.id.in_(track_ids[i : i + 1000]))
                    for i in range(0, len(track_ids), 1000)
                ]
            for batch in batches:
                for r in conn.execute(batch):
                    found[r.id] = TrackFile(
                        r.id,
                        r.status,
                        r.owner_user_id,
                        r.visibility,
                        r.rendition_id,
                        r.content_type,
                        r.size_bytes,
                    )
        return found

    # Grants -----------------------------------------------------------------------------------
    def grant(self, track_id: str, user_id: str, quality: Entitlements, *, fmt: str | None = None) -> bytes:
        """The playback grant as JSON bytes (cached per user, track, quality cap and format).
        `quality` is what the listener's plan streams (EntitlementService.for_user(...).quality),
        which decides before calling this whether a `fmt` above it is refused."""
        info = self.visible_info(track_id, user_id)
        ent = quality
        extra = self._extra_spec(fmt, ent)
        key = (track_id, user_id, ent.cap, fmt or "")
        now = time.time()
        cached = self._grants.get(key)
        # Reused only while fresh and made from the current track info (a new rendition or a
        # change to the track makes a new info object).
        if cached is not None and cached[1] is info and cached[0] - now > self.grant_ttl_s * 0.75:
            return cached[2]
        exp = int(now) + self.grant_ttl_s + math.ceil(info.duration_ms / 1000)
        body = orjson.dumps(self._grant_obj(info, user_id, ent, exp, extra))
        self._grants.put(key, (exp, info, body))
        return body

    def ad_grant(self, track_id: str, user_id: str) -> dict[str, Any]:
        """A grant for an audio ad's track, whoever owns it and whatever its visibility (ads are
        admins' private uploads): renditions up to FREE_MAX_KBPS, signed for this listener. The
        caller (entitlements) decides that this listener is to hear this ad now."""
        check_id(track_id, "track")
        info = self.info(track_id)
        # Not cached: one listener hears an ad every few tracks, and this is a few HMACs.
        exp = int(time.time()) + self.grant_ttl_s + math.ceil(info.duration_ms / 1000)
        return self._grant_obj(info, user_id, Entitlements(FREE_MAX_KBPS, False), exp, None)

    def _extra_spec(self, fmt: str | None, ent: Entitlements) -> media.RenditionSpec | None:
        if not fmt:
            return None
        spec = parse_rendition_name(fmt)
        if spec is None:
            raise BadRequest("format: `original` is not a format to transcode to; omit format to get it")
        if not ent.allows(spec.bitrate_kbps):
            cap = "lossless" if spec.bitrate_kbps == 0 else f"{spec.bitrate_kbps} kb/s"
            raise Forbidden(f"format: {cap} is above what your plan streams (up to {ent.max_kbps} kb/s)")
        return spec

    def _grant_obj(
        self,
        info: PlaybackInfo,
        user_id: str,
        ent: Entitlements,
        exp: int,
        extra: media.RenditionSpec | None,
    ) -> dict[str, Any]:
        tid = info.track_id
        items: list[dict[str, Any]] = []
        names: set[str] = set()
        for r in sorted(info.renditions.values(), key=lambda r: (r.lossless, r.bitrate_kbps)):
            if not ent.allows(r.bitrate_kbps):
                continue
            names.add(r.name)
            items.append(
                self._progressive(tid, user_id, exp, r.name, r.codec, r.bitrate_kbps, r.container, r)
            )
        # Ladder rungs an older track lacks, and a format the client asked for, are listed too:
        # fetching one transcodes it once (see ensure_rendition).
        wanted = [s for s in media.LADDER if ent.allows(s.bitrate_kbps)]
        if extra is not None:
            wanted.append(extra)
        for spec in wanted:
            if spec.name not in names:
                names.add(spec.name)
                items.append(
                    self._progressive(
                        tid, user_id, exp, spec.name, spec.codec, spec.bitrate_kbps, spec.container, None
                    )
                )
        if not items:
            raise Forbidden("no rendition of this track is available to your plan")
        return {
            "track": {"id": tid, "uri": uri("track", tid), "duration_ms": info.duration_ms},
            "expires_at": exp,
            "quality_cap_kbps": ent.max_kbps,
            "lossless": ent.lossless,
            "loudness": {
                "integrated_lufs": info.loudness_lufs,
                "true_peak_dbtp": info.true_peak_dbtp,
                "gain_db": info.gain_db,
                "target_lufs": TARGET_LUFS,
            },
            "hls": self._hls_obj(info, user_id, ent, exp),
            "renditions": items,
        }

    def _progressive(
        self,
        tid: str,
        user_id: str,
        exp: int,
        name: str,
        codec: str,
        kbps: int,
        container: str,
        r: Rendition | None,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "codec": codec,
            "bitrate_kbps": kbps,
            "container": container,
            "content_type": r.content_type if r else media.RenditionSpec(codec, kbps, container).content_type,
            "size_bytes": r.size_bytes if r else None,
            "lossless": kbps == 0,
            "ready": r is not None,
            "url": f"{self.base}/stream/{tid}/{name}?{self.signer.query(tid, name, user_id, exp)}",
        }

    def hls_variants(self, info: PlaybackInfo, ent: Entitlements) -> list[Rendition]:
        """The AAC renditions this plan may stream adaptively, the start rendition first."""
        found = [r for r in info.renditions.values() if r.codec == "aac" and ent.allows(r.bitrate_kbps)]
        found.sort(key=lambda r: (abs(r.bitrate_kbps - START_KBPS), r.bitrate_kbps))
        return found

    def _hls_obj(
        self, info: PlaybackInfo, user_id: str, ent: Entitlements, exp: int
    ) -> dict[str, Any] | None:
        tid = info.track_id
        variants = self.hls_variants(info, ent)
        if not variants:
            return None
        master = (
            f"{self.base}/hls/{tid}/master.m3u8?{self.signer.query(tid, 'master', user_id, exp, ent.cap)}"
        )
        dash = f"{self.base}/dash/{tid}/manifest.mpd?{self.signer.query(tid, 'mpd', user_id, exp, ent.cap)}"
        obj: dict[str, Any] = {"master_url": master, "dash_url": dash, "start": None}
        start = variants[0]
        if start.hls is not None:
            # The first audio bytes in one request: the init segment and the first media segment
            # are adjacent at the start of the file. A player can fetch them while it loads the
            # playlists (prefetch), so audio starts after one round trip.
            seg0 = start.hls.segments[0]
            obj["start"] = {
                "rendition": start.name,
                "url": self._segment_url(tid, start.name, user_id, exp),
                "range": f"bytes={start.hls.init_offset}-{seg0.offset + seg0.length - 1}",
                "duration_s": seg0.duration_s,
            }
        return obj

    def _segment_url(self, tid: str, name: str, user_id: str, exp: int) -> str:
        return f"{self.base}/hls/{tid}/{name}.mp4?{self.signer.query(tid, 'cmaf:' + name, user_id, exp)}"

    # Resolving signed URLs --------------------------------------------------------------------
    def master_playlist(self, track_id: str, user_id: str, exp: str, sig: str, cap: str) -> str:
        expires = self.signer.verify(track_id, "master", user_id, exp, sig, cap)
        ent = Entitlements.from_cap(cap)
        info = self.info(track_id)
        variants = self.hls_variants(info, ent)
        if any(v.hls is None for v in variants):
            info = self.ensure_hls(info)
            variants = self.hls_variants(info, ent)
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for v in variants:
            if v.hls is None:
                continue
            q = self.signer.query(track_id, "m3u8:" + v.name, user_id, expires)
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={v.hls.peak_bps},AVERAGE-BANDWIDTH={v.hls.average_bps},"
                f'CODECS="{v.hls.codecs}"'
            )
            lines.append(f"{v.name}.m3u8?{q}")
        if len(lines) == 3:
            raise NotFound("this track has no adaptive stream; use a progressive rendition")
        return "\n".join(lines) + "\n"

    def dash_manifest(self, track_id: str, user_id: str, exp: str, sig: str, cap: str) -> str:
        """An MPEG-DASH MPD over the same CMAF files and byte ranges as HLS (for DASH-only players)."""
        expires = self.signer.verify(track_id, "mpd", user_id, exp, sig, cap)
        info = self.info(track_id)
        variants = self.hls_variants(info, Entitlements.from_cap(cap))
        if any(v.hls is None for v in variants):
            info = self.ensure_hls(info)
            variants = self.hls_variants(info, Entitlements.from_cap(cap))
        ready = [v for v in variants if v.hls is not None]
        if not ready:
            raise NotFound("this track has no adaptive stream; use a progressive rendition")
        return media.dash_manifest(
            [
                (
                    v.name,
                    v.hls,
                    f"/hls/{track_id}/{v.name}.mp4?{self._cmaf_query(track_id, v.name, user_id, expires)}",
                )
                for v in ready
                if v.hls is not None
            ]
        )

    def _cmaf_query(self, track_id: str, name: str, user_id: str, exp: int) -> str:
        return self.signer.query(track_id, "cmaf:" + name, user_id, exp)

    def media_playlist(self, track_id: str, name: str, user_id: str, exp: str, sig: str) -> str:
        parse_rendition_name(name)
        expires = self.signer.verify(track_id, "m3u8:" + name, user_id, exp, sig)
        r = self._hls_rendition(track_id, name)
        assert r.hls is not None
        q = self.signer.query(track_id, "cmaf:" + name, user_id, expires)
        return media.media_playlist(r.hls, f"{name}.mp4?{q}")

    def segment_file(self, track_id: str, name: str, user_id: str, exp: str, sig: str) -> Rendition:
        parse_rendition_name(name)
        self.signer.verify(track_id, "cmaf:" + name, user_id, exp, sig)
        return self._hls_rendition(track_id, name)

    def _hls_rendition(self, track_id: str, name: str) -> Rendition:
        info = self.info(track_id)
        r = info.renditions.get(name)
        if r is not None and r.hls is None and r.codec == "aac":
            r = self.ensure_hls(info).renditions.get(name)
        if r is None or r.hls is None or r.hls_blob_key is None:
            raise NotFound(f"rendition {name} of track {track_id} has no adaptive stream")
        return r

    def progressive(self, track_id: str, name: str, user_id: str, exp: str, sig: str) -> Rendition:
        """The rendition a signed progressive URL names, transcoding it first if it is missing."""
        spec = parse_rendition_name(name)
        self.signer.verify(track_id, name, user_id, exp, sig)
        info = self.info(track_id)
        r = info.renditions.get(name)
        if r is not None:
            return r
        if spec is None:
            raise NotFound(f"track {track_id} has no original file (it was not lossless)")
        return self.ensure_rendition(info, spec)

    # Renditions on demand ---------------------------------------------------------------------
    def ensure_rendition(self, info: PlaybackInfo, spec: media.RenditionSpec) -> Rendition:
        """Makes a missing rendition once, however many requests want it at the same time."""

        def make() -> None:
            ONDEMAND.inc()
            with self._source(info) as src, tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
                out = media.transcode_one(
                    src,
                    Path(tmp) / spec.filename,
                    spec,
                    threads=self.transcode_threads,
                    aac_coder=self.aac_coder,
                )
                hls = None
                if spec.codec == "aac":
                    hls = media.package_hls([(out.path, Path(tmp) / f"{spec.name}.cmaf.mp4")])[0]
                self._store(info.track_id, spec, out, hls, Path(tmp) / f"{spec.name}.cmaf.mp4")

        fresh = self._once(info.track_id, spec.name, make)
        r = fresh.renditions.get(spec.name)
        if r is None:
            raise NotFound(f"rendition {spec.name} of track {info.track_id} could not be made")
        return r

    def ensure_hls(self, info: PlaybackInfo) -> PlaybackInfo:
        """Packages a track's AAC renditions for HLS when it was ingested before HLS existed."""
        track_id = info.track_id

        def make() -> None:
            PACKAGED.inc()
            todo = [r for r in self.info(track_id).renditions.values() if r.codec == "aac" and r.hls is None]
            with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
                pairs = [
                    (self._enter_local(r.blob_key, Path(tmp), r.name), Path(tmp) / f"{r.name}.cmaf.mp4")
                    for r in todo
                ]
                indexes = media.package_hls(pairs)
                for r, (_, dst), idx in zip(todo, pairs, indexes, strict=True):
                    key = f"tracks/{track_id}/hls/{r.name}.mp4"
                    self.blobs.put_file(key, dst)
                    with self.db.write() as conn:
                        conn.execute(
                            sa.update(renditions)
                            .where(renditions.c.id == r.id)
                            .values(hls_blob_key=key, hls_index=idx.to_json())
                        )

        return self._once(track_id, "hls", make)

    def _enter_local(self, key: str, tmp: Path, name: str) -> Path:
        path = self.blobs.local_path(key)
        if path is not None:
            return path
        dst = tmp / f"{name}.src"
        with self.blobs.open(key) as fh, dst.open("wb") as out:
            while chunk := fh.read(1 << 20):
                out.write(chunk)
        return dst

    def _source(self, info: PlaybackInfo) -> Any:
        """The best source for a new rendition: the lossless original, else the richest rung."""
        best = max(
            info.renditions.values(),
            key=lambda r: (r.lossless or r.is_original, r.bitrate_kbps),
            default=None,
        )
        if best is None:
            raise NotFound(f"track {info.track_id} has no audio to transcode from")
        return local_copy(self.blobs, best.blob_key, self.tmp_dir)

    def _store(
        self,
        track_id: str,
        spec: media.RenditionSpec,
        out: media.RenditionFile,
        hls: media.HlsIndex | None,
        hls_path: Path,
    ) -> None:
        key = f"tracks/{track_id}/{spec.filename}"
        size = self.blobs.put_file(key, out.path)
        hls_key = None
        if hls is not None:
            hls_key = f"tracks/{track_id}/hls/{spec.name}.mp4"
            self.blobs.put_file(hls_key, hls_path)
        with self.db.write() as conn:
            conn.execute(
                sa.delete(renditions).where(renditions.c.track_id == track_id, renditions.c.name == spec.name)
            )
            conn.execute(
                sa.insert(renditions).values(
                    id=new_id(),
                    track_id=track_id,
                    name=spec.name,
                    codec=spec.codec,
                    bitrate_kbps=spec.bitrate_kbps,
                    container=spec.container,
                    content_type=spec.content_type,
                    blob_key=key,
                    size_bytes=size,
                    duration_ms=round(out.duration_s * 1000),
                    is_original=False,
                    hls_blob_key=hls_key,
                    hls_index=hls.to_json() if hls else None,
                    created_at=self.clock.now(),
                )
            )

    def _once(self, track_id: str, name: str, make: Callable[[], None]) -> PlaybackInfo:
        """Runs `make` for (track, name) at most once across threads, processes and machines.

        In this process, followers wait on an Event. Across processes, the `rendition_claims`
        primary key elects one holder; the others poll until the claim is gone. A holder that
        died leaves a claim that expires, and the next request takes it over.
        """
        key = (track_id, name)
        with self._inflight_lock:
            event = self._inflight.get(key)
            leader = event is None
            if leader:
                event = self._inflight[key] = threading.Event()
        assert event is not None
        if not leader:
            if not event.wait(self.ondemand_wait_s):
                raise ServiceUnavailable("this rendition is still being prepared; retry shortly", 5)
            self.invalidate(track_id)
            return self.info(track_id)
        try:
            deadline = time.monotonic() + self.ondemand_wait_s
            while not self._claim(track_id, name):
                if time.monotonic() > deadline:
                    raise ServiceUnavailable("this rendition is still being prepared; retry shortly", 5)
                time.sleep(0.1)
                if not self._claimed_by_other(track_id, name):
                    self.invalidate(track_id)
                    info = self.info(track_id)
                    if self._done(info, name):
                        return info
            try:
                self.invalidate(track_id)
                info = self.info(track_id)
                if not self._done(info, name):  # someone may have finished just before we claimed
                    started = time.perf_counter()
                    make()
                    log.info(
                        "streaming.ondemand",
                        track=track_id,
                        what=name,
                        s=round(time.perf_counter() - started, 3),
                    )
            finally:
                with self.db.write() as conn:
                    conn.execute(
                        sa.delete(rendition_claims).where(
                            rendition_claims.c.track_id == track_id,
                            rendition_claims.c.name == name,
                            rendition_claims.c.holder == self._holder,
                        )
                    )
            self.invalidate(track_id)
            self.catalog.invalidate_track(track_id)
            return self.info(track_id)
        finally:
            with self._inflight_lock:
                self._inflight.pop(key, None)
            event.set()

    @staticmethod
    def _done(info: PlaybackInfo, name: str) -> bool:
        if name == "hls":
            return all(r.hls is not None for r in info.renditions.values() if r.codec == "aac")
        return name in info.renditions

    def _claim(self, track_id: str, name: str) -> bool:
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=self.ondemand_wait_s * 2)
        values = {"track_id": track_id, "name": name, "holder": self._holder, "expires_at": expires}
        with self.db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            # RETURNING, not rowcount: drivers report -1 for INSERTs (psycopg 3 does).
            ins = dialect.insert(rendition_claims).values(**values).on_conflict_do_nothing()
            if conn.execute(ins.returning(rendition_claims.c.holder)).first() is not None:
                return True
            taken = conn.execute(  # take over a claim whose holder died
                sa.update(rendition_claims)
                .where(
                    rendition_claims.c.track_id == track_id,
                    rendition_claims.c.name == name,
                    rendition_claims.c.expires_at < now,
                )
                .values(holder=self._holder, expires_at=expires)
            )
            return bool(taken.rowcount == 1)

    def _claimed_by_other(self, track_id: str, name: str) -> bool:
        with self.db.read() as conn:
            return (
                conn.execute(
                    sa.select(rendition_claims.c.holder).where(
                        rendition_claims.c.track_id == track_id, rendition_claims.c.name == name
                    )
                ).first()
                is not None
            )
