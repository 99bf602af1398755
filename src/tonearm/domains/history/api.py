"""Player events in (`POST /v1/me/player/events`); recently played, top lists and the yearly
summary out, in the Spotify Web API's shapes where Spotify has them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Response

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.history.schemas import EventBatch
from tonearm.http.auth import container, current_user

router = APIRouter(tags=["player"])


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.post("/v1/me/player/events", summary="Report playback events (idempotent by event id)")
def player_events(
    batch: EventBatch, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """Batches of up to 100 events. Retrying a batch is safe: known event ids count as
    `duplicates` and change nothing. Events refused one by one (unknown track, bad clock) are
    listed in `rejected` with the reason; the rest of the batch is kept."""
    return c.history.record(user.user_id, batch.events)


@router.get("/v1/me/player/recently-played", summary="The listener's plays, newest first (cursor paging)")
def recently_played(
    limit: int = Query(20, description="1 to 50"),
    before: str | None = Query(
        None, description="Unix time in ms, or `cursors.before` of an answer: plays before it"
    ),
    after: str | None = Query(
        None, description="Unix time in ms, or `cursors.after` of an answer: plays after it"
    ),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """Each item is `{track, played_at, context}`; give `before` or `after`, not both. Cursors are
    `<ms>:<play id>`, so plays heard in the same millisecond page correctly; plain milliseconds
    work too. Tracks the listener may no longer see are left out."""
    return _json(c.history.recently_played(user.user_id, limit=limit, before=before, after=after))


@router.get("/v1/me/top/{type}", tags=["personalization"], summary="The listener's top artists or tracks")
def top_items(
    type: str,
    time_range: str = Query(
        "medium_term", description="short_term (~4 weeks), medium_term (~6 months), long_term (all time)"
    ),
    limit: int = Query(20, description="1 to 50"),
    offset: int = 0,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """`type` is `artists` or `tracks`. Short and medium term rank recent plays higher (scores that
    halve every 14 and 90 days); long term counts every play."""
    return _json(c.history.top(user.user_id, type, time_range=time_range, limit=limit, offset=offset))


@router.get("/v1/me/stats/{year}", tags=["personalization"], summary="The listener's year in music")
def year_summary(
    year: str,
    tz: str | None = Query(
        None, description="IANA time zone for the hour and month buckets, e.g. Europe/Paris"
    ),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """Minutes listened, plays, distinct tracks and artists, the top 5 tracks, artists and genres
    (with play counts), and plays and minutes by hour of day (24) and by month (12)."""
    return _json(c.history.year_summary(user.user_id, year, tz))
