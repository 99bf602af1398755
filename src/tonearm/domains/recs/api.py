"""Recommendations over HTTP: Spotify's `/v1/recommendations` (and its genre seeds), radio, the
home feed, the playlists made for the listener, "not interested", and the admins' training runs."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.entitlements.api import admin
from tonearm.domains.entitlements.refusals import Refused
from tonearm.domains.recs import tunables
from tonearm.domains.recs.service import parse_seeds
from tonearm.http.auth import container, current_user

router = APIRouter(tags=["recommendations"])


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get("/v1/recommendations", summary="Tracks like the seeds (Spotify's shape)")
def recommendations(
    request: Request,
    seed_tracks: str | None = Query(None, description="Comma-separated track ids"),
    seed_artists: str | None = Query(None, description="Comma-separated artist ids"),
    seed_genres: str | None = Query(
        None, description="Comma-separated genre slugs (see available-genre-seeds)"
    ),
    limit: int = Query(20, description="1 to 100"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """One to five seeds in all. Tunable attributes: `min_`, `max_` and `target_` of `tempo`,
    `loudness` and `duration_ms` (Spotify's other attributes are not measured: they are ignored and
    named in the `X-Tonearm-Ignored` header). Tracks similar in who listens to them (collaborative filtering)
    and in what they are (genres, artists, words, tempo and sound); for listeners whose plan
    includes personal recommendations, their own taste is blended in. Seeds, what the listener
    skipped, hid or just played are left out; no more than one track in five by the same artist."""
    seeds = parse_seeds(seed_tracks, seed_artists, seed_genres)
    tuned, ignored = tunables.parse(request.query_params.multi_items())
    response = _json(c.recs.recommendations(user.user_id, seeds, limit=limit, tunables=tuned))
    if ignored:
        response.headers["X-Tonearm-Ignored"] = ",".join(ignored)
    return response


@router.get("/v1/radio", summary="An endless station from one seed, page by page")
def radio(
    seed: str = Query(description="tonearm:track:<id>, tonearm:artist:<id> or tonearm:genre:<slug>"),
    limit: int = Query(20, description="1 to 50"),
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """A paging object of tracks; follow `next` for more. The order holds while the listener
    plays the station, so pages do not repeat; what they skip or hide drops out."""
    return _json(c.recs.radio(user.user_id, seed, limit=limit, offset=offset))


@router.get("/v1/me/home", summary="The listener's home feed: shelves of recommendations")
def home(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    """Shelves (`id`, `title`, `type`, `reason`, `items`): Made for you, Recommended for you and
    Because you liked ... for plans with personal recommendations; Jump back in, New from artists
    you follow and Popular in <genre> for everyone. `notice` says why a shelf is missing."""
    return _json(c.recs.home(user.user_id))


@router.get("/v1/me/made-for-you", summary="Discover Weekly and the Daily Mixes (Premium)")
def made_for_you(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    """Playlists the recommender keeps for the listener: Discover Weekly (30 tracks they have not
    heard, new every Monday) and a Daily Mix per taste (remade daily). They are ordinary private
    playlists of the listener's, so they play, share and sync like any other."""
    if not c.recs.personalised(user.user_id):
        raise Refused(
            "Discover Weekly and Daily Mixes come with Premium",
            action="made_for_you",
            reason="premium_required",
            detail="plan lacks personalised",
        )
    items = c.recs.made_for_you(user.user_id)
    return _json({"items": items, "total": len(items)})


@router.get("/v1/me/recommendations/hidden", summary="Tracks the listener is not interested in")
def hidden(
    limit: int = Query(20, description="1 to 50"),
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    return _json(c.recs.hidden(user.user_id, limit=limit, offset=offset))


def _id_list(ids: str | None) -> list[str]:
    return [] if ids is None else [i.strip() for i in ids.split(",") if i.strip()]


@router.put("/v1/me/recommendations/hidden", summary="Not interested: never recommend these tracks")
def hide(
    ids: str = Query(description="Comma-separated track ids (up to 50)"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.recs.hide(user.user_id, _id_list(ids))
    return Response(status_code=200)


@router.delete("/v1/me/recommendations/hidden", summary="Undo 'not interested'")
def unhide(
    ids: str = Query(description="Comma-separated track ids (up to 50)"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.recs.unhide(user.user_id, _id_list(ids))
    return Response(status_code=200)


@router.get("/v1/admin/recs/runs", summary="Training runs and the model being served (admins)")
def runs(_: Principal = Depends(admin), c: Container = Depends(container)) -> dict[str, Any]:
    return c.recs.runs()


@router.post("/v1/admin/recs/train", status_code=202, summary="Train the recommender now (admins)")
def train(
    force: bool = Query(False, description="Train even if nothing changed since the last model"),
    _: Principal = Depends(admin),
    c: Container = Depends(container),
) -> dict[str, Any]:
    """Queues a training job; follow it at /v1/admin/recs/runs (stage and progress)."""
    return c.recs.queue_training(force=force)
