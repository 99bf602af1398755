"""The app factory: mounts every domain's router on one FastAPI app around a Container."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import tonearm
from tonearm.bootstrap import Container
from tonearm.domains.accounts import api as accounts_api
from tonearm.domains.billing import api as billing_api
from tonearm.domains.catalog import api as catalog_api
from tonearm.domains.devices import api as devices_api
from tonearm.domains.entitlements import api as entitlements_api
from tonearm.domains.history import api as history_api
from tonearm.domains.history import listenbrainz
from tonearm.domains.ingest import api as ingest_api
from tonearm.domains.library import api as library_api
from tonearm.domains.library import playlists_api
from tonearm.domains.player import api as player_api
from tonearm.domains.privacy import api as privacy_api
from tonearm.domains.recs import api as recs_api
from tonearm.domains.search import api as search_api
from tonearm.domains.sharing import api as sharing_api
from tonearm.domains.streaming import api as streaming_api
from tonearm.http import errors
from tonearm.http.responses import JSON
from tonearm.subsonic import routes as subsonic_routes

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

REQUESTS = Counter("tonearm_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "tonearm_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
JOBS = Gauge("tonearm_job_queue", "Jobs in the queue by status", ["status"])


class MetricsMiddleware:
    """Counts and times requests per route template (not per URL, so ids do not explode labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_of(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - start)


HOT_TRACK_PATH = "/v1/tracks/{track_id}"
# The hottest paths, matched first as plain Starlette routes: FastAPI's router and dependency
# solving cost ~0.2 ms a request, more than a cached lookup. (FastAPI twins of the JSON ones stay
# for the OpenAPI document; both run the same handler.)
PLAIN_ROUTES = [
    Route(HOT_TRACK_PATH, catalog_api.get_track_route, methods=["GET"]),
    *streaming_api.ROUTES,
    *search_api.ROUTES,
    *playlists_api.ROUTES,
    *devices_api.ROUTES,
    *subsonic_routes.ROUTES,  # the Subsonic API (/rest/*): its own protocol, its own dispatch
    *listenbrainz.ROUTES,  # ListenBrainz-compatible listen submission (/1/*) for scrobblers
]
_PLAIN_PATHS = {route.endpoint: route.path for route in PLAIN_ROUTES}


def _route_of(scope: Scope) -> str:
    # The router writes the matched route into the (shared) scope; its template labels the metric.
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    # Plain Starlette routes record only their endpoint.
    endpoint = scope.get("endpoint")
    return _PLAIN_PATHS.get(endpoint, "unmatched") if endpoint is not None else "unmatched"


def create_app(container: Container, *, start_workers: bool | None = None) -> FastAPI:
    n_workers = container.settings.inprocess_workers if start_workers is None else (1 if start_workers else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if n_workers:
            container.start_workers(n_workers)
        if container.settings.search_indexer:
            container.indexer.start()
        yield
        container.close()

    app = FastAPI(
        title="Tonearm",
        version=tonearm.__version__,
        description="Self-hosted music streaming. The API follows the Spotify Web API's conventions.",
        default_response_class=JSON,
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their JavaScript from a CDN; Tonearm serves nothing that
        # needs the internet at run time. The document itself is at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    # The Subsonic read model's caches live as long as this app (cleared on catalog changes).
    app.state.subsonic_caches = subsonic_routes.read_caches(container)
    errors.install(app)
    app.add_middleware(MetricsMiddleware)
    routers = (
        accounts_api,
        catalog_api,
        ingest_api,
        streaming_api,
        history_api,
        search_api,
        library_api,
        sharing_api,
        playlists_api,
        privacy_api,
        entitlements_api,
        player_api,
        billing_api,
        devices_api,
        recs_api,
    )
    for module in routers:
        app.include_router(module.router)
    app.router.routes[0:0] = PLAIN_ROUTES

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        """Readiness: the database answers and the schema is migrated."""
        try:
            with container.db.read() as conn:
                version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except Exception as exc:
            return JSON({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSON({"status": "ready", "schema": version})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        for status, n in container.jobs.counts().items():
            JOBS.labels(status).set(n)
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if WEB_DIR.is_dir():
        # The web app's JS and CSS, gzipped for browsers that ask (hls.js alone is ~500 KB raw,
        # ~150 KB gzipped); ETag / Last-Modified revalidation still answers 304 without a body.
        static = StaticFiles(directory=WEB_DIR / "static")
        app.mount("/static", GZipMiddleware(static, minimum_size=1024, compresslevel=6), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            # The player is never framed (clickjacking); /embed/... is what other sites may frame.
            return FileResponse(
                WEB_DIR / "index.html",
                headers={
                    "Cache-Control": "no-cache",
                    "X-Frame-Options": "DENY",
                    # Scripts only from here (no inline script, so HTML that slipped into a title
                    # could not run even if it were ever rendered as markup); hls.js runs its
                    # demuxer in a blob: worker. Media and fetches stay open: with an S3 blob
                    # store, signed URLs point at the store's origin.
                    "Content-Security-Policy": (
                        "script-src 'self'; worker-src 'self' blob:; object-src 'none'; "
                        "base-uri 'none'; frame-ancestors 'none'"
                    ),
                },
            )

        @app.get("/sw.js", include_in_schema=False)
        def service_worker() -> FileResponse:
            """The Service Worker (offline start, installable app). Served from the root, as a
            worker's scope is its script's directory; revalidated on every update check."""
            return FileResponse(
                WEB_DIR / "static" / "sw.js",
                media_type="text/javascript",
                headers={"Cache-Control": "no-cache"},
            )

        @app.get("/manifest.webmanifest", include_in_schema=False)
        def web_manifest() -> FileResponse:
            """The web app manifest: name, icons and colours for installing Tonearm as an app."""
            return FileResponse(
                WEB_DIR / "static" / "manifest.webmanifest",
                media_type="application/manifest+json",
                headers={"Cache-Control": "no-cache"},
            )

        @app.get("/join/{code}", include_in_schema=False)
        def join(code: str) -> Response:
            """An invitation link: the web app shows what it is for and joins (after logging in)."""
            if not code or len(code) > 64 or not all(ch.isalnum() or ch in "-_" for ch in code):
                return PlainTextResponse("not an invitation link", status_code=404)
            return RedirectResponse(f"/#/join/{code}", status_code=302)

    return app
