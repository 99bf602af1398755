"""Registered devices, offline downloads and their licences (docs/offline.md).

A listener registers up to `max_devices` devices; each gets a key once, at registration, derived
from the server secret and its id (licences.py). A device on a plan with the `offline` feature
downloads up to `max_downloads_per_device` tracks: for each it gets a licence (the track's
content key wrapped under the device key, valid `licence_days`) and a signed URL of the track's
encrypted file. Licences are renewed online; they lapse when not renewed, and are revoked when
the listener removes a download or the device, or their plan loses `offline`.

Issuing is bulk work (10,000 tracks in one call): the tracks are checked with a handful of
queries, the rows written with one upsert, and a licence costs ~10 us of CPU. The encrypted file
is made once per rendition, on its first download, and shared by every device.
"""

from __future__ import annotations

import datetime as dt
import hmac
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from tonearm import media
from tonearm.domains.devices.licences import (
    FILE_CONTENT_TYPE,
    LicenceIssuer,
    b64e,
    encrypt_file,
    encrypted_size,
    offline_key,
)
from tonearm.domains.devices.tables import devices, downloads
from tonearm.domains.entitlements.service import EntitlementService
from tonearm.domains.streaming.service import (
    Rendition,
    StreamingService,
    TrackFile,
    parse_rendition_name,
)
from tonearm.domains.streaming.signing import UrlSigner
from tonearm.kernel.clock import Clock, iso
from tonearm.kernel.db import Database, UTCDateTime
from tonearm.kernel.errors import BadRequest, Forbidden, NotFound
from tonearm.kernel.ids import is_valid_id, new_id, uri
from tonearm.kernel.paging import check_window, page
from tonearm.ports.blobs import BlobNotFound, BlobStore, local_copy

log = structlog.get_logger("tonearm.devices")

DEFAULT_RENDITION = "aac_320"
MAX_IDS_PER_CALL = 10_000
STATES = ("active", "expired", "revoked")
PREMIUM_REQUIRED = "Offline downloads are a Premium feature"
# Why a download was revoked (downloads.revoke_reason), for the device to act on.
REMOVED = "removed"  # the listener removed it
DEVICE_REMOVED = "device_removed"
PREMIUM_ENDED = "premium_ended"
NOT_DOWNLOADABLE = "not_downloadable"  # the track was made private, deleted or became unavailable
QUALITY_NOT_IN_PLAN = "quality_not_in_plan"


@dataclass(frozen=True, slots=True)
class OfflineFile:
    """An encrypted file a signed URL resolved to: what the byte-serving response needs."""

    blob_key: str
    size: int
    etag: str
    last_modified: dt.datetime
    url_expires_at: int
    content_type: str = FILE_CONTENT_TYPE


def _unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


