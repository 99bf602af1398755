"""The ingest pipeline: an upload becomes a playable track in stages, each a retryable job.

    receive (HTTP)  -> blob `uploads/<id>/original` + upload row + job, in one transaction
    ingest.analyze  -> verify by content (ffprobe), read tags, find duplicates, create artist /
                       album / track rows (track stays `processing`, invisible), cover art
    ingest.renditions -> loudness (EBU R128), decoded-audio hash, tempo and brightness (NULL if
                       they cannot be measured), transcode ladder, keep a lossless original;
                       then the track turns `ready` and the upload `ready` together
    ingest.audio_features -> the backfill: tempo and brightness of a track ingested before
                       they were measured (`tonearm features` queues it)

A stage that fails for a reason retrying cannot fix (not audio, duplicate) marks the upload
`failed` with a precise code and message and removes the half-made track; anything else retries.
See docs/ingest.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from tonearm import covers, media
from tonearm.domains.accounts.service import Principal
from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.catalog.tables import (
    albums,
    image_variants,
    images,
    renditions,
    track_artists,
    track_genres,
    tracks,
)
from tonearm.domains.devices.licences import offline_key
from tonearm.domains.ingest.schemas import TrackEdit
from tonearm.domains.ingest.sniff import looks_like_audio
from tonearm.domains.ingest.tables import uploads
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMedia,
)
from tonearm.kernel.ids import new_id, uri
from tonearm.kernel.ratelimit import RateLimiter
from tonearm.ports.blobs import BlobStore, local_copy
from tonearm.ports.jobs import JobQueue
from tonearm.workers.runner import PermanentError

log = structlog.get_logger("tonearm.ingest")

AUDIO_FEATURES_JOB = "ingest.audio_features"


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A file the HTTP layer streamed to a temporary path, hashing and counting as it went."""

    path: Path
    filename: str
    size_bytes: int
    sha256: str
    head: bytes


