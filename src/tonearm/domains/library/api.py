"""Liked tracks and saved albums: `/v1/me/tracks` and `/v1/me/albums`, as in the Spotify Web API.

Ids come as `?ids=a,b` or as a JSON body `{"ids": [...]}` (Spotify accepts both; paths with a
trailing slash are accepted too). Spotify's newer `/v1/me/library?uris=` (what spotipy now sends
to save, remove and check tracks and albums) takes URIs, `tonearm:` or `spotify:`.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Query, Response

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.library.service import parse_ids, parse_uris
from tonearm.http.auth import container, current_user

router = APIRouter(tags=["library"])

IdsQuery = Annotated[str | None, Query(description="Comma-separated ids, at most 50")]
IdsBody = Annotated[dict[str, list[str]] | None, Body(description='{"ids": [...]}, at most 50')]


def _ids(query: str | None, body: dict[str, list[str]] | None) -> str | list[str] | None:
    return query if query is not None else (body or {}).get("ids")


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get("/v1/me/tracks", summary="The listener's liked tracks, newest first")
def liked_tracks(
    limit: int = 20,
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.library.saved(user.user_id, "track", limit=limit, offset=offset))


@router.put("/v1/me/tracks", summary="Like tracks (liking again keeps the first added_at)")
@router.put("/v1/me/tracks/", include_in_schema=False)
def like_tracks(
    ids: IdsQuery = None,
    body: IdsBody = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.library.save(user.user_id, "track", parse_ids(_ids(ids, body), "track"))
    return Response(status_code=200)


@router.delete("/v1/me/tracks", summary="Unlike tracks")
@router.delete("/v1/me/tracks/", include_in_schema=False)
def unlike_tracks(
    ids: IdsQuery = None,
    body: IdsBody = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.library.remove(user.user_id, "track", parse_ids(_ids(ids, body), "track"))
    return Response(status_code=200)


@router.get("/v1/me/tracks/contains", summary="Whether each track is liked")
def tracks_contain(
    ids: IdsQuery = None, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> list[bool]:
    return c.library.contains(user.user_id, "track", parse_ids(ids, "track", unique=False))


@router.get("/v1/me/albums", summary="The listener's saved albums, newest first")
def saved_albums(
    limit: int = 20,
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.library.saved(user.user_id, "album", limit=limit, offset=offset))


@router.put("/v1/me/albums", summary="Save albums")
@router.put("/v1/me/albums/", include_in_schema=False)
def save_albums(
    ids: IdsQuery = None,
    body: IdsBody = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.library.save(user.user_id, "album", parse_ids(_ids(ids, body), "album"))
    return Response(status_code=200)


@router.delete("/v1/me/albums", summary="Remove saved albums")
@router.delete("/v1/me/albums/", include_in_schema=False)
def remove_albums(
    ids: IdsQuery = None,
    body: IdsBody = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.library.remove(user.user_id, "album", parse_ids(_ids(ids, body), "album"))
    return Response(status_code=200)


@router.get("/v1/me/albums/contains", summary="Whether each album is saved")
def albums_contain(
    ids: IdsQuery = None, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> list[bool]:
    return c.library.contains(user.user_id, "album", parse_ids(ids, "album", unique=False))


UrisQuery = Annotated[
    str | None, Query(description="Comma-separated tonearm:track:<id> / :album: URIs, at most 50")
]


@router.put("/v1/me/library", summary="Save tracks and albums by URI (Spotify's library endpoint)")
def add_to_library(
    uris: UrisQuery = None, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.library.add_to_library(user.user_id, parse_uris(uris))
    return Response(status_code=200)


@router.delete("/v1/me/library", summary="Remove tracks and albums by URI")
def remove_from_library(
    uris: UrisQuery = None, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.library.remove_from_library(user.user_id, parse_uris(uris))
    return Response(status_code=200)


@router.get("/v1/me/library/contains", summary="Whether each URI is in the library")
def library_contains(
    uris: UrisQuery = None, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> list[bool]:
    return c.library.library_contains(user.user_id, parse_uris(uris, unique=False))
