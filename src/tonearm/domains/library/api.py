"""Liked tracks, saved albums and followed artists: `/v1/me/tracks`, `/v1/me/albums` and
`/v1/me/following`, as in the Spotify Web API, and the release feed `/v1/me/feed/releases`.

Ids come as `?ids=a,b` or as a JSON body `{"ids": [...]}` (Spotify accepts both; paths with a
trailing slash are accepted too). Spotify's newer `/v1/me/library?uris=` (what spotipy now sends
to save, remove and check tracks and albums, and to follow artists) takes URIs, `tonearm:` or
`spotify:`.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Query, Response

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.library.service import parse_ids, parse_uris
from tonearm.http.auth import container, current_user
from tonearm.kernel.errors import BadRequest

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


def _artist_type(type_: str | None) -> None:
    if type_ != "artist":
        raise BadRequest(
            "type: must be 'artist' (following users is not supported)"
            if type_ == "user"
            else "type: give type=artist"
        )


TypeQuery = Annotated[str | None, Query(alias="type", description="artist")]


@router.get("/v1/me/following", summary="Followed artists, by name (cursor paging)")
def followed_artists(
    type_: TypeQuery = None,
    limit: int = 20,
    after: Annotated[str | None, Query(description="The last artist id of the previous page")] = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    _artist_type(type_)
    return _json(c.library.followed_artists(user.user_id, limit=limit, after=after))


@router.put("/v1/me/following", summary="Follow artists", status_code=204)
@router.put("/v1/me/following/", include_in_schema=False, status_code=204)
def follow_artists(
    type_: TypeQuery = None,
    ids: IdsQuery = None,
    body: IdsBody = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    _artist_type(type_)
    c.library.follow(user.user_id, parse_ids(_ids(ids, body), "artist"))
    return Response(status_code=204)


@router.delete("/v1/me/following", summary="Unfollow artists", status_code=204)
@router.delete("/v1/me/following/", include_in_schema=False, status_code=204)
def unfollow_artists(
    type_: TypeQuery = None,
    ids: IdsQuery = None,
    body: IdsBody = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    _artist_type(type_)
    c.library.unfollow(user.user_id, parse_ids(_ids(ids, body), "artist"))
    return Response(status_code=204)


@router.get("/v1/me/following/contains", summary="Whether each artist is followed")
def following_contains(
    type_: TypeQuery = None,
    ids: IdsQuery = None,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> list[bool]:
    _artist_type(type_)
    return c.library.follows(user.user_id, parse_ids(ids, "artist", unique=False))


@router.get("/v1/me/feed/releases", summary="New albums and singles from followed artists, newest first")
def release_feed(
    limit: int = 20,
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.library.release_feed(user.user_id, limit=limit, offset=offset))


UrisQuery = Annotated[
    str | None, Query(description="Comma-separated tonearm:track:<id> / :album: / :artist: URIs, at most 50")
]


@router.put(
    "/v1/me/library", summary="Save tracks and albums, follow artists, by URI (Spotify's library endpoint)"
)
def add_to_library(
    uris: UrisQuery = None, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.library.add_to_library(user.user_id, parse_uris(uris))
    return Response(status_code=200)


@router.delete("/v1/me/library", summary="Remove tracks and albums, unfollow artists, by URI")
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