class IngestService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobQueue,
        catalog: CatalogService,
        clock: Clock,
        limiter: RateLimiter,
        *,
        tmp_dir: Path,
        max_upload_bytes: int,
        max_track_seconds: float,
        uploads_per_hour: int,
        transcode_threads: int = 1,
        aac_coder: str = "fast",
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.catalog = catalog
        self.clock = clock
        self.limiter = limiter
        self.tmp_dir = tmp_dir
        self.max_upload_bytes = max_upload_bytes
        self.max_track_seconds = max_track_seconds
        self.uploads_per_hour = uploads_per_hour
        self.transcode_threads = transcode_threads
        self.aac_coder = aac_coder
        tmp_dir.mkdir(parents=True, exist_ok=True)

    # Receiving --------------------------------------------------------------------------------
    def check_rate(self, user_id: str) -> None:
        wait = self.limiter.retry_after(f"upload:{user_id}", self.uploads_per_hour, 3600)
        if wait > 0:
            raise TooManyRequests(
                f"upload limit reached ({self.uploads_per_hour} per hour); try again in {int(wait) + 1} s",
                int(wait) + 1,
            )

    def receive(self, user_id: str, received: ReceivedFile, *, visibility: str = "private") -> str:
        """Stores the file and queues its processing; the caller deletes `received.path` after."""
        self.check_rate(user_id)
        if received.size_bytes == 0:
            raise UnsupportedMedia("file: the upload is empty (0 bytes)")
        if received.size_bytes > self.max_upload_bytes:
            raise PayloadTooLarge(f"file: larger than the {self.max_upload_bytes} byte limit")
        if not looks_like_audio(received.head):
            raise UnsupportedMedia(
                "file: not an audio file we accept (MP3, FLAC, Ogg Vorbis/Opus, M4A/AAC/ALAC or WAV), "
                "judged by its content"
            )
        if visibility not in ("public", "private"):
            raise UnsupportedMedia("visibility: must be public or private")
        self.limiter.hit(f"upload:{user_id}")
        upload_id = new_id()
        key = f"uploads/{upload_id}/original"
        self.blobs.put_file(key, received.path)
        now = self.clock.now()
        with self.db.write() as conn:
            conn.execute(
                sa.insert(uploads).values(
                    id=upload_id,
                    user_id=user_id,
                    filename=received.filename,
                    status="pending",
                    stage="queued",
                    size_bytes=received.size_bytes,
                    content_hash=received.sha256,
                    blob_key=key,
                    visibility=visibility,
                    created_at=now,
                    updated_at=now,
                )
            )
            self.jobs.enqueue(
                conn, "ingest.analyze", {"upload_id": upload_id}, dedupe_key=f"analyze:{upload_id}"
            )
        return upload_id

    def upload_status(self, upload_id: str, user_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
        # Another user's upload answers exactly like a missing one: no probing for ids.
        if row is None or row.user_id != user_id:
            raise NotFound(f"upload {upload_id} not found")
        return _upload_obj(row)

    def list_uploads(self, user_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        with self.db.read() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(uploads).where(uploads.c.user_id == user_id)
            ).scalar_one()
            rows = conn.execute(
                sa.select(uploads)
                .where(uploads.c.user_id == user_id)
                .order_by(uploads.c.created_at.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [_upload_obj(r) for r in rows], total

    # Stages -----------------------------------------------------------------------------------
    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]:
        return local_copy(self.blobs, key, self.tmp_dir)

    def _set(self, conn: sa.Connection, upload_id: str, **values: Any) -> None:
        conn.execute(
            sa.update(uploads).where(uploads.c.id == upload_id).values(updated_at=self.clock.now(), **values)
        )

    def _fail(self, upload_id: str, code: str, message: str, *, duplicate_of: str | None = None) -> None:
        """Marks the upload failed and removes any half-made track, in one transaction."""
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(uploads.c.track_id, uploads.c.blob_key).where(uploads.c.id == upload_id)
            ).one()
            self._set(
                conn,
                upload_id,
                status="failed",
                stage=None,
                error_code=code,
                error_message=message[:500],
                duplicate_of=duplicate_of,
                track_id=None,
            )
            if row.track_id:
                self.delete_track(conn, row.track_id)
        if row.blob_key:
            self.blobs.delete(row.blob_key)

    def _owned_track(self, conn: sa.Connection, principal: Principal, track_id: str) -> Any:
        check_id(track_id, "track")
        row = conn.execute(
            sa.select(tracks.c.id, tracks.c.owner_user_id, tracks.c.visibility, tracks.c.status).where(
                tracks.c.id == track_id
            )
        ).first()
        if row is None or (row.visibility != "public" and row.owner_user_id != principal.user_id):
            raise NotFound(f"track {track_id} not found")
        if row.owner_user_id != principal.user_id and principal.role != "admin":
            raise Forbidden(f"track {track_id}: only the user who uploaded it (or an admin) may change it")
        return row

    def edit_track(self, principal: Principal, track_id: str, edit: TrackEdit) -> None:
        """An uploader edits their track; the search index and caches follow."""
        with self.db.write() as conn:
            self._owned_track(conn, principal, track_id)
            values: dict[str, Any] = {}
            if edit.name is not None:
                values["title"] = edit.name
            if edit.description is not None:
                values["description"] = edit.description or None
            if edit.explicit is not None:
                values["explicit"] = edit.explicit
            if edit.visibility is not None:
                values["visibility"] = edit.visibility
            if edit.genres is not None:
                names = [g.strip() for g in edit.genres if g.strip()]
                if any(len(g) > 80 for g in names):
                    raise BadRequest("genres: each genre is at most 80 characters")
                conn.execute(sa.delete(track_genres).where(track_genres.c.track_id == track_id))
                genre_ids = self.catalog.ensure_genres(conn, names)
                if genre_ids:
                    conn.execute(
                        sa.insert(track_genres), [{"track_id": track_id, "genre_id": g} for g in genre_ids]
                    )
            conn.execute(
                sa.update(tracks).where(tracks.c.id == track_id).values(**values, updated_at=self.clock.now())
            )
            self.catalog.tracks_changed(conn, [track_id])
        self.catalog.invalidate_track(track_id)

    def delete_own_track(self, principal: Principal, track_id: str) -> None:
        """An uploader deletes their track: rows, renditions and blobs go; search follows."""
        with self.db.write() as conn:
            self._owned_track(conn, principal, track_id)
            conn.execute(sa.update(uploads).where(uploads.c.track_id == track_id).values(track_id=None))
            self.delete_track(conn, track_id)

    def delete_track(self, conn: sa.Connection, track_id: str) -> None:
        self.catalog.tracks_changed(conn, [track_id])  # before the delete: it reads album and artists
        rows = conn.execute(
            sa.select(renditions.c.id, renditions.c.blob_key, renditions.c.hls_blob_key).where(
                renditions.c.track_id == track_id
            )
        ).all()
        conn.execute(sa.delete(tracks).where(tracks.c.id == track_id))
        keys = [k for row in rows for k in (row.blob_key, row.hls_blob_key) if k]
        keys += [offline_key(track_id, row.id) for row in rows]  # offline downloads' encrypted copies
        for key in keys:
            if not key.startswith("uploads/"):
                self.blobs.delete(key)
        self.catalog.invalidate_track(track_id)

    def analyze(self, upload_id: str) -> None:
        with self.db.write() as conn:
            up = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
            if up is None or up.status in ("ready", "failed"):
                return
            self._set(conn, upload_id, status="processing", stage="verifying")
        assert up.blob_key is not None
        with self.local_copy(up.blob_key) as path:
            try:
                probe = media.probe(path, max_duration_s=self.max_track_seconds)
            except media.MediaError as exc:
                self._fail(upload_id, exc.code, str(exc))
                raise PermanentError(str(exc)) from exc
            tags = media.read_tags(path)
        dup = self._find_duplicate(tracks.c.content_hash == up.content_hash, up.user_id, exclude=up.track_id)
        if dup:
            msg = f"this file was already uploaded as track {dup}"
            self._fail(upload_id, "duplicate", msg, duplicate_of=dup)
            raise PermanentError(msg)

        now = self.clock.now()
        stem = up.filename.rsplit(".", 1)[0] or "Untitled"
        title = tags.title or stem
        artist_name = tags.artist or tags.album_artist or "Unknown Artist"
        album_name = tags.album or title
        cover: tuple[str, list[media.Thumbnail], str | None] | None = None
        if tags.picture:
            try:
                cover = (
                    "embedded",
                    media.make_thumbnails(tags.picture),
                    hashlib.sha256(tags.picture).hexdigest(),
                )
            except media.MediaError:
                cover = None  # a broken embedded picture must not sink the audio: fall back below
        with self.db.write() as conn:
            album_artist_id = self.catalog.ensure_artist(conn, tags.album_artist or artist_name, now)
            artist_id = self.catalog.ensure_artist(conn, artist_name, now)
            scope = up.user_id if up.visibility == "private" else None
            album_id, album_image = self.catalog.ensure_album(
                conn, album_name, album_artist_id, tags.release_date, now, owner_scope=scope
            )
            track_id = up.track_id or new_id()
            if up.track_id is None:
                conn.execute(
                    sa.insert(tracks).values(
                        id=track_id,
                        title=title[:500],
                        album_id=album_id,
                        duration_ms=round(probe.duration_s * 1000),
                        track_number=tags.track_number or 1,
                        disc_number=tags.disc_number or 1,
                        isrc=tags.isrc,
                        explicit=tags.explicit,
                        description=tags.description,
                        release_date=tags.release_date,
                        status="processing",
                        visibility=up.visibility,
                        owner_user_id=up.user_id,
                        content_hash=up.content_hash,
                        created_at=now,
                        updated_at=now,
                    )
                )
                conn.execute(
                    sa.insert(track_artists).values(track_id=track_id, artist_id=artist_id, position=0)
                )
                genre_ids = self.catalog.ensure_genres(conn, tags.genres)
                if genre_ids:
                    conn.execute(
                        sa.insert(track_genres), [{"track_id": track_id, "genre_id": g} for g in genre_ids]
                    )
            if album_image is None:
                if cover is None:
                    jpeg = covers.generate_cover(album_id, album_name, tags.album_artist or artist_name)
                    cover = ("generated", media.make_thumbnails(jpeg), None)
                image_id = self.store_image(conn, cover[0], cover[1], cover[2], now)
                conn.execute(sa.update(albums).where(albums.c.id == album_id).values(image_id=image_id))
            self._set(conn, upload_id, stage="transcoding", track_id=track_id)
            self.jobs.enqueue(
                conn, "ingest.renditions", {"upload_id": upload_id}, dedupe_key=f"renditions:{upload_id}"
            )

    def store_image(
        self,
        conn: sa.Connection,
        source: str,
        thumbs: list[media.Thumbnail],
        content_hash: str | None,
        now: dt.datetime,
    ) -> str:
        if content_hash:
            existing = conn.execute(
                sa.select(images.c.id).where(images.c.content_hash == content_hash).limit(1)
            ).first()
            if (
                existing is not None
                and conn.execute(
                    sa.select(image_variants.c.size).where(image_variants.c.image_id == existing.id).limit(1)
                ).first()
            ):
                return str(existing.id)
        image_id = new_id()
        variants = []
        for t in thumbs:
            key = f"images/{image_id}/{t.size}.jpg"
            self.blobs.put_bytes(key, t.data)
            variants.append(
                {
                    "image_id": image_id,
                    "size": t.size,
                    "width": t.width,
                    "height": t.height,
                    "blob_key": key,
                    "content_type": t.content_type,
                    "bytes": len(t.data),
                }
            )
        conn.execute(
            sa.insert(images).values(id=image_id, source=source, content_hash=content_hash, created_at=now)
        )
        conn.execute(sa.insert(image_variants), variants)
        return image_id

    def _find_duplicate(
        self, cond: sa.ColumnElement[bool], user_id: str, *, exclude: str | None
    ) -> str | None:
        with self.db.read() as conn:
            q = sa.select(tracks.c.id).where(
                cond,
                tracks.c.status != "failed",
                sa.or_(tracks.c.visibility == "public", tracks.c.owner_user_id == user_id),
            )
            if exclude:
                q = q.where(tracks.c.id != exclude)
            return conn.execute(q.limit(1)).scalar()

    def make_renditions(self, upload_id: str) -> None:
        with self.db.read() as conn:
            up = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
        if up is None or up.status in ("ready", "failed") or up.track_id is None or up.blob_key is None:
            return
        track_id = up.track_id
        with self.local_copy(up.blob_key) as path:
            probe = media.probe(path, max_duration_s=self.max_track_seconds)
            digest = media.audio_hash(path)
            if digest:
                dup = self._find_duplicate(tracks.c.audio_hash == digest, up.user_id, exclude=track_id)
                if dup:
                    msg = f"the same audio was already uploaded as track {dup}"
                    self._fail(upload_id, "duplicate", msg, duplicate_of=dup)
                    raise PermanentError(msg)
            loudness = media.measure_loudness(path)
            features = self.features_or_none(track_id, path)
            rows = self.transcode_into_blobs(track_id, path, probe)
        with self.db.write() as conn:
            self.record_renditions(conn, track_id, rows, loudness, digest, features=features)
            self._set(conn, upload_id, status="ready", stage=None, blob_key=None)
        # A kept lossless original was stored under the track's own key (a hard link on local
        # disk, a copy elsewhere), so the upload's blob is always done with here.
        self.blobs.delete(up.blob_key)
        self.catalog.invalidate_track(track_id)

    def record_renditions(
        self,
        conn: sa.Connection,
        track_id: str,
        rows: list[dict[str, Any]],
        loudness: media.Loudness,
        digest: str | None,
        *,
        features: media.AudioFeatures | None = None,
    ) -> None:
        """Stores rendition rows (replacing any of the same names, so a retried stage is harmless),
        the loudness, the audio hash and the audio features, and makes the track `ready`.
        Without `features` the track's feature columns are left as they are (NULL for a new track;
        `queue_audio_features` fills them later)."""
        now = self.clock.now()
        measured = {} if features is None else _feature_values(features)
        names = [r["name"] for r in rows]
        conn.execute(
            sa.delete(renditions).where(renditions.c.track_id == track_id, renditions.c.name.in_(names))
        )
        conn.execute(sa.insert(renditions), [r | {"created_at": now} for r in rows])
        conn.execute(
            sa.update(tracks)
            .where(tracks.c.id == track_id)
            .values(
                loudness_lufs=loudness.integrated_lufs,
                true_peak_dbtp=loudness.true_peak_dbtp,
                audio_hash=digest,
                status="ready",
                updated_at=now,
                **measured,
            )
        )
        self.catalog.tracks_changed(conn, [track_id])

    def features_or_none(self, track_id: str, path: Path) -> media.AudioFeatures | None:
        # Features only feed recommendations: a file that plays must not fail ingest over them.
        try:
            return media.audio_features(path)
        except Exception:  # a MediaError, or anything numpy might raise on odd input
            log.warning("audio features failed; stored as NULL", track_id=track_id, exc_info=True)
            return None

    def measure_audio_features(self, track_id: str) -> None:
        """The `ingest.audio_features` job: (re)measures a ready track's tempo and brightness from
        its kept lossless original, or its best rendition when the upload was lossy."""
        with self.db.read() as conn:
            source = conn.execute(
                sa.select(renditions.c.blob_key)
                .join(tracks, tracks.c.id == renditions.c.track_id)
                .where(renditions.c.track_id == track_id, tracks.c.status == "ready")
                .order_by(renditions.c.is_original.desc(), renditions.c.bitrate_kbps.desc())
                .limit(1)
            ).scalar()
        if source is None:
            return  # deleted, failed, or still being ingested (its renditions step measures it)
        with self.local_copy(source) as path:
            try:
                features = media.audio_features(path)
            except media.MediaError as exc:
                if exc.code == "timeout":
                    raise  # a busy machine: worth another attempt
                raise PermanentError(str(exc)) from exc
        with self.db.write() as conn:
            conn.execute(sa.update(tracks).where(tracks.c.id == track_id).values(**_feature_values(features)))
        # No tracks_changed(): nothing searchable changed, and a backfill must not reindex the catalog.
        self.catalog.invalidate_track(track_id)

    def queue_audio_features(self, *, missing_only: bool = True) -> int:
        """Queues one `ingest.audio_features` job per ready track (only those never measured, by
        default), in one transaction; returns how many were queued."""
        with self.db.write() as conn:
            q = sa.select(tracks.c.id).where(tracks.c.status == "ready").order_by(tracks.c.id)
            if missing_only:
                # brightness is NULL only if never measured (tempo is legitimately NULL without a beat).
                q = q.where(tracks.c.brightness_hz.is_(None))
            track_ids = list(conn.execute(q).scalars())
            if track_ids:
                self.jobs.enqueue_many(conn, AUDIO_FEATURES_JOB, [{"track_id": t} for t in track_ids])
        return len(track_ids)

    def transcode_into_blobs(
        self, track_id: str, path: Path, probe: media.AudioProbe, *, keep_original: bool = True
    ) -> list[dict[str, Any]]:
        """Runs the ladder, stores each rung (and a lossless original) as blobs; returns rendition rows."""
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
            files = media.transcode_ladder(
                path, Path(tmp), threads=self.transcode_threads, aac_coder=self.aac_coder
            )
            # The AAC rungs again as fragmented MP4 for HLS: a remux (no re-encode) in one ffmpeg,
            # with segment boundaries aligned across rungs so players switch without a gap.
            aac = [f for f in files if f.spec.codec == "aac"]
            packaged = media.package_hls([(f.path, Path(tmp) / f"{f.spec.name}.cmaf.mp4") for f in aac])
            hls = {
                f.spec.name: (Path(tmp) / f"{f.spec.name}.cmaf.mp4", idx)
                for f, idx in zip(aac, packaged, strict=True)
            }
            for f in files:
                hls_key = hls_index = None
                if f.spec.name in hls:
                    hls_path, idx = hls[f.spec.name]
                    hls_key = f"tracks/{track_id}/hls/{f.spec.name}.mp4"
                    self.blobs.put_file(hls_key, hls_path)
                    hls_index = idx.to_json()
                key = f"tracks/{track_id}/{f.spec.name}.{f.spec.container}"
                size = self.blobs.put_file(key, f.path)
                rows.append(
                    {
                        "id": new_id(),
                        "track_id": track_id,
                        "name": f.spec.name,
                        "codec": f.spec.codec,
                        "bitrate_kbps": f.spec.bitrate_kbps,
                        "container": f.spec.container,
                        "content_type": f.spec.content_type,
                        "blob_key": key,
                        "size_bytes": size,
                        "duration_ms": round(f.duration_s * 1000),
                        "is_original": False,
                        "hls_blob_key": hls_key,
                        "hls_index": hls_index,
                    }
                )
        if keep_original and probe.lossless:
            rows.append(self.original_row(track_id, path, probe))
        return rows

    def original_row(self, track_id: str, path: Path, probe: media.AudioProbe) -> dict[str, Any]:
        key = f"tracks/{track_id}/original.{probe.container}"
        size = self.blobs.put_file(key, path)
        return {
            "id": new_id(),
            "track_id": track_id,
            "name": "original",
            "codec": probe.codec,
            "bitrate_kbps": 0 if probe.lossless else round((probe.bit_rate or 0) / 1000),
            "container": probe.container,
            "content_type": CONTENT_TYPES.get(probe.container, "application/octet-stream"),
            "blob_key": key,
            "size_bytes": size,
            "duration_ms": round(probe.duration_s * 1000),
            "is_original": True,
            "hls_blob_key": None,
            "hls_index": None,
        }


def _feature_values(features: media.AudioFeatures) -> dict[str, float | None]:
    return {"tempo_bpm": features.tempo_bpm, "brightness_hz": features.brightness_hz}


CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
}


def _upload_obj(row: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": row.id,
        "type": "upload",
        "filename": row.filename,
        "status": row.status,
        "stage": row.stage,
        "size_bytes": row.size_bytes,
        "visibility": row.visibility,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "track": None,
        "error": None,
    }
    if row.track_id and row.status == "ready":
        obj["track"] = {"id": row.track_id, "uri": uri("track", row.track_id)}
    if row.status == "failed":
        obj["error"] = {"code": row.error_code, "message": row.error_message}
        if row.duplicate_of:
            obj["error"]["duplicate_of"] = uri("track", row.duplicate_of)
    return obj
