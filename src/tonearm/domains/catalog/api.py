"""Catalog reads in the Spotify Web API's paths and shapes, plus cover-art bytes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.catalog.service import check_id
from tonearm.http.auth import container, optional_user
from tonearm.kernel.errors import BadRequest, NotFound

router = APIRouter(tags=["catalog"])


def _viewer(user: Principal | None) -> str | None:
    return user.user_id if user else None


@router.get("/v1/tracks/{track_id}")
async def get_track(track_id: str, request: Request) -> Response:
    """The hottest read. An anonymous hit on a cached track is answered on the event loop.
    Work that needs the database (a miss, checking a token) runs inline on embedded SQLite, where
    it is a fraction of a millisecond of CPU and cheaper than a thread hop, and in the thread
    pool for a networked database, which may wait on I/O."""
    c: Container = request.app.state.container
    if "authorization" not in request.headers:
        hit = c.catalog.cached_track_json(track_id, None)
        if hit is not None:
            return Response(hit, media_type="application/json")

    def lookup() -> bytes:
        return c.catalog.track_json(track_id, _viewer(optional_user(request)))

    data = lookup() if c.db.sqlite else await run_in_threadpool(lookup)
    return Response(data, media_type="application/json")


async def get_track_route(request: Request) -> Response:
    """`get_track` as a plain Starlette endpoint (see http/app.py: the hot route skips FastAPI's
    router and dependency machinery, which cost more than the lookup itself)."""
    return await get_track(request.path_params["track_id"], request)


@router.get("/v1/tracks")
def get_tracks(
    ids: str = Query(..., description="Comma-separated track ids, at most 50"),
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    wanted = [i for i in ids.split(",") if i]
    if not 1 <= len(wanted) <= 50:
        raise BadRequest("ids: give between 1 and 50 comma-separated ids")
    return {"tracks": c.catalog.tracks(wanted, _viewer(user))}


def _several(ids: str, most: int) -> list[str]:
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if not 1 <= len(wanted) <= most:
        raise BadRequest(f"ids: give between 1 and {most} comma-separated ids")
    return wanted


@router.get("/v1/albums")
def get_albums(
    ids: str = Query(..., description="Comma-separated album ids, at most 20"),
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    """Spotify's "Get Several Albums": full album objects in the order asked, null where an id
    names nothing (or nothing this listener may see)."""
    out: list[dict[str, Any] | None] = []
    for album_id in _several(ids, 20):
        try:
            out.append(c.catalog.album(album_id, _viewer(user)))
        except NotFound:
            out.append(None)
    return {"albums": out}


@router.get("/v1/artists")
def get_artists(
    ids: str = Query(..., description="Comma-separated artist ids, at most 50"),
    c: Container = Depends(container),
) -> Response:
    """Spotify's "Get Several Artists": full artist objects in the order asked, null where an id
    names nothing."""
    wanted = _several(ids, 50)
    for artist_id in wanted:
        check_id(artist_id, "artist")
    parts = [j if j is not None else b"null" for j in c.catalog.artists_json(wanted)]
    return Response(b'{"artists":[' + b",".join(parts) + b"]}", media_type="application/json")


@router.get("/v1/albums/{album_id}")
def get_album(
    album_id: str, user: Principal | None = Depends(optional_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return c.catalog.album(album_id, _viewer(user))


@router.get("/v1/albums/{album_id}/tracks")
def get_album_tracks(
    album_id: str,
    limit: int = 20,
    offset: int = 0,
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> dict[str, Any]:
    return c.catalog.album_tracks(album_id, _viewer(user), limit=limit, offset=offset)


@router.get("/v1/artists/{artist_id}")
def get_artist(artist_id: str, c: Container = Depends(container)) -> dict[str, Any]:
    return c.catalog.artist(artist_id)


@router.get("/v1/artists/{artist_id}/albums")
def get_artist_albums(
    artist_id: str,
    include_groups: str | None = None,
    limit: int = 20,
    offset: int = 0,
    c: Container = Depends(container),
) -> dict[str, Any]:
    return c.catalog.artist_albums(artist_id, include_groups=include_groups, limit=limit, offset=offset)


@router.get("/v1/artists/{artist_id}/top-tracks")
def get_artist_top_tracks(
    artist_id: str, user: Principal | None = Depends(optional_user), c: Container = Depends(container)
) -> dict[str, Any]:
    return {"tracks": c.catalog.artist_top_tracks(artist_id, _viewer(user))}


@router.get("/v1/browse/new-releases")
def new_releases(limit: int = 20, offset: int = 0, c: Container = Depends(container)) -> dict[str, Any]:
    return c.catalog.new_releases(limit=limit, offset=offset)


@router.get("/v1/genres")
def get_genres(c: Container = Depends(container)) -> dict[str, Any]:
    return {"genres": c.catalog.genres()}


@router.get("/v1/recommendations/available-genre-seeds")
def genre_seeds(c: Container = Depends(container)) -> dict[str, Any]:
    return {"genres": [g["slug"] for g in c.catalog.genres()]}


@router.get("/images/{image_id}/{size}", include_in_schema=False)
def get_image(image_id: str, size: int, c: Container = Depends(container)) -> Response:
    variant = c.catalog.image_variant(image_id, size)
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    path = c.blobs.local_path(variant.blob_key)
    if path is not None:
        return FileResponse(path, media_type=variant.content_type, headers=headers)
    with c.blobs.open(variant.blob_key) as fh:
        return Response(fh.read(), media_type=variant.content_type, headers=headers)
