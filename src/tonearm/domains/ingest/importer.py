"""`tonearm import DIR`: bulk import of an existing music folder, fast, resumable and idempotent.

Files are read in a process pool (tags, a content check by mutagen's parsers, a SHA-256, cover
thumbnails cached per picture and per album) and written to the database in batches. A ledger of
(path, size, mtime) lets a re-run skip unchanged files. Tracks are playable at once from their
originals; loudness and the transcode ladder follow as `ingest.track_renditions` jobs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import multiprocessing
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tonearm import covers, media
from tonearm.domains.catalog.service import CatalogService, name_key
from tonearm.domains.catalog.tables import albums, renditions, track_artists, track_genres, tracks
from tonearm.domains.ingest.service import CONTENT_TYPES, IngestService
from tonearm.domains.ingest.tables import import_files
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.ids import new_id
from tonearm.ports.blobs import BlobStore
from tonearm.ports.jobs import JobQueue

AUDIO_SUFFIXES = {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav"}
BATCH = 256
ANALYZE_AFTER = 1000  # imported files


@dataclass(frozen=True, slots=True)
class Thumbs:
    source: str  # embedded|generated
    content_hash: str | None
    items: tuple[media.Thumbnail, ...]


@dataclass(frozen=True, slots=True)
class Scanned:
    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str
    duration_s: float
    container: str
    codec: str
    lossless: bool
    bit_rate: int
    tags: media.Tags
    cover: Thumbs | None


@dataclass(frozen=True, slots=True)
class ScanFailure:
    path: str
    size_bytes: int
    mtime_ns: int
    reason: str


@dataclass
class ImportReport:
    found: int = 0
    imported: int = 0
    unchanged: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def _walk(root: Path) -> Iterator[Path]:
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in sorted(entries, key=lambda e: e.name):
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file(follow_symlinks=False) and Path(e.name).suffix.lower() in AUDIO_SUFFIXES:
                yield Path(e.path)


def _kind(audio: Any) -> tuple[str, str, bool]:
    """(container, codec, lossless) from mutagen's parsed type: its parsers read frames, not names."""
    name = type(audio).__name__
    if name == "MP3":
        return "mp3", "mp3", False
    if name == "FLAC":
        return "flac", "flac", True
    if name == "OggVorbis":
        return "ogg", "vorbis", False
    if name == "OggOpus":
        return "ogg", "opus", False
    if name == "MP4":
        codec = str(getattr(audio.info, "codec", "mp4a"))
        return "m4a", ("alac" if codec == "alac" else "aac"), codec == "alac"
    if name == "WAVE":
        return "wav", "pcm_s16le", True
    raise ValueError(f"unsupported format {name}")


@lru_cache(maxsize=64)
def _embedded_thumbs(picture: bytes) -> Thumbs | None:
    try:
        return Thumbs("embedded", hashlib.sha256(picture).hexdigest(), tuple(media.make_thumbnails(picture)))
    except media.MediaError:
        return None


@lru_cache(maxsize=256)
def _generated_thumbs(album_key: str, album: str, artist: str) -> Thumbs:
    jpeg = covers.generate_cover(album_key, album, artist)
    return Thumbs("generated", None, tuple(media.make_thumbnails(jpeg)))


# Covers this process has already sent to the writer, per import run: an album's thumbnails
# cross the process boundary once per reader, not once per track.
_SENT_COVERS: set[tuple[str, str]] = set()


def scan_file(path_str: str, max_seconds: float, run_id: str = "") -> Scanned | ScanFailure:
    """Runs in a pool process: everything about one file that does not need the database."""
    import mutagen

    path = Path(path_str)
    try:
        st = path.stat()
    except OSError as exc:
        return ScanFailure(path_str, 0, 0, f"cannot read: {exc.strerror}")

    def fail(reason: str) -> ScanFailure:
        return ScanFailure(path_str, st.st_size, st.st_mtime_ns, reason)

    if st.st_size == 0:
        return fail("empty file")
    try:
        audio = mutagen.File(path_str)
    except Exception as exc:
        return fail(f"not an audio file (by content: {type(exc).__name__})")
    if audio is None or getattr(audio, "info", None) is None:
        return fail("not an audio file (by content)")
    try:
        container, codec, lossless = _kind(audio)
    except ValueError as exc:
        return fail(str(exc))
    duration = float(getattr(audio.info, "length", 0) or 0)
    if not 0.5 <= duration <= max_seconds:
        return fail(f"implausible duration {duration:.1f} s")
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    tags = media.read_tags(path, parsed=audio)
    # The same album identity the writer uses (see Importer._rows_for).
    album = tags.album or tags.title or path.stem
    album_artist = tags.album_artist or tags.artist or "Unknown Artist"
    album_key = f"{name_key(album_artist)}|{name_key(album)}"
    cover = _embedded_thumbs(tags.picture) if tags.picture else None
    if cover is None:
        cover = _generated_thumbs(album_key, album, album_artist)
    sent_key = (run_id, f"{album_key}|{cover.content_hash}")
    if sent_key in _SENT_COVERS:
        cover = Thumbs(cover.source, cover.content_hash, ())  # the writer has it already
    else:
        _SENT_COVERS.add(sent_key)
    tags = dataclasses.replace(tags, picture=None)  # pictures do not cross the process boundary
    return Scanned(
        path_str,
        st.st_size,
        st.st_mtime_ns,
        h.hexdigest(),
        duration,
        container,
        codec,
        lossless,
        int(getattr(audio.info, "bitrate", 0) or 0),
        tags,
        cover,
    )


