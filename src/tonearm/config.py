"""Settings: one typed object, read from `TONEARM_*` environment variables and an optional TOML file.

Every port is chosen by one URL; the scheme picks the adapter (see `bootstrap.py`):

* `database_url`: `sqlite:///path.db` (embedded default) or `postgresql://user@host/db`
* `blob_url`: `file:///path` (local disk, default), `s3://bucket/prefix?endpoint=&region=&public_endpoint=`
  (any S3-compatible object store; credentials from boto3's chain) or `memory://` (tests)
* `queue_url`: `db://` (jobs in the database, same transaction as the data) or `memory://`
* `search_url`: `tantivy:///path` (embedded default), `postgresql://...` or `db://` (scale-out),
  or `memory://` (tests)

The TOML file is `tonearm.toml` in the working directory, or the path in `TONEARM_CONFIG`.
Environment variables win over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _toml_path() -> Path:
    return Path(os.environ.get("TONEARM_CONFIG", "tonearm.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TONEARM_", extra="ignore")

    data_dir: Path = Field(Path("./var"), description="Where the embedded database, blobs and secrets live.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means sqlite in data_dir.")
    blob_url: str = Field(
        "",
        description="Blob store URL: file:///path, memory:// or "
        "s3://bucket/prefix?endpoint=...&region=...&public_endpoint=...; empty means file://<data_dir>/blobs.",
    )
    queue_url: str = Field("db://", description="Job queue: db:// (durable, transactional) or memory://.")
    secret_key: str = Field("", description="Signs tokens and URLs; empty means generated once in data_dir.")
    public_url: str = Field("http://127.0.0.1:8080", description="How clients reach this server (links).")
    host: str = Field("127.0.0.1", description="Interface `tonearm serve` binds.")
    port: int = Field(8080, description="Port `tonearm serve` binds.")
    web_workers: int = Field(1, description="Uvicorn worker processes for `tonearm serve`.")
    inprocess_workers: int = Field(
        2,
        description="Job worker threads inside `tonearm serve` (0 when separate `tonearm worker`s run). "
        "Their ffmpeg processes run at nice 10, below request handling.",
    )
    access_token_ttl_s: int = Field(3600, description="Bearer access token lifetime (Spotify uses 1 h).")
    refresh_token_ttl_s: int = Field(60 * 60 * 24 * 60, description="Refresh token lifetime.")
    login_attempts_per_minute: int = Field(10, description="Failed logins allowed per account+IP per minute.")
    subsonic_legacy_auth: bool = Field(
        False,
        description=(
            "Accept Subsonic's legacy `p=` (plain or `enc:` hex) password parameter, checked against "
            "the app password. Off by default: the password travels in every URL."
        ),
    )
    uploads_per_hour: int = Field(100, description="Uploads allowed per user per hour.")
    max_upload_bytes: int = Field(1024 * 1024 * 1024, description="Largest accepted upload (bytes).")
    max_track_seconds: float = Field(4 * 3600, description="Longest accepted audio.")
    library_dir: Path | None = Field(
        None,
        description=(
            "A music folder on the server that an admin may rescan (Subsonic's startScan): new and "
            "changed files are imported, unchanged ones skipped. Unset: nothing to rescan."
        ),
    )
    job_lease_s: int = Field(300, description="A running job not heartbeated for this long is retried.")
    job_max_attempts: int = Field(5, description="Attempts before a job is marked failed for good.")
    transcode_threads: int = Field(1, description="ffmpeg threads per transcode job.")
    aac_coder: Literal["fast", "twoloop"] = Field(
        "fast",
        description="ffmpeg's AAC coder: fast (~60x real time per core) or twoloop (~30-40x, better at 96k).",
    )
    log_json: bool = Field(True, description="JSON logs (structlog); false for human-readable console logs.")
    log_level: str = Field("INFO", description="Python log level name.")
    cache_size: int = Field(10000, description="Track objects (as JSON) kept in each process's cache.")
    grant_ttl_s: int = Field(
        900,
        description="Playback grants and their signed URLs live this long, plus the track's duration "
        "(so a track started just before expiry still plays to its end).",
    )
    stream_delivery: Literal["direct", "accel"] = Field(
        "direct",
        description="Who sends audio bytes: `direct` (this process, from local disk) or `accel` (the app "
        "authorizes and answers with X-Accel-Redirect; nginx serves the file; see docs/streaming.md).",
    )
    accel_prefix: str = Field(
        "/_tonearm_blobs",
        description="nginx `internal` location that maps to the blob directory (stream_delivery=accel).",
    )
    search_url: str = Field(
        "",
        description="Search index: tantivy:///path (embedded, on local disk) or memory:// (tests); "
        "empty: tantivy in data_dir/search. For several servers, postgresql://user@host/db (full-text "
        "search in that database; add ?options=-csearch_path%3Dname to use a schema) or db:// (the "
        "same, in the app's own database when database_url is PostgreSQL).",
    )
    search_indexer: bool = Field(
        True, description="Run the indexer (follows catalog changes into the index) in `tonearm serve`."
    )
    search_poll_s: float = Field(0.25, description="How often the indexer looks for catalog changes.")
    search_breaker_failures: int = Field(
        5,
        ge=1,
        description="Consecutive search index failures (errors, or answers slower than search_slow_ms) "
        "that open the circuit breaker: searches are then answered from the database (docs/search.md).",
    )
    search_breaker_reset_s: float = Field(
        10.0, gt=0, description="How long the breaker stays open before one search probes the index again."
    )
    search_slow_ms: float = Field(
        500.0, gt=0, description="A search index answer slower than this counts as a failure."
    )
    search_fallback_timeout_ms: int = Field(
        2000,
        ge=1,
        description="While the breaker is open, a search the database takes longer than this to answer "
        "is abandoned with 503 (the fallback scans; this bounds its cost).",
    )
    search_fallback_concurrency: int = Field(
        4, ge=1, description="Searches answered from the database at once, per process (more wait)."
    )
    search_cache_ttl_s: float = Field(
        0.5,
        ge=0,
        description="Search answers (ids and totals) are reused for the same query, as as-you-type traffic "
        "repeats itself: the index's until the index changes, the database's (failover) for this long. "
        "0: no reuse at all.",
    )
    ondemand_wait_s: float = Field(
        120.0, description="How long a request waits for a missing rendition to be transcoded."
    )

    # Premium (docs/premium.md) -------------------------------------------------------------
    payment_gateway_url: str = Field(
        "sandbox://",
        description="Payment gateway: sandbox:// (built in; Stripe-style test cards, signed webhooks "
        "delivered by the job queue). A real gateway is another adapter behind the same port.",
    )
    webhook_tolerance_s: int = Field(
        300, ge=1, description="A webhook whose signed timestamp is older than this is refused (replay)."
    )
    grace_period_days: int = Field(
        7, ge=0, description="After a failed renewal, premium stays this long while the charge is retried."
    )
    renewal_retry_days: list[int] = Field(
        [1, 3, 5], description="Days after the failed renewal on which the charge is retried."
    )
    billing_sweep_s: float = Field(
        60.0, gt=0, description="How often renewals, retries and lapses due by now are looked for."
    )
    invitation_days: int = Field(7, ge=1, description="Duo/Family invitation links expire after this.")
    free_skips_per_hour: int = Field(6, ge=0, description="Skips a free listener has per rolling hour.")
    ads_every_tracks: int = Field(
        3, ge=1, description="Free listeners hear an audio ad before every this-many-th track."
    )
    max_devices: int = Field(5, ge=1, description="Registered devices per account.")
    max_downloads_per_device: int = Field(10000, ge=1, description="Offline tracks per device.")
    licence_days: int = Field(
        30, ge=1, description="Offline licences expire unless the device renews them online within this."
    )
    recs_train_s: float = Field(
        3600.0,
        gt=0,
        description="How often the recommender retrains (a run stops at once when no signal has changed).",
    )
    recs_playlists_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="How often stale Discover Weekly / Daily Mix playlists of active listeners are remade.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    # Derived values -------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'tonearm.db').resolve()}"

    @property
    def resolved_search_url(self) -> str:
        return self.search_url or f"tantivy://{(self.data_dir / 'search').resolve()}"

    @property
    def resolved_blob_url(self) -> str:
        return self.blob_url or f"file://{(self.data_dir / 'blobs').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated on first use and kept (0600) in data_dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        import secrets

        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
