"""The listener's rights over their data: a copy of everything, and erasure of everything.

Export: `request_export` writes a `data_exports` row and its job in one transaction; the job
(`build_export`, see tasks.py) writes a ZIP of JSON files (archive.py) to the blob store. The
listener then gets a short-lived signed link to it (`ExportLinks`, like the stream URLs: the
signature names the export, its owner and the expiry). Exports are kept `EXPORT_TTL` and removed
lazily, the next time their owner asks about them or for a new one. A listener has at most one
export in the making: asking again answers the pending one.

Deletion: after the password is checked again (`AccountService.reauthenticate`, rate limited),
one transaction removes the user and, through the schema's cascading foreign keys, every row
that is theirs: sessions, library, playlists, history, scores, exports, shares, devices, billing.
What does not cascade is done here, in the same transaction:

* Tracks they uploaded, public ones included (their uploads are their data; other listeners lose
  them as when the uploader deletes a track), noted in the change log first so search forgets
  them; the albums left empty, the artists left with neither tracks nor albums, and the images
  nobody uses any more (cover art, their avatar, their playlists' covers) go with them.
* Follower counts of the artists they followed (`artists.followers` counts follows exactly).

Blobs (their tracks' renditions, pending upload files, images, export archives) are deleted after
the commit: a failure there leaves an unreachable file, never a row pointing at a missing one.
Kept: aggregate play counts of tracks (popularity, not personal), and tracks they added to other
people's playlists (they belong to those playlists; `added_by` becomes null).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
import structlog

from tonearm.domains.accounts.service import AccountService
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.service import CatalogService, check_id
from tonearm.domains.catalog.tables import (
    albums,
    artists,
    image_variants,
    images,
    renditions,
    track_artists,
    tracks,
)
from tonearm.domains.devices.licences import offline_key
from tonearm.domains.history.tables import data_exports
from tonearm.domains.ingest.tables import uploads
from tonearm.domains.library.tables import artist_follows, playlists
from tonearm.domains.privacy.archive import write_archive
from tonearm.kernel import changes
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database
from tonearm.kernel.errors import Forbidden, NotFound
from tonearm.kernel.ids import new_id
from tonearm.ports.blobs import BlobStore
from tonearm.ports.jobs import JobQueue

log = structlog.get_logger("tonearm.privacy")

EXPORT_TTL = dt.timedelta(days=7)  # how long a finished export is kept
LINK_TTL_S = 600  # how long one download link works
STALE_AFTER = dt.timedelta(hours=6)  # an export still pending after this will never finish
EXPORT_JOB = "privacy.export"
# Another domain's part of deleting an account, run in its transaction before the cascade;
# it may return what to do once that transaction has committed.
BeforeDelete = Callable[[sa.Connection, str], Callable[[], None] | None]


class ExportLinks:
    """Signed, expiring download links: `?u=<user>&exp=<unix s>&sig=<mac>`, where the MAC
    (HMAC-SHA256, 144 bits, with a key of its own) covers the export, the user and the expiry."""

    def __init__(self, secret_key: str, clock: Clock) -> None:
        self._key = hashlib.sha256(b"export:" + secret_key.encode()).digest()
        self._clock = clock

    def sign(self, export_id: str, user_id: str, exp: int) -> str:
        msg = f"{export_id}|{user_id}|{exp}".encode()
        return base64.urlsafe_b64encode(hmac.new(self._key, msg, hashlib.sha256).digest()[:18]).decode()

    def query(self, export_id: str, user_id: str, exp: int) -> str:
        return f"u={quote(user_id)}&exp={exp}&sig={self.sign(export_id, user_id, exp)}"

    def verify(self, export_id: str, user_id: str, exp: str, sig: str) -> None:
        """Raises Forbidden saying what is wrong with the link."""
        if not (user_id and exp and sig):
            raise Forbidden("this download link is not signed; ask for the export's status for a new link")
        if not exp.isascii() or not exp.isdigit() or len(exp) > 12:
            raise Forbidden("invalid download link expiry")
        if int(exp) < self._clock.now().timestamp():
            raise Forbidden("this download link has expired; ask for the export's status for a new one")
        if not hmac.compare_digest(self.sign(export_id, user_id, int(exp)), sig):
            raise Forbidden("invalid download link signature: the link was altered")


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A finished export, for the download route to send."""

    blob_key: str
    size_bytes: int
    filename: str