class DeviceService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        entitlements: EntitlementService,
        streaming: StreamingService,
        blobs: BlobStore,
        secret_key: str,
        public_url: str,
        *,
        tmp_dir: Path,
        max_devices: int = 5,
        max_downloads_per_device: int = 10_000,
        licence_days: int = 30,
    ) -> None:
        self.db = db
        self.clock = clock
        self.entitlements = entitlements
        self.streaming = streaming
        self.blobs = blobs
        self.issuer = LicenceIssuer(secret_key)
        # Its own URL key: a stream URL can never be replayed as a download URL, nor back.
        self.signer = UrlSigner("offline|" + secret_key)
        self.base = public_url.rstrip("/")
        self.tmp_dir = tmp_dir
        self.max_devices = max_devices
        self.max_downloads = max_downloads_per_device
        self.licence_days = licence_days
        # Making an encrypted file: one at a time per file in this process (others wait, then
        # find it); across processes the bytes are the same, so a second maker is harmless.
        self._making = [threading.Lock() for _ in range(64)]

    # Devices ----------------------------------------------------------------------------------
    def list_devices(self, user_id: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(devices)
                .where(devices.c.user_id == user_id, devices.c.revoked_at.is_(None))
                .order_by(devices.c.created_at, devices.c.id)
            ).all()
            counts = self._active_counts(conn, [r.id for r in rows])
        return [self._device_json(r, counts.get(r.id, 0)) for r in rows]

    def register(self, user_id: str, name: str, kind: str) -> dict[str, Any]:
        """A new device, with its key (returned this once; the server can derive it again, the
        listener cannot ask for it again). Refused beyond `max_devices` registered devices."""
        name = self._name(name)
        now = self.clock.now()
        device_id = new_id()
        with self.db.write() as conn:
            self._lock(conn, "devices:" + user_id)  # two registrations at once count each other
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(devices)
                .where(devices.c.user_id == user_id, devices.c.revoked_at.is_(None))
            ).scalar_one()
            if n < self.max_devices:
                conn.execute(
                    sa.insert(devices).values(
                        id=device_id, user_id=user_id, name=name, kind=kind, created_at=now, last_seen_at=now
                    )
                )
        if n >= self.max_devices:
            self.entitlements.decide(
                user_id,
                "device",
                False,
                "device_limit",
                f"asked to register {kind} {name!r} with {n} devices",
            )
            raise Forbidden(
                f"You have {n} devices registered, the most allowed; remove one in your account before "
                "adding another"
            )
        self.entitlements.decide(user_id, "device", True, "registered", f"{kind} {device_id}", keep=False)
        with self.db.read() as conn:
            row = conn.execute(sa.select(devices).where(devices.c.id == device_id)).one()
        return {**self._device_json(row, 0), "device_key": b64e(self.issuer.device_key(device_id))}

    def rename(self, user_id: str, device_id: str, name: str) -> dict[str, Any]:
        name = self._name(name)
        with self.db.write() as conn:
            row = self._touch(conn, user_id, device_id, name=name)
            count = self._active_counts(conn, [device_id]).get(device_id, 0)
        return self._device_json(row, count)

    def remove(self, user_id: str, device_id: str) -> None:
        """Unregisters the device (its slot is free at once) and revokes its downloads."""
        now = self.clock.now()
        with self.db.write() as conn:
            self._touch(conn, user_id, device_id)
            conn.execute(sa.update(devices).where(devices.c.id == device_id).values(revoked_at=now))
            conn.execute(
                sa.update(downloads)
                .where(downloads.c.device_id == device_id, downloads.c.revoked_at.is_(None))
                .values(revoked_at=now, revoke_reason=DEVICE_REMOVED)
            )

    # Downloads --------------------------------------------------------------------------------
    def issue(
        self, user_id: str, device_id: str, track_ids: Sequence[str], rendition: str | None = None
    ) -> dict[str, Any]:
        """Licences and signed file URLs for these tracks on this device, all or none.

        Tracks already downloaded are renewed (they take no new slot); duplicates count once."""
        ent = self.entitlements.for_user(user_id)
        if not ent.offline:
            self._require_device(user_id, device_id)  # someone else's device: 404 before 403
            self.entitlements.decide(
                user_id,
                "download",
                False,
                "premium_required",
                f"asked for {len(track_ids)} downloads on device {device_id} on the {ent.plan_id} plan",
            )
            raise Forbidden(PREMIUM_REQUIRED)
        name = rendition or DEFAULT_RENDITION
        spec = self._allowed_rendition(name, ent.quality.max_kbps, ent.quality.lossless)
        ids = list(dict.fromkeys(track_ids))
        if not ids:
            raise BadRequest("ids: give at least one track id")
        if len(ids) > MAX_IDS_PER_CALL:
            raise BadRequest(f"ids: at most {MAX_IDS_PER_CALL:,} tracks per request, not {len(ids):,}")
        self._require_device(user_id, device_id)
        files, problems = self._check(user_id, ids, name, spec)
        if problems:
            shown = "; ".join(
                f"{t[:40]!r}: {why}" if not is_valid_id(t) else f"{t}: {why}" for t, why in problems[:20]
            )
            more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
            self.entitlements.decide(
                user_id, "download", False, "not_downloadable", f"{len(problems)} of {len(ids)}: {shown}"
            )
            raise BadRequest(
                f"{len(problems)} of the {len(ids)} tracks cannot be downloaded, so none were: {shown}{more}"
            )
        now = self.clock.now()
        expires = (now + dt.timedelta(days=self.licence_days)).replace(microsecond=0)
        refused: tuple[int, int, int] | None = None
        with self.db.write() as conn:
            self._lock(conn, "downloads:" + device_id)  # the count and the insert, atomically
            self._touch(conn, user_id, device_id)
            active = set(
                conn.execute(
                    sa.select(downloads.c.track_id).where(
                        downloads.c.device_id == device_id,
                        downloads.c.revoked_at.is_(None),
                        downloads.c.expires_at > now,
                    )
                ).scalars()
            )
            new = sum(1 for t in ids if t not in active)
            room = max(0, self.max_downloads - len(active))
            if new > room:
                refused = (len(active), room, new)
            else:
                self._upsert(conn, device_id, ids, name, now, expires)
        if refused is not None:
            have, room, new = refused
            detail = (
                f"This device has {have:,} of the {self.max_downloads:,} downloads it may keep, so "
                f"{room:,} more fit; this request adds {new:,} new tracks. Remove downloads from this "
                "device (or ask for fewer tracks) first"
            )
            self.entitlements.decide(user_id, "download", False, "download_limit", detail)
            raise Forbidden(detail)
        self.entitlements.decide(
            user_id, "download", True, "issued", f"{len(ids)} {name} on {device_id}", keep=False
        )
        items = self._items(user_id, device_id, [(t, name) for t in ids], files, now, expires)
        return {
            "device_id": device_id,
            "rendition": name,
            "expires_at": iso(expires),
            "new": new,
            "renewed": len(ids) - new,
            "items": items,
        }

    def renew(self, user_id: str, device_id: str) -> dict[str, Any]:
        """Online renewal: every download still allowed gets `licence_days` more and a fresh
        licence; those no longer allowed are revoked (listed with the reason)."""
        ent = self.entitlements.for_user(user_id)
        self._require_device(user_id, device_id)
        if not ent.offline:
            n = self._revoke_all(user_id, PREMIUM_ENDED)
            self.entitlements.decide(
                user_id,
                "download",
                False,
                PREMIUM_ENDED,
                f"renewal on device {device_id} on the {ent.plan_id} plan; {n} downloads revoked",
            )
            raise Forbidden(
                f"{PREMIUM_REQUIRED}: your plan no longer includes them, so this device's downloads "
                "were revoked"
            )
        with self.db.read() as conn:
            held = conn.execute(
                sa.select(downloads.c.track_id, downloads.c.rendition).where(
                    downloads.c.device_id == device_id, downloads.c.revoked_at.is_(None)
                )
            ).all()
        by_name: dict[str, list[str]] = {}
        for r in held:
            by_name.setdefault(r.rendition, []).append(r.track_id)
        revoke: dict[str, str] = {}
        files: dict[str, TrackFile] = {}
        for name, tids in by_name.items():
            try:
                spec = self._allowed_rendition(name, ent.quality.max_kbps, ent.quality.lossless)
            except (BadRequest, Forbidden):
                revoke.update(dict.fromkeys(tids, QUALITY_NOT_IN_PLAN))
                continue
            found, problems = self._check(user_id, tids, name, spec)
            files.update(found)
            revoke.update(dict.fromkeys((t for t, _ in problems), NOT_DOWNLOADABLE))
        now = self.clock.now()
        expires = (now + dt.timedelta(days=self.licence_days)).replace(microsecond=0)
        with self.db.write() as conn:
            self._lock(conn, "downloads:" + device_id)
            self._touch(conn, user_id, device_id)
            for reason in set(revoke.values()):
                self._revoke(conn, device_id, [t for t, why in revoke.items() if why == reason], now, reason)
            renewed = conn.execute(
                sa.update(downloads)
                .where(downloads.c.device_id == device_id, downloads.c.revoked_at.is_(None))
                .values(expires_at=expires)
                .returning(downloads.c.track_id, downloads.c.rendition)
            ).all()
            conn.execute(sa.update(devices).where(devices.c.id == device_id).values(licences_renewed_at=now))
        self.entitlements.decide(
            user_id, "download", True, "renewed", f"{len(renewed)} on {device_id}", keep=False
        )
        missing = {r.track_id for r in renewed if r.track_id not in files}  # added meanwhile
        for name in {r.rendition for r in renewed if r.track_id in missing}:
            files.update(self.streaming.track_files(sorted(missing), name))
        pairs = sorted((r.track_id, r.rendition) for r in renewed)
        return {
            "device_id": device_id,
            "expires_at": iso(expires),
            "items": self._items(user_id, device_id, pairs, files, now, expires),
            "revoked": [{"track_id": t, "reason": why} for t, why in sorted(revoke.items())],
        }

    def downloads(
        self,
        user_id: str,
        device_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
        state: str | None = None,
        href: str = "",
    ) -> dict[str, Any]:
        """The device's downloads (a paging object), oldest first, each with its state: what an
        online device reads to delete what it must (expired: renew; revoked: delete)."""
        check_window(limit, offset, max_limit=1000)
        if state is not None and state not in STATES:
            raise BadRequest(f"state: one of {', '.join(STATES)}")
        self._require_device(user_id, device_id)
        if not self.entitlements.for_user(user_id).offline:
            self.product_changed(user_id, "free")  # in case billing's notice has not come
        now = self.clock.now()
        where = [downloads.c.device_id == device_id]
        if state == "active":
            where += [downloads.c.revoked_at.is_(None), downloads.c.expires_at > now]
        elif state == "expired":
            where += [downloads.c.revoked_at.is_(None), sa.not_(downloads.c.expires_at > now)]
        elif state == "revoked":
            where.append(downloads.c.revoked_at.is_not(None))
        with self.db.write() as conn:
            self._touch(conn, user_id, device_id)
            total = conn.execute(sa.select(sa.func.count()).select_from(downloads).where(*where)).scalar_one()
            rows = conn.execute(
                sa.select(downloads)
                .where(*where)
                .order_by(downloads.c.created_at, downloads.c.track_id)
                .limit(limit)
                .offset(offset)
            ).all()
        items = [
            {
                "track_id": r.track_id,
                "uri": uri("track", r.track_id),
                "rendition": r.rendition,
                "state": self._state(r, now),
                "created_at": iso(r.created_at),
                "expires_at": iso(r.expires_at),
                "revoked_at": iso(r.revoked_at),
                "revoke_reason": r.revoke_reason,
            }
            for r in rows
        ]
        return page(href, items, limit=limit, offset=offset, total=total, state=state)

    def remove_downloads(self, user_id: str, device_id: str, track_ids: Sequence[str]) -> int:
        """Revokes these downloads (reason `removed`); unknown ids are ignored. Returns how many."""
        ids = list(dict.fromkeys(track_ids))
        if len(ids) > MAX_IDS_PER_CALL:
            raise BadRequest(f"ids: at most {MAX_IDS_PER_CALL:,} tracks per request")
        with self.db.write() as conn:
            self._touch(conn, user_id, device_id)
            return self._revoke(conn, device_id, ids, self.clock.now(), REMOVED)

    def product_changed(self, user_id: str, product: str) -> None:
        """Billing's notice that a listener's product changed. When their plan no longer carries
        `offline`, every download on every device of theirs is revoked (`premium_ended`).

        Call it after the change is committed (and entitlements invalidated)."""
        if product != "free" and self.entitlements.for_user(user_id).offline:
            return
        n = self._revoke_all(user_id, PREMIUM_ENDED)
        if n:
            self.entitlements.decide(
                user_id, "download", False, PREMIUM_ENDED, f"{n} offline downloads revoked: {product} plan"
            )

    # The encrypted file -----------------------------------------------------------------------
    def url(self, track_id: str, name: str, user_id: str, device_id: str, exp: int) -> str:
        sig = self.signer.sign(track_id, "offline:" + name, user_id, exp, device_id)
        return f"{self.base}/offline/{track_id}/{name}.tenc?u={user_id}&d={device_id}&exp={exp}&sig={sig}"

    def offline_file(
        self, track_id: str, file: str, user_id: str, device_id: str, exp: str, sig: str
    ) -> OfflineFile:
        """The encrypted file a signed download URL names, made on its first download.

        The signature proves we issued the URL; the download's row says whether it still holds
        (not removed, revoked or expired); the plan must still carry `offline`."""
        name, dot, ext = file.rpartition(".")
        if not dot or ext != "tenc":
            raise NotFound("no such offline file: download URLs end in <rendition>.tenc")
        expires = self._verify(track_id, name, user_id, device_id, exp, sig)
        spec = parse_rendition_name(name)
        now = self.clock.now()
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    downloads.c.rendition,
                    downloads.c.expires_at,
                    downloads.c.revoked_at,
                    downloads.c.revoke_reason,
                    devices.c.user_id,
                    devices.c.revoked_at.label("device_revoked_at"),
                )
                .select_from(downloads.join(devices, devices.c.id == downloads.c.device_id))
                .where(downloads.c.device_id == device_id, downloads.c.track_id == track_id)
            ).first()
        if row is None or row.user_id != user_id or row.device_revoked_at is not None:
            raise Forbidden("this download is not on the device any more; delete it")
        if row.revoked_at is not None:
            raise Forbidden(f"this download was revoked ({row.revoke_reason}); delete it from the device")
        if row.rendition != name:
            raise Forbidden(f"this track is now downloaded as {row.rendition}; use that licence's URL")
        if row.expires_at is None or row.expires_at <= now:
            self.entitlements.decide(user_id, "download", False, "licence_expired", track_id, keep=False)
            raise Forbidden(
                f"this download's licence expired at {iso(row.expires_at)}; "
                "renew the device's licences online"
            )
        if not self.entitlements.for_user(user_id).offline:
            self.product_changed(user_id, "free")
            raise Forbidden(PREMIUM_REQUIRED)
        info = self.streaming.info(track_id)
        r = info.renditions.get(name)
        if r is None:
            if spec is None:
                raise NotFound(f"track {track_id} has no original file (it was not lossless)")
            r = self.streaming.ensure_rendition(info, spec)
        key = offline_key(track_id, r.id)  # a re-made rendition gets a new id: a new file
        try:
            size = self.blobs.size(key)
        except BlobNotFound:
            size = self._make(track_id, name, r, key)
        return OfflineFile(key, size, f'"{r.id}.tenc"', r.created_at, expires)

    def _verify(self, track_id: str, name: str, user_id: str, device_id: str, exp: str, sig: str) -> int:
        if not (user_id and device_id and exp and sig):
            raise Forbidden("this download URL is not signed; ask the device's downloads endpoint for one")
        if not exp.isdigit() or len(exp) > 12:
            raise Forbidden("invalid download URL expiry")
        expires = int(exp)
        if expires <= _unix(self.clock.now()):
            raise Forbidden("this download URL has expired; renew the device's licences for new URLs")
        expected = self.signer.sign(track_id, "offline:" + name, user_id, expires, device_id)
        if not hmac.compare_digest(expected, sig):
            raise Forbidden("invalid download signature: the URL was altered or belongs to another device")
        return expires

    def _make(self, track_id: str, name: str, r: Rendition, key: str) -> int:
        with self._making[hash(key) % len(self._making)]:
            try:
                return self.blobs.size(key)  # made while we waited
            except BlobNotFound:
                pass
            started = time.perf_counter()
            content_key = self.issuer.content_key(track_id, name)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            try:
                with (
                    local_copy(self.blobs, r.blob_key, self.tmp_dir) as src,
                    tempfile.TemporaryDirectory(dir=self.tmp_dir) as tmp,
                ):
                    out = Path(tmp) / "offline.tenc"
                    with src.open("rb") as fin, out.open("wb") as fout:
                        written = encrypt_file(
                            fin,
                            fout,
                            content_key,
                            src.stat().st_size,
                            nonce_prefix=self.issuer.file_nonce(content_key, r.id),
                        )
                    self.blobs.put_file(key, out)  # atomic: readers see the whole file or none
            except (BlobNotFound, FileNotFoundError) as exc:
                log.error("devices.offline_source_missing", track=track_id, rendition=name, blob=r.blob_key)
                raise NotFound(f"the {name} audio of track {track_id} is missing on the server") from exc
            log.info(
                "devices.offline_file",
                track=track_id,
                rendition=name,
                bytes=written,
                s=round(time.perf_counter() - started, 3),
            )
            return written

    # Helpers ----------------------------------------------------------------------------------
    def _items(
        self,
        user_id: str,
        device_id: str,
        pairs: Sequence[tuple[str, str]],
        files: dict[str, TrackFile],
        now: dt.datetime,
        expires: dt.datetime,
    ) -> list[dict[str, Any]]:
        exp = _unix(expires)
        licences = self.issuer.issue_many(device_id, pairs, _unix(now), exp)
        specs: dict[str, media.RenditionSpec | None] = {}
        items = []
        for (track_id, name), licence in zip(pairs, licences, strict=True):
            f = files.get(track_id)
            if name not in specs:
                specs[name] = parse_rendition_name(name)
            spec = specs[name]
            content_type = f.content_type if f is not None and f.content_type else None
            size = f.size_bytes if f is not None and f.rendition_id is not None else None
            items.append(
                {
                    "track_id": track_id,
                    "rendition": name,
                    "content_type": content_type or (spec.content_type if spec else None),
                    # The encrypted file's size; null until the rendition has been made.
                    "size_bytes": encrypted_size(size) if size is not None else None,
                    "url": self.url(track_id, name, user_id, device_id, exp),
                    "licence": licence,
                }
            )
        return items

    def _check(
        self, user_id: str, ids: list[str], name: str, spec: media.RenditionSpec | None
    ) -> tuple[dict[str, TrackFile], list[tuple[str, str]]]:
        """The tracks' files, and (track id, reason) for each one that may not be downloaded."""
        valid = [t for t in ids if is_valid_id(t)]
        files = self.streaming.track_files(valid, name)
        ads = self.entitlements.ad_tracks([t for t, f in files.items() if f.status == "ready"])
        problems: list[tuple[str, str]] = []
        for t in ids:
            f = files.get(t)
            if not is_valid_id(t):
                problems.append((t, "not a track id (ids are 22 base-62 characters)"))
            elif f is None or not f.visible_to(user_id) or (f.status != "ready" and f.owner != user_id):
                problems.append((t, "not found"))  # someone else's private upload says the same
            elif f.status == "processing":
                problems.append((t, "not ready yet: the upload is still being processed"))
            elif f.status != "ready":
                problems.append((t, "its upload failed to process"))
            elif t in ads:
                problems.append((t, "an audio ad; ads cannot be downloaded"))
            elif f.rendition_id is None and spec is None:
                problems.append((t, f"has no {name} file (the upload was not lossless)"))
        return files, problems

    @staticmethod
    def _allowed_rendition(name: str, max_kbps: int, lossless: bool) -> media.RenditionSpec | None:
        spec = parse_rendition_name(name)  # BadRequest for names outside the grammar
        kbps = 0 if spec is None else spec.bitrate_kbps
        if (kbps == 0 and not lossless) or kbps > max_kbps:
            cap = "lossless" if kbps == 0 else f"{kbps} kb/s"
            raise Forbidden(f"rendition: {cap} is above what your plan allows (up to {max_kbps} kb/s)")
        return spec

    def _upsert(
        self,
        conn: sa.Connection,
        device_id: str,
        ids: list[str],
        name: str,
        now: dt.datetime,
        expires: dt.datetime,
    ) -> None:
        """New downloads inserted, existing ones renewed (and un-revoked: the listener asked for
        them again), in one statement: on PostgreSQL an INSERT ... SELECT over the ids as one
        array parameter, on SQLite an executemany of one cached statement (in process, no round
        trips). A multi-row VALUES list would cost SQLAlchemy more to compile than either."""
        renew: dict[str, Any] = {"revoked_at": None, "revoke_reason": None}
        if conn.dialect.name == "postgresql":
            rows = sa.select(
                sa.literal(device_id, sa.String()),
                sa.func.unnest(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.String()))),
                sa.literal(name, sa.String()),
                sa.literal(now, UTCDateTime()),
                sa.literal(expires, UTCDateTime()),
            )
            ins = postgresql.insert(downloads).from_select(
                ["device_id", "track_id", "rendition", "created_at", "expires_at"], rows
            )
            renew.update(rendition=ins.excluded.rendition, expires_at=ins.excluded.expires_at)
            conn.execute(ins.on_conflict_do_update(index_elements=["device_id", "track_id"], set_=renew))
            return
        lite = sqlite.insert(downloads)
        renew.update(rendition=lite.excluded.rendition, expires_at=lite.excluded.expires_at)
        conn.execute(
            lite.on_conflict_do_update(index_elements=["device_id", "track_id"], set_=renew),
            [
                {
                    "device_id": device_id,
                    "track_id": t,
                    "rendition": name,
                    "created_at": now,
                    "expires_at": expires,
                    "revoked_at": None,
                    "revoke_reason": None,
                }
                for t in ids
            ],
        )

    def _revoke(
        self, conn: sa.Connection, device_id: str, ids: list[str], now: dt.datetime, reason: str
    ) -> int:
        n = 0
        for i in range(0, len(ids), 1000):
            n += conn.execute(
                sa.update(downloads)
                .where(
                    downloads.c.device_id == device_id,
                    downloads.c.track_id.in_(ids[i : i + 1000]),
                    downloads.c.revoked_at.is_(None),
                )
                .values(revoked_at=now, revoke_reason=reason)
            ).rowcount
        return n

    def _revoke_all(self, user_id: str, reason: str) -> int:
        """Revokes every download still held on every device of the listener."""
        with self.db.write() as conn:
            result = conn.execute(
                sa.update(downloads)
                .where(
                    downloads.c.device_id.in_(sa.select(devices.c.id).where(devices.c.user_id == user_id)),
                    downloads.c.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock.now(), revoke_reason=reason)
            )
            return int(result.rowcount)

    def _touch(self, conn: sa.Connection, user_id: str, device_id: str, **values: Any) -> sa.Row[Any]:
        """The device row, seen now (last_seen_at); 404 unless it is this listener's and registered."""
        if not is_valid_id(device_id):
            raise NotFound(f"device {device_id[:40]!r} not found")
        row = conn.execute(
            sa.update(devices)
            .where(devices.c.id == device_id, devices.c.user_id == user_id, devices.c.revoked_at.is_(None))
            .values(last_seen_at=self.clock.now(), **values)
            .returning(*devices.c)
        ).first()
        if row is None:
            raise NotFound(f"device {device_id} not found")  # another listener's device says the same
        return row

    def _require_device(self, user_id: str, device_id: str) -> None:
        if not is_valid_id(device_id):
            raise NotFound(f"device {device_id[:40]!r} not found")
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(devices.c.id).where(
                    devices.c.id == device_id, devices.c.user_id == user_id, devices.c.revoked_at.is_(None)
                )
            ).first()
        if found is None:
            raise NotFound(f"device {device_id} not found")

    def _active_counts(self, conn: sa.Connection, device_ids: list[str]) -> dict[str, int]:
        if not device_ids:
            return {}
        rows = conn.execute(
            sa.select(downloads.c.device_id, sa.func.count())
            .where(
                downloads.c.device_id.in_(device_ids),
                downloads.c.revoked_at.is_(None),
                downloads.c.expires_at > self.clock.now(),
            )
            .group_by(downloads.c.device_id)
        ).all()
        return {r[0]: int(r[1]) for r in rows}

    @staticmethod
    def _lock(conn: sa.Connection, key: str) -> None:
        """Serializes writers of one key until the transaction ends. SQLite writers already are
        (BEGIN IMMEDIATE); PostgreSQL takes a transaction-scoped advisory lock."""
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})

    @staticmethod
    def _name(name: str) -> str:
        name = " ".join(name.split())
        if not name:
            raise BadRequest("name: must not be blank")
        return name[:100]

    def _state(self, row: sa.Row[Any], now: dt.datetime) -> str:
        if row.revoked_at is not None:
            return "revoked"
        return "active" if row.expires_at is not None and row.expires_at > now else "expired"

    @staticmethod
    def _device_json(row: sa.Row[Any], downloads_n: int) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "kind": row.kind,
            "created_at": iso(row.created_at),
            "last_seen_at": iso(row.last_seen_at),
            "licences_renewed_at": iso(row.licences_renewed_at),
            "downloads": downloads_n,
        }
