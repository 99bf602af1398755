"""Playlists, as in the Spotify Web API (see playlists.py for the rules).

    POST /v1/me/playlists, POST /v1/users/{user_id}/playlists (yourself only)   create -> 201
    GET  /v1/me/playlists, GET /v1/users/{user_id}/playlists                     list
    GET  /v1/playlists/{id}, PUT /v1/playlists/{id}                              read, change details
    GET/POST/PUT/DELETE /v1/playlists/{id}/tracks (and /items, Spotify's newer name)
    GET/PUT /v1/playlists/{id}/images                                            cover (base64 JPEG body)
    DELETE /v1/playlists/{id}/followers            "unfollow": the owner deletes it, a collaborator leaves

Not in Spotify's API: the owner of a collaborative playlist names its collaborators with
`POST /v1/playlists/{id}/collaborators {"user_id": ...}` and removes one with
`DELETE /v1/playlists/{id}/collaborators/{user_id}` (a collaborator may remove themselves);
`GET /v1/playlists/{id}/collaborators` lists them.

Track URIs come as `?uris=a,b` or in the JSON body: `{"uris": [...], "position": n}`, or a bare
list as spotipy sends it (with `?position=`). Removals take `{"tracks": [...]}` or Spotify's newer
`{"items": [...]}`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.routing import Route

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.library.playlists import (
    MAX_COVER_BYTES,
    MAX_ITEMS_LIMIT,
    ItemsPath,
    decode_cover,
    parse_track_uri,
    parse_track_uris,
)
from tonearm.http.auth import container, current_user, optional_user
from tonearm.kernel.errors import BadRequest, Forbidden, PayloadTooLarge

router = APIRouter(tags=["playlists"])


class PlaylistCreate(BaseModel):
    name: str
    description: str | None = None
    public: bool = True
    collaborative: bool = False


class PlaylistDetails(BaseModel):
    name: str | None = None
    description: str | None = None
    public: bool | None = None
    collaborative: bool | None = None


class ItemsChange(BaseModel):
    """PUT: either a reorder (range_start, insert_before, range_length) or a replacement (uris)."""

    uris: list[str] | None = None
    range_start: int | None = None
    insert_before: int | None = None
    range_length: int = 1
    snapshot_id: str | None = None


class Removal(BaseModel):
    uri: str
    positions: list[int] | None = None


class ItemsRemoval(BaseModel):
    tracks: list[Removal] | None = None
    items: list[Removal] | None = None  # Spotify's newer name
    snapshot_id: str | None = None


class CollaboratorIn(BaseModel):
    user_id: str


UrisQuery = Annotated[str | None, Query(description="Comma-separated tonearm:track:<id> URIs, at most 100")]


def _json(value: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status_code, media_type="application/json")


def _viewer(user: Principal | None) -> str | None:
    return user.user_id if user else None


# Playlists ------------------------------------------------------------------------------------
@router.post("/v1/me/playlists", summary="Create a playlist", status_code=201)
def create_my_playlist(
    body: PlaylistCreate, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    obj = c.playlists.create(
        user.user_id,
        name=body.name,
        description=body.description,
        public=body.public,
        collaborative=body.collaborative,
    )
    return _json(obj, 201)


@router.post(
    "/v1/users/{user_id}/playlists", summary="Create a playlist (for yourself only)", status_code=201
)
def create_playlist(
    user_id: str,
    body: PlaylistCreate,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    if user_id != user.user_id:
        raise Forbidden("you can only create playlists for yourself")
    return create_my_playlist(body, user, c)


@router.get("/v1/me/playlists", summary="Your playlists and those you collaborate on, newest first")
def my_playlists(
    limit: int = 20,
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.playlists.playlists_of(user.user_id, user.user_id, limit=limit, offset=offset))


@router.get("/v1/users/{user_id}/playlists", summary="A user's public playlists (all of yours, to you)")
def user_playlists(
    user_id: str,
    limit: int = 20,
    offset: int = 0,
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.playlists.playlists_of(user_id, _viewer(user), limit=limit, offset=offset))


@router.get("/v1/playlists/{playlist_id}", summary="A playlist, with the first 100 items")
def get_playlist(
    playlist_id: str,
    fields: str | None = None,  # Spotify's field filter: accepted, the whole object is returned
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.playlists.playlist(playlist_id, _viewer(user)))


@router.put(
    "/v1/playlists/{playlist_id}", summary="Change a playlist's name, description, public, collaborative"
)
def change_playlist(
    playlist_id: str,
    body: PlaylistDetails,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.playlists.change_details(
        user.user_id,
        playlist_id,
        name=body.name,
        description=body.description,
        public=body.public,
        collaborative=body.collaborative,
    )
    return Response(status_code=200)


# Items ----------------------------------------------------------------------------------------
def _items(path: ItemsPath) -> Any:
    def get_items(
        playlist_id: str,
        limit: int = MAX_ITEMS_LIMIT,
        offset: int = 0,
        user: Principal | None = Depends(optional_user),
        c: Container = Depends(container),
    ) -> Response:
        page = c.playlists.items(playlist_id, _viewer(user), limit=limit, offset=offset, path=path)
        return _json(page)

    return get_items


# The FastAPI routes document these reads; the plain Starlette twins below answer them (see
# http/app.py: PLAIN_ROUTES skip FastAPI's router and dependency solving, which cost more per
# request than reading a page of a playlist).
router.get("/v1/playlists/{playlist_id}/tracks", summary="A page of a playlist's items, in order")(
    _items("tracks")
)
router.get(
    "/v1/playlists/{playlist_id}/items", summary="A page of a playlist's items (Spotify's newer path)"
)(_items("items"))


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name}: must be an integer") from None


async def _read_items(request: Request, path: ItemsPath) -> Response:
    c: Container = request.app.state.container
    playlist_id = request.path_params["playlist_id"]
    limit = _int_param(request, "limit", MAX_ITEMS_LIMIT)
    offset = _int_param(request, "offset", 0)

    def read() -> bytes:
        viewer = _viewer(optional_user(request))
        return orjson.dumps(c.playlists.items(playlist_id, viewer, limit=limit, offset=offset, path=path))

    # As GET /v1/tracks/{id}: on embedded SQLite a page is ~0.3 ms of CPU (its tracks cached),
    # less than a thread hop, and threads would only contend for the GIL (one worker: ~900 pages/s
    # through the thread pool, ~2,000 inline); a networked database may wait on I/O: thread pool.
    data = read() if c.db.sqlite else await run_in_threadpool(read)
    return Response(data, media_type="application/json")


async def tracks_route(request: Request) -> Response:
    return await _read_items(request, "tracks")


async def items_route(request: Request) -> Response:
    return await _read_items(request, "items")


# One endpoint per path: the metrics label requests by their endpoint's path.
ROUTES = [
    Route("/v1/playlists/{playlist_id}/tracks", tracks_route, methods=["GET"]),
    Route("/v1/playlists/{playlist_id}/items", items_route, methods=["GET"]),
]


@router.post("/v1/playlists/{playlist_id}/tracks", summary="Add tracks (at `position`, else at the end)")
@router.post("/v1/playlists/{playlist_id}/items", summary="Add tracks (Spotify's newer path)")
def add_items(
    playlist_id: str,
    uris: UrisQuery = None,
    position: int | None = None,
    body: Annotated[Any, Body(description='{"uris": [...], "position": n}, or a list of URIs')] = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    given: str | list[Any] | None = uris
    if isinstance(body, dict):
        given = uris if uris is not None else body.get("uris")
        at = body.get("position", position)
        if at is not None and (not isinstance(at, int) or isinstance(at, bool)):
            raise BadRequest("position: must be an integer")
        position = at if position is None else position
    elif isinstance(body, list) and uris is None:
        given = body
    elif body is not None:
        raise BadRequest('body: expected {"uris": [...], "position": n} or a list of URIs')
    snapshot = c.playlists.add(user.user_id, playlist_id, parse_track_uris(given), position=position)
    return _json({"snapshot_id": snapshot}, 201)


@router.put("/v1/playlists/{playlist_id}/tracks", summary="Reorder items, or replace them all (uris)")
@router.put("/v1/playlists/{playlist_id}/items", summary="Reorder or replace items (Spotify's newer path)")
def change_items(
    playlist_id: str,
    uris: UrisQuery = None,
    body: ItemsChange | None = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    body = body or ItemsChange()
    replace = uris if uris is not None else body.uris
    reorder = body.range_start is not None or body.insert_before is not None
    if replace is not None and reorder:
        raise BadRequest(
            "give either uris (to replace every item) or range_start and insert_before (to reorder)"
        )
    if replace is not None:
        ids = parse_track_uris(replace, allow_empty=True)
        snapshot = c.playlists.replace(user.user_id, playlist_id, ids, snapshot=body.snapshot_id)
    elif body.range_start is None or body.insert_before is None:
        raise BadRequest(
            "range_start and insert_before: both are needed to reorder (or give uris to replace)"
        )
    else:
        snapshot = c.playlists.reorder(
            user.user_id,
            playlist_id,
            range_start=body.range_start,
            insert_before=body.insert_before,
            range_length=body.range_length,
            snapshot=body.snapshot_id,
        )
    return _json({"snapshot_id": snapshot})


@router.delete(
    "/v1/playlists/{playlist_id}/tracks", summary="Remove tracks: every occurrence, or at positions"
)
@router.delete("/v1/playlists/{playlist_id}/items", summary="Remove tracks (Spotify's newer path)")
def remove_items(
    playlist_id: str,
    body: ItemsRemoval,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    given = body.tracks if body.tracks is not None else body.items
    if given is None:
        raise BadRequest('tracks: give {"tracks": [{"uri": ..., "positions": [...]}]} (or "items")')
    removals = [(parse_track_uri(r.uri, "tracks"), r.positions) for r in given]
    snapshot = c.playlists.remove(user.user_id, playlist_id, removals, snapshot=body.snapshot_id)
    return _json({"snapshot_id": snapshot})


# Cover ----------------------------------------------------------------------------------------
@router.get("/v1/playlists/{playlist_id}/images", summary="The playlist's cover, in three sizes")
def get_cover(
    playlist_id: str,
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.playlists.images(playlist_id, _viewer(user)))


@router.put(
    "/v1/playlists/{playlist_id}/images",
    summary="Upload a cover: the body is a base64-encoded JPEG, at most 256 KB",
    status_code=202,
)
async def put_cover(
    playlist_id: str,
    request: Request,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_COVER_BYTES:
            raise PayloadTooLarge(f"image: the base64 body is over the {MAX_COVER_BYTES // 1024} KB limit")
    data = decode_cover(bytes(body))
    await run_in_threadpool(c.playlists.upload_cover, user.user_id, playlist_id, data)
    return Response(status_code=202)


# Collaborators (not in Spotify's API) ---------------------------------------------------------
@router.get("/v1/playlists/{playlist_id}/collaborators", summary="A collaborative playlist's collaborators")
def get_collaborators(
    playlist_id: str,
    user: Principal | None = Depends(optional_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.playlists.collaborators(playlist_id, _viewer(user)))


@router.post(
    "/v1/playlists/{playlist_id}/collaborators", summary="Owner: let a user edit this playlist's tracks"
)
def add_collaborator(
    playlist_id: str,
    body: CollaboratorIn,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.playlists.add_collaborator(user.user_id, playlist_id, body.user_id)
    return Response(status_code=200)


@router.delete(
    "/v1/playlists/{playlist_id}/collaborators/{user_id}",
    summary="Owner: remove a collaborator (or a collaborator leaves)",
)
def remove_collaborator(
    playlist_id: str,
    user_id: str,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.playlists.remove_collaborator(user.user_id, playlist_id, user_id)
    return Response(status_code=200)


@router.delete(
    "/v1/playlists/{playlist_id}/followers",
    summary="Unfollow a playlist: its owner deletes it, a collaborator leaves it",
)
def unfollow_playlist(
    playlist_id: str,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.playlists.unfollow(user.user_id, playlist_id)
    return Response(status_code=200)