class PrivacyService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobQueue,
        clock: Clock,
        accounts: AccountService,
        catalog: CatalogService,
        secret_key: str,
        public_url: str,
        *,
        tmp_dir: Path,
        before_delete: Sequence[BeforeDelete] = (),
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.clock = clock
        self.accounts = accounts
        self.catalog = catalog
        self.links = ExportLinks(secret_key, clock)
        self.base = public_url.rstrip("/")
        self.tmp_dir = tmp_dir
        self.before_delete = list(before_delete)

    # Export -------------------------------------------------------------------------------------
    def request_export(self, user_id: str) -> dict[str, Any]:
        """Starts an export of everything the user has here (or answers the one in the making)."""
        now = self.clock.now()
        self._drop_expired(user_id, now)
        with self.db.write() as conn:
            pending = conn.execute(
                sa.select(data_exports).where(
                    data_exports.c.user_id == user_id, data_exports.c.status == "pending"
                )
            ).first()
            if pending is not None and pending.created_at > now - STALE_AFTER:
                return self._export_obj(pending)
            if pending is not None:  # its job gave up (workers died under it): start afresh
                conn.execute(
                    sa.update(data_exports)
                    .where(data_exports.c.id == pending.id)
                    .values(
                        status="failed", error="the export did not finish", finished_at=now, expires_at=now
                    )
                )
            export_id = new_id()
            conn.execute(
                sa.insert(data_exports).values(
                    id=export_id, user_id=user_id, status="pending", created_at=now
                )
            )
            self.jobs.enqueue(conn, EXPORT_JOB, {"export_id": export_id})
            row = conn.execute(sa.select(data_exports).where(data_exports.c.id == export_id)).one()
        return self._export_obj(row)

    def export_status(self, user_id: str, export_id: str) -> dict[str, Any]:
        """The export's state; once ready, with a download link valid for `LINK_TTL_S`."""
        return self._export_obj(self._own_export(user_id, export_id))

    def export_file(self, export_id: str, user_id: str, exp: str, sig: str) -> ExportFile:
        """Checks a download link and answers what to send."""
        check_id(export_id, "export")
        self.links.verify(export_id, user_id, exp, sig)
        row = self._own_export(user_id, export_id)
        if row.status != "ready" or row.blob_key is None:
            raise NotFound(f"export {export_id} is not ready")
        day = row.created_at.strftime("%Y-%m-%d")
        return ExportFile(row.blob_key, int(row.size_bytes or 0), f"tonearm-data-{day}.zip")

    def _own_export(self, user_id: str, export_id: str) -> Any:
        check_id(export_id, "export")
        with self.db.read() as conn:
            row = conn.execute(sa.select(data_exports).where(data_exports.c.id == export_id)).first()
        # Another user's export answers exactly like a missing one.
        if row is None or row.user_id != user_id:
            raise NotFound(f"export {export_id} not found")
        now = self.clock.now()
        if row.expires_at is not None and row.expires_at <= now:
            self._drop_expired(user_id, now)
            raise NotFound(f"export {export_id} expired on {iso(row.expires_at)}; ask for a new one")
        return row

    def _export_obj(self, row: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": row.id,
            "status": row.status,
            "href": f"{self.base}/v1/me/exports/{row.id}",
            "created_at": iso(row.created_at),
            "finished_at": iso(row.finished_at),
            "expires_at": iso(row.expires_at),
            "size_bytes": row.size_bytes,
            "error": row.error,
            "download": None,
        }
        if row.status == "ready":
            exp = int(min(self.clock.now().timestamp() + LINK_TTL_S, row.expires_at.timestamp()))
            url = f"{self.base}/exports/{row.id}/archive.zip?{self.links.query(row.id, row.user_id, exp)}"
            out["download"] = {"url": url, "expires_at": iso(dt.datetime.fromtimestamp(exp, dt.UTC))}
        return out

    def _drop_expired(self, user_id: str, now: dt.datetime) -> None:
        with self.db.write() as conn:
            keys = (
                conn.execute(
                    sa.delete(data_exports)
                    .where(data_exports.c.user_id == user_id, data_exports.c.expires_at <= now)
                    .returning(data_exports.c.blob_key)
                )
                .scalars()
                .all()
            )
        self._delete_blobs([k for k in keys if k])

    def build_export(self, export_id: str) -> None:
        """The job: writes the archive to the blob store and marks the export ready (or failed,
        with why). An export that is gone (its user deleted meanwhile) or done is left alone."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(data_exports).where(data_exports.c.id == export_id)).first()
        if row is None or row.status != "pending":
            return
        key = f"exports/{row.user_id}/{export_id}.zip"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp:
                path = Path(tmp) / "export.zip"
                with (
                    zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf,
                    self.db.read() as conn,
                ):
                    user = conn.execute(sa.select(users.c.id).where(users.c.id == row.user_id)).first()
                    if user is None:
                        return
                    write_archive(conn, zf, row.user_id, base=self.base, now=self.clock.now())
                size = self.blobs.put_file(key, path)
        except Exception as exc:
            log.exception("privacy.export_failed", export_id=export_id)
            self._finish(
                export_id, status="failed", error=f"the export could not be made ({type(exc).__name__})"
            )
            return
        if not self._finish(export_id, status="ready", blob_key=key, size_bytes=size):
            self.blobs.delete(key)  # the user (and with them the export) was deleted meanwhile

    def _finish(self, export_id: str, **values: Any) -> bool:
        now = self.clock.now()
        with self.db.write() as conn:
            result = conn.execute(
                sa.update(data_exports)
                .where(data_exports.c.id == export_id, data_exports.c.status == "pending")
                .values(finished_at=now, expires_at=now + EXPORT_TTL, **values)
            )
        return bool(result.rowcount)

    # Deletion ------------------------------------------------------------------------------------
    def delete_account(self, user_id: str, password: str) -> None:
        """Deletes the user and all their personal data (see the module docstring), once they
        have given their password again. Their access tokens stop working at once here, and in
        other processes within the session cache's few seconds."""
        self.accounts.reauthenticate(user_id, password)
        self.erase_account(user_id)

    def erase_account(self, user_id: str) -> None:
        """`delete_account` without the password: for an administrator removing an account (the
        caller has checked the role). Everything else is the same."""
        now = self.clock.now()
        gone = _Erasure()
        after_commit: list[Callable[[], None] | None] = []
        with self.db.write() as conn:
            for hook in self.before_delete:  # other domains' part (billing ends a manager's plan)
                after_commit.append(hook(conn, user_id))
            self._erase(conn, user_id, now, gone)
            self.accounts.delete_user(conn, user_id)  # the cascade: every row that refers to them
            _drop_unused_images(conn, gone)
        log.info("privacy.account_deleted", user_id=user_id, tracks=len(gone.tracks), blobs=len(gone.blobs))
        self.accounts.forget_sessions()
        for done in after_commit:
            if done is not None:
                done()
        for track_id in gone.tracks:
            self.catalog.invalidate_track(track_id)
        self.catalog.artists_changed(sorted(gone.artists))
        self._delete_blobs(gone.blobs)

    def _erase(self, conn: sa.Connection, user_id: str, now: dt.datetime, gone: _Erasure) -> None:
        """What the cascade does not do (see the module docstring), noted in `gone`."""
        gone.blobs += _scalars(
            conn, sa.select(data_exports.c.blob_key).where(data_exports.c.user_id == user_id)
        )
        gone.blobs += _scalars(conn, sa.select(uploads.c.blob_key).where(uploads.c.user_id == user_id))

        # artists.followers counts follows exactly (as LibraryService keeps it): take theirs off.
        followed = _scalars(
            conn, sa.select(artist_follows.c.artist_id).where(artist_follows.c.user_id == user_id)
        )
        for chunk in _chunks(followed):
            conn.execute(
                sa.update(artists)
                .where(artists.c.id.in_(chunk))
                .values(followers=sa.case((artists.c.followers > 0, artists.c.followers - 1), else_=0))
            )
        gone.artists.update(followed)

        # Their playlists leave search (the rows go with the cascade), and perhaps their covers.
        owned = conn.execute(
            sa.select(playlists.c.id, playlists.c.image_id).where(playlists.c.owner_id == user_id)
        ).all()
        changes.record(conn, "playlist", [p.id for p in owned], now)
        avatar = conn.execute(sa.select(users.c.avatar_image_id).where(users.c.id == user_id)).scalar()
        gone.images.update(i for i in [avatar, *(p.image_id for p in owned)] if i)

        # Their tracks, and what only they made: renditions, emptied albums, artists left bare.
        gone.tracks = _scalars(conn, sa.select(tracks.c.id).where(tracks.c.owner_user_id == user_id))
        if not gone.tracks:
            return
        self.catalog.tracks_changed(conn, gone.tracks)  # before the delete: it reads albums and artists
        album_ids: set[str] = set()
        touched: set[str] = set()  # artists of their tracks and of the albums they empty
        for chunk in _chunks(gone.tracks):
            album_ids.update(_scalars(conn, sa.select(tracks.c.album_id).where(tracks.c.id.in_(chunk))))
            touched.update(
                _scalars(
                    conn, sa.select(track_artists.c.artist_id).where(track_artists.c.track_id.in_(chunk))
                )
            )
            for row in conn.execute(
                sa.select(
                    renditions.c.id, renditions.c.track_id, renditions.c.blob_key, renditions.c.hls_blob_key
                ).where(renditions.c.track_id.in_(chunk))
            ):
                gone.blobs += [k for k in (row.blob_key, row.hls_blob_key) if k]
                gone.blobs.append(offline_key(row.track_id, row.id))  # offline downloads' copies
            conn.execute(sa.delete(tracks).where(tracks.c.id.in_(chunk)))
        empty = [a for a in sorted(album_ids) if not _exists(conn, tracks.c.album_id == a)]
        for chunk in _chunks(empty):
            for album in conn.execute(
                sa.select(albums.c.artist_id, albums.c.image_id).where(albums.c.id.in_(chunk))
            ):
                touched.add(album.artist_id)
                if album.image_id:
                    gone.images.add(album.image_id)
            conn.execute(sa.delete(albums).where(albums.c.id.in_(chunk)))
        bare = [
            a
            for a in sorted(touched)
            if not _exists(conn, track_artists.c.artist_id == a)
            and not _exists(conn, albums.c.artist_id == a)
        ]
        for chunk in _chunks(bare):
            gone.images.update(
                i for i in _scalars(conn, sa.select(artists.c.image_id).where(artists.c.id.in_(chunk))) if i
            )
            conn.execute(sa.delete(artists).where(artists.c.id.in_(chunk)))
        gone.artists.update(touched)
        changes.record(conn, "album", empty, now)
        changes.record(conn, "artist", bare, now)

    def _delete_blobs(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self.blobs.delete(key)
            except Exception:  # an unreachable file, never a broken row; the rest still go
                log.exception("privacy.blob_delete_failed", key=key)


@dataclass
class _Erasure:
    """What one account deletion removed, for the work after its commit."""

    blobs: list[str] = field(default_factory=list)
    tracks: list[str] = field(default_factory=list)
    artists: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)  # candidates: deleted when nothing uses them


def _drop_unused_images(conn: sa.Connection, gone: _Erasure) -> None:
    """Deletes the candidate images nothing refers to any more, noting their files."""
    for image_id in sorted(gone.images):
        used = any(
            _exists(conn, col == image_id)
            for col in (albums.c.image_id, artists.c.image_id, playlists.c.image_id, users.c.avatar_image_id)
        )
        if used:
            continue
        gone.blobs += _scalars(
            conn, sa.select(image_variants.c.blob_key).where(image_variants.c.image_id == image_id)
        )
        conn.execute(sa.delete(images).where(images.c.id == image_id))  # its variants cascade


def _exists(conn: sa.Connection, cond: sa.ColumnElement[bool]) -> bool:
    return conn.execute(sa.select(sa.literal(1)).where(cond).limit(1)).first() is not None


def _scalars(conn: sa.Connection, stmt: sa.Select[Any]) -> list[Any]:
    return list(conn.execute(stmt).scalars())


def _chunks(ids: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
