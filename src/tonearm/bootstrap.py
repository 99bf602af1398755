"""The composition root: Settings -> adapters (chosen by URL scheme) -> services.

Nothing else in Tonearm constructs an adapter or a service; everything receives what it needs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from tonearm.adapters.payments import sandbox as sandbox_gateway
from tonearm.config import Settings
from tonearm.domains.accounts.credentials import CredentialService
from tonearm.domains.accounts.service import AccountService
from tonearm.domains.billing import tasks as billing_tasks
from tonearm.domains.billing.service import SWEEP_JOB, BillingService
from tonearm.domains.catalog.service import CatalogService
from tonearm.domains.devices.service import DeviceService
from tonearm.domains.entitlements.service import EntitlementService
from tonearm.domains.history.service import HistoryService
from tonearm.domains.ingest import tasks as ingest_tasks
from tonearm.domains.ingest.importer import Importer
from tonearm.domains.ingest.scans import LibraryScans
from tonearm.domains.ingest.service import IngestService
from tonearm.domains.library.playlists import PlaylistService
from tonearm.domains.library.service import LibraryService
from tonearm.domains.player.service import PlayerService
from tonearm.domains.privacy import tasks as privacy_tasks
from tonearm.domains.privacy.service import PrivacyService
from tonearm.domains.recs import tasks as recs_tasks
from tonearm.domains.recs.service import PLAYLISTS_JOB, TRAIN_JOB, RecsService
from tonearm.domains.search.indexer import Indexer
from tonearm.domains.search.service import SearchService
from tonearm.domains.sharing.service import SharingService
from tonearm.domains.streaming.service import StreamingService
from tonearm.kernel.clock import Clock, SystemClock
from tonearm.kernel.db import Database, make_engine
from tonearm.kernel.ratelimit import RateLimiter
from tonearm.ports.blobs import BlobStore
from tonearm.ports.jobs import JobQueue
from tonearm.ports.payments import PaymentGateway
from tonearm.ports.search import SearchIndex
from tonearm.workers.runner import TaskRegistry, Worker
from tonearm.workers.scheduler import Periodic, Scheduler


def blob_store_for(url: str) -> BlobStore:
    scheme = urlparse(url).scheme
    if scheme == "file":
        from tonearm.adapters.blobs.local import LocalBlobStore

        return LocalBlobStore(Path(urlparse(url).path))
    if scheme == "memory":
        from tonearm.adapters.blobs.memory import MemoryBlobStore

        return MemoryBlobStore()
    if scheme == "s3":
        from tonearm.adapters.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(url)
    raise ValueError(f"blob_url: unsupported scheme {scheme!r} (use file://, s3:// or memory://)")


def job_queue_for(url: str, db: Database, settings: Settings, clock: Clock) -> JobQueue:
    scheme = urlparse(url).scheme
    if scheme == "db":
        from tonearm.adapters.jobs.sql import SqlJobQueue

        return SqlJobQueue(
            db, lease_s=settings.job_lease_s, max_attempts=settings.job_max_attempts, clock=clock
        )
    if scheme == "memory":
        from tonearm.adapters.jobs.memory import MemoryJobQueue

        return MemoryJobQueue(lease_s=settings.job_lease_s, max_attempts=settings.job_max_attempts)
    raise ValueError(f"queue_url: unsupported scheme {scheme!r} (use db:// or memory://)")


def payment_gateway_for(
    url: str, db: Database, jobs: JobQueue, clock: Clock, settings: Settings
) -> PaymentGateway:
    scheme = urlparse(url).scheme
    if scheme == "sandbox":
        from tonearm.adapters.payments.sandbox import SandboxGateway

        return SandboxGateway(
            db,
            jobs,
            clock,
            webhook_secret="whsec-" + settings.resolved_secret_key(),
            tolerance_s=settings.webhook_tolerance_s,
        )
    raise ValueError(f"payment_gateway_url: unsupported scheme {scheme!r} (use sandbox://)")


def search_index_for(url: str, db: Database) -> SearchIndex:
    parsed = urlparse(url)
    if parsed.scheme == "tantivy":
        from tonearm.adapters.search.tantivy import TantivySearchIndex

        return TantivySearchIndex(Path(parsed.path))
    if parsed.scheme == "memory":
        from tonearm.adapters.search.memory import MemorySearchIndex

        return MemorySearchIndex()
    if parsed.scheme in ("postgresql", "postgres", "db"):
        from tonearm.adapters.search.postgres import PostgresSearchIndex

        if parsed.scheme != "db":
            return PostgresSearchIndex(url)
        if db.engine.dialect.name != "postgresql":
            raise ValueError(
                "search_url: db:// puts the search index in the app's own database, which must be "
                f"PostgreSQL (database_url is {db.engine.dialect.name}); use tantivy:// instead"
            )
        return PostgresSearchIndex(db.engine.url.render_as_string(hide_password=False))
    raise ValueError(
        f"search_url: unsupported scheme {parsed.scheme!r} "
        "(use tantivy://, postgresql://, db:// or memory://)"
    )


def task_registry() -> TaskRegistry:
    registry = TaskRegistry()
    ingest_tasks.register(registry)
    privacy_tasks.register(registry)
    billing_tasks.register(registry)
    recs_tasks.register(registry)
    sandbox_gateway.register(registry)  # the sandbox's webhook deliveries
    return registry


def periodic_jobs(settings: Settings) -> list[Periodic]:
    """Work the scheduler queues on a timer (see workers/scheduler.py)."""
    return [
        Periodic(SWEEP_JOB, settings.billing_sweep_s),  # renewals, retries, lapses
        Periodic(TRAIN_JOB, settings.recs_train_s),  # a no-op when no signal moved
        Periodic(PLAYLISTS_JOB, settings.recs_playlists_s),  # Discover Weekly, Daily Mixes
    ]


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    blobs: BlobStore
    jobs: JobQueue
    limiter: RateLimiter
    accounts: AccountService
    catalog: CatalogService
    ingest: IngestService
    importer: Importer
    streaming: StreamingService
    history: HistoryService
    registry: TaskRegistry
    search_index: SearchIndex
    indexer: Indexer
    search: SearchService
    library: LibraryService
    privacy: PrivacyService
    playlists: PlaylistService
    sharing: SharingService
    entitlements: EntitlementService
    player: PlayerService
    gateway: PaymentGateway
    scheduler: Scheduler
    devices: DeviceService
    billing: BillingService
    recs: RecsService
    credentials: CredentialService
    scans: LibraryScans
    _workers: list[tuple[Worker, threading.Thread]] = field(default_factory=list)

    def worker(self, name: str | None = None) -> Worker:
        return Worker(self, self.jobs, self.registry, name=name)

    def start_workers(self, n: int) -> None:
        """In-process workers (the embedded default): daemon threads sharing this container."""
        for i in range(n):
            w = self.worker(name=f"inproc-{i}")
            t = threading.Thread(target=w.run_forever, name=f"tonearm-worker-{i}", daemon=True)
            t.start()
            self._workers.append((w, t))
        if n:
            self.scheduler.start()

    def close(self) -> None:
        self.scheduler.close()
        self.indexer.stop()
        for w, _ in self._workers:
            w.stop.set()
        for _, t in self._workers:
            t.join(timeout=30)
        self._workers.clear()
        self.search_index.close()
        self.entitlements.close()  # writes what the grant path queued
        self.db.dispose()


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None) -> Container:
    settings = settings or Settings()
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(make_engine(settings.resolved_database_url))
    blobs = blob_store_for(settings.resolved_blob_url)
    jobs = job_queue_for(settings.queue_url, db, settings, clock)
    limiter = RateLimiter(clock)
    accounts = AccountService(
        db,
        clock,
        settings.resolved_secret_key(),
        limiter,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
        login_attempts_per_minute=settings.login_attempts_per_minute,
    )
    catalog = CatalogService(db, settings.public_url, cache_size=settings.cache_size)
    ingest = IngestService(
        db,
        blobs,
        jobs,
        catalog,
        clock,
        limiter,
        tmp_dir=settings.data_dir / "tmp",
        max_upload_bytes=settings.max_upload_bytes,
        max_track_seconds=settings.max_track_seconds,
        uploads_per_hour=settings.uploads_per_hour,
        transcode_threads=settings.transcode_threads,
        aac_coder=settings.aac_coder,
    )
    importer = Importer(db, blobs, jobs, catalog, ingest, clock)
    streaming = StreamingService(
        db,
        catalog,
        blobs,
        clock,
        settings.resolved_secret_key(),
        settings.public_url,
        tmp_dir=settings.data_dir / "tmp",
        grant_ttl_s=settings.grant_ttl_s,
        cache_size=settings.cache_size,
        transcode_threads=settings.transcode_threads,
        aac_coder=settings.aac_coder,
        ondemand_wait_s=settings.ondemand_wait_s,
    )
    search_index = search_index_for(settings.resolved_search_url, db)
    indexer = Indexer(db, search_index, clock, poll_s=settings.search_poll_s)
    catalog.on_invalidate(lambda _track_id: indexer.poke())
    playlists = PlaylistService(db, catalog, clock, blobs, ingest)
    playlists.on_change(lambda _playlist_id: indexer.poke())
    search = SearchService(
        search_index,
        catalog,
        clock,
        breaker_failures=settings.search_breaker_failures,
        breaker_reset_s=settings.search_breaker_reset_s,
        slow_ms=settings.search_slow_ms,
        fallback_timeout_ms=settings.search_fallback_timeout_ms,
        fallback_concurrency=settings.search_fallback_concurrency,
        cache_ttl_s=settings.search_cache_ttl_s,
        inline=db.sqlite and urlparse(settings.resolved_search_url).scheme in ("tantivy", "memory"),
        playlists=playlists,
    )
    entitlements = EntitlementService(
        db,
        clock,
        streaming=streaming,
        accounts=accounts,
        free_skips_per_hour=settings.free_skips_per_hour,
        ads_every_tracks=settings.ads_every_tracks,
        max_devices=settings.max_devices,
        max_downloads_per_device=settings.max_downloads_per_device,
        licence_days=settings.licence_days,
    )
    gateway = payment_gateway_for(settings.payment_gateway_url, db, jobs, clock, settings)
    billing = BillingService(db, clock, gateway, jobs, accounts, entitlements, limiter, settings)
    devices = DeviceService(
        db,
        clock,
        entitlements,
        streaming,
        blobs,
        settings.resolved_secret_key(),
        settings.public_url,
        tmp_dir=settings.data_dir / "tmp",
        max_devices=settings.max_devices,
        max_downloads_per_device=settings.max_downloads_per_device,
        licence_days=settings.licence_days,
    )
    billing.on_product_change(devices.product_changed)  # losing offline revokes downloads
    library = LibraryService(db, catalog, clock)
    recs = RecsService(
        db, blobs, jobs, clock, catalog, library, playlists, entitlements, public_url=settings.public_url
    )
    library.on_change(recs.forget)  # a like or follow shows in recommendations on the next request
    credentials = CredentialService(db, clock, settings.resolved_secret_key())
    return Container(
        settings,
        clock,
        db,
        blobs,
        jobs,
        limiter,
        accounts,
        catalog,
        ingest,
        importer,
        streaming,
        HistoryService(db, catalog, clock, skips=entitlements),
        task_registry(),
        search_index=search_index,
        indexer=indexer,
        search=search,
        library=library,
        sharing=SharingService(
            db, streaming, clock, limiter, settings.public_url, preview_ttl_s=settings.grant_ttl_s
        ),
        privacy=PrivacyService(
            db,
            blobs,
            jobs,
            clock,
            accounts,
            catalog,
            settings.resolved_secret_key(),
            settings.public_url,
            tmp_dir=settings.data_dir / "tmp",
            before_delete=[billing.before_account_deleted, credentials.before_account_deleted],
        ),
        playlists=playlists,
        entitlements=entitlements,
        player=PlayerService(db, clock, catalog, playlists, entitlements),
        gateway=gateway,
        scheduler=Scheduler(db, jobs, clock, periodic_jobs(settings)),
        devices=devices,
        billing=billing,
        recs=recs,
        credentials=credentials,
        scans=LibraryScans(db, jobs, clock, importer, settings.library_dir),
    )