class Importer:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobQueue,
        catalog: CatalogService,
        ingest: IngestService,
        clock: Clock,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.catalog = catalog
        self.ingest = ingest
        self.clock = clock

    def run(
        self,
        root: Path,
        *,
        transcode: bool = True,
        workers: int = 2,
        progress: Callable[[int, int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> ImportReport:
        root = root.resolve()
        report = ImportReport()
        files = [str(p) for p in _walk(root)]
        report.found = len(files)
        with self.db.read() as conn:
            ledger = {
                r.path: (r.size_bytes, r.mtime_ns)
                for r in conn.execute(
                    sa.select(import_files.c.path, import_files.c.size_bytes, import_files.c.mtime_ns)
                )
            }
        todo = []
        for p in files:
            try:
                st = os.stat(p)
            except OSError:
                continue
            if ledger.get(p) == (st.st_size, st.st_mtime_ns):
                report.unchanged += 1
            else:
                todo.append(p)
        if on_total:
            on_total(len(todo))
        batch: list[Scanned | ScanFailure] = []
        caches: dict[str, dict[str, Any]] = {"artist": {}, "album": {}, "genre": {}}
        max_s = self.ingest.max_track_seconds
        run_id = secrets.token_hex(8)
        if workers > 1 and len(todo) > 8:
            # spawn, not fork: the caller may have threads (a server's workers), and forking a
            # threaded process can deadlock the child.
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                results: Iterator[Scanned | ScanFailure] = pool.map(
                    scan_file, todo, [max_s] * len(todo), [run_id] * len(todo), chunksize=16
                )
                self._consume(results, batch, caches, report, transcode, progress)
        else:
            self._consume(
                (scan_file(p, max_s, run_id) for p in todo), batch, caches, report, transcode, progress
            )
        if report.imported >= ANALYZE_AFTER:
            # Fresh planner statistics after a bulk load: without them PostgreSQL plans seq scans
            # (a track lookup took 2.4 ms instead of 0.35 ms) until autovacuum gets round to it.
            with self.db.write() as conn:
                conn.execute(sa.text("ANALYZE"))
        return report

    def _consume(
        self,
        results: Iterator[Scanned | ScanFailure],
        batch: list[Scanned | ScanFailure],
        caches: dict[str, dict[str, Any]],
        report: ImportReport,
        transcode: bool,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        for res in results:
            batch.append(res)
            if len(batch) >= BATCH:
                self._write(batch, caches, report, transcode)
                if progress:
                    progress(len(batch), report.failed)
                batch.clear()
        if batch:
            self._write(batch, caches, report, transcode)
            if progress:
                progress(len(batch), report.failed)
            batch.clear()

    def _write(
        self,
        batch: list[Scanned | ScanFailure],
        caches: dict[str, dict[str, Any]],
        report: ImportReport,
        transcode: bool,
    ) -> None:
        """One transaction per batch, with multi-row inserts: per-statement overhead, not SQLite,
        is what limits a bulk import."""
        now = self.clock.now()
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("tracks", "ta", "tg", "rend", "ledger")}
        with self.db.write() as conn:
            paths = [r.path for r in batch]
            old = dict(
                conn.execute(
                    sa.select(import_files.c.path, import_files.c.track_id).where(
                        import_files.c.path.in_(paths)
                    )
                ).all()
            )
            for track_id in old.values():
                if track_id:
                    self.ingest.delete_track(conn, track_id)
            conn.execute(sa.delete(import_files).where(import_files.c.path.in_(paths)))
            for res in batch:
                if isinstance(res, ScanFailure):
                    report.failed += 1
                    report.failures.append((res.path, res.reason))
                    rows["ledger"].append(
                        self._ledger_row(res.path, res.size_bytes, res.mtime_ns, None, res.reason, now)
                    )
                    continue
                self._rows_for(conn, res, caches, rows, now)
                report.imported += 1
            for table, key in (
                (tracks, "tracks"),
                (track_artists, "ta"),
                (track_genres, "tg"),
                (renditions, "rend"),
                (import_files, "ledger"),
            ):
                if rows[key]:
                    conn.execute(sa.insert(table), rows[key])
            self.catalog.tracks_changed(conn, [r["id"] for r in rows["tracks"]])
            if transcode and rows["tracks"]:
                # Lossless originals first: until their ladder exists, free listeners (capped at
                # 160 kbit/s) cannot play them, while lossy originals within the cap already play.
                order = sorted(rows["rend"], key=lambda r: r["bitrate_kbps"] != 0)
                self.jobs.enqueue_many(
                    conn, "ingest.track_renditions", [{"track_id": r["track_id"]} for r in order]
                )

    def _rows_for(
        self,
        conn: sa.Connection,
        res: Scanned,
        caches: dict[str, dict[str, Any]],
        rows: dict[str, list[dict[str, Any]]],
        now: dt.datetime,
    ) -> None:
        t = res.tags
        title = t.title or Path(res.path).stem
        artist = t.artist or t.album_artist or "Unknown Artist"
        album_artist = t.album_artist or artist
        album = t.album or title
        artist_id = self._artist(conn, caches, artist, now)
        album_artist_id = self._artist(conn, caches, album_artist, now)
        album_key = f"{album_artist_id}|{name_key(album)}"
        if album_key not in caches["album"]:
            caches["album"][album_key] = self.catalog.ensure_album(
                conn, album, album_artist_id, t.release_date, now
            )
        album_id, image_id = caches["album"][album_key]
        if image_id is None and res.cover is not None and res.cover.items:
            image_id = self.ingest.store_image(
                conn, res.cover.source, list(res.cover.items), res.cover.content_hash, now
            )
            conn.execute(sa.update(albums).where(albums.c.id == album_id).values(image_id=image_id))
            caches["album"][album_key] = (album_id, image_id)
        track_id = new_id()
        duration_ms = round(res.duration_s * 1000)
        rows["tracks"].append(
            {
                "id": track_id,
                "title": title[:500],
                "album_id": album_id,
                "duration_ms": duration_ms,
                "track_number": t.track_number or 1,
                "disc_number": t.disc_number or 1,
                "isrc": t.isrc,
                "explicit": t.explicit,
                "description": t.description,
                "release_date": t.release_date,
                "status": "ready",
                "visibility": "public",
                "owner_user_id": None,
                "content_hash": res.sha256,
                "created_at": now,
                "updated_at": now,
            }
        )
        rows["ta"].append({"track_id": track_id, "artist_id": artist_id, "position": 0})
        genre_ids = dict.fromkeys(self._genre(conn, caches, g) for g in t.genres)
        rows["tg"].extend({"track_id": track_id, "genre_id": g} for g in genre_ids)
        key = f"tracks/{track_id}/original.{res.container}"
        size = self.blobs.put_file(key, Path(res.path))
        rows["rend"].append(
            {
                "id": new_id(),
                "track_id": track_id,
                "name": "original",
                "codec": res.codec,
                "bitrate_kbps": 0 if res.lossless else round(res.bit_rate / 1000),
                "container": res.container,
                "content_type": CONTENT_TYPES.get(res.container, "application/octet-stream"),
                "blob_key": key,
                "size_bytes": size,
                "duration_ms": duration_ms,
                "is_original": True,
                "created_at": now,
            }
        )
        rows["ledger"].append(self._ledger_row(res.path, res.size_bytes, res.mtime_ns, track_id, None, now))

    def _artist(self, conn: sa.Connection, caches: dict[str, dict[str, Any]], name: str, now: Any) -> str:
        key = name_key(name)
        if key not in caches["artist"]:
            caches["artist"][key] = self.catalog.ensure_artist(conn, name, now)
        return str(caches["artist"][key])

    def _genre(self, conn: sa.Connection, caches: dict[str, dict[str, Any]], name: str) -> int:
        key = name.casefold()
        if key not in caches["genre"]:
            caches["genre"][key] = self.catalog.ensure_genres(conn, [name])[0]
        return int(caches["genre"][key])

    @staticmethod
    def _ledger_row(
        path: str, size: int, mtime_ns: int, track_id: str | None, error: str | None, now: dt.datetime
    ) -> dict[str, Any]:
        return {
            "path": path,
            "size_bytes": size,
            "mtime_ns": mtime_ns,
            "track_id": track_id,
            "error": error,
            "imported_at": now,
        }

    def make_track_renditions(self, track_id: str) -> None:
        """Loudness, decoded-audio hash and the ladder for an imported track (kept playable meanwhile)."""
        with self.db.read() as conn:
            orig = conn.execute(
                sa.select(renditions).where(
                    renditions.c.track_id == track_id, renditions.c.is_original.is_(True)
                )
            ).first()
        if orig is None:
            return
        with self.ingest.local_copy(orig.blob_key) as path:
            probe = media.probe(path, max_duration_s=self.ingest.max_track_seconds)
            loudness = media.measure_loudness(path)
            digest = media.audio_hash(path)
            features = self.ingest.features_or_none(track_id, path)
            rows = self.ingest.transcode_into_blobs(track_id, path, probe, keep_original=False)
        with self.db.write() as conn:
            self.ingest.record_renditions(conn, track_id, rows, loudness, digest, features=features)
        self.catalog.invalidate_track(track_id)
