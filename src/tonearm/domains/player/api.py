"""The server-side player, `/v1/me/player/...`, in the Spotify Web API's shapes: commands answer
204; `GET /v1/me/player` answers 204 when nothing is queued. Skips and ads: see service.py."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Response

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.player.schemas import PlayRequest
from tonearm.http.auth import container, current_user
from tonearm.http.responses import JSON
from tonearm.kernel.errors import BadRequest

router = APIRouter(tags=["player"])

DeviceId = Query(None, description="The device to play on (kept with the queue).")


def _done() -> Response:
    return Response(status_code=204)


@router.get("/v1/me/player", summary="Playback state: the current track, progress, shuffle, repeat")
def playback_state(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    state = c.player.state(user.user_id)
    return _done() if state is None else JSON(state)


@router.get("/v1/me/player/currently-playing", summary="The track playing now")
def currently_playing(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    state = c.player.currently_playing(user.user_id)
    return _done() if state is None else JSON(state)


@router.put("/v1/me/player/play", status_code=204, summary="Start playing tracks or a context, or resume")
def play(
    body: PlayRequest | None = Body(None),
    device_id: str | None = DeviceId,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    """`{"uris": [...]}` (up to 1,000 `tonearm:track:<id>`) or `{"context_uri":
    "tonearm:album|playlist|artist:<id>"}`, optionally with `offset` (`{"position": n}` or
    `{"uri": ...}`) and `position_ms`; no body resumes. Tracks the listener cannot see: 404
    naming them."""
    c.player.play(user.user_id, body, device_id)
    return _done()


@router.put("/v1/me/player/pause", status_code=204, summary="Pause")
def pause(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    c.player.pause(user.user_id)
    return _done()


@router.post("/v1/me/player/next", status_code=204, summary="Skip to the next track (a skip), or move on")
def next_track(
    reason: str | None = Query(
        None,
        description="`trackdone`: the current track played to its end (not a skip; uses none). "
        "Without it this is a skip, which a free plan limits per hour (403 skip_limit).",
    ),
    device_id: str | None = DeviceId,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    if reason not in (None, "trackdone"):
        raise BadRequest(f"reason: only trackdone is known, not {reason[:20]!r}")
    c.player.next(user.user_id, trackdone=reason == "trackdone")
    return _done()


@router.post("/v1/me/player/previous", status_code=204, summary="Back to the previous track (never limited)")
def previous_track(
    device_id: str | None = DeviceId,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.player.previous(user.user_id)
    return _done()


@router.put("/v1/me/player/seek", status_code=204, summary="Seek in the current track")
def seek(
    position_ms: int = Query(description="From the start of the track, in ms"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.player.seek(user.user_id, position_ms)
    return _done()


@router.put("/v1/me/player/repeat", status_code=204, summary="Repeat: track, context or off")
def repeat(
    state: str = Query(description="track, context or off"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.player.repeat(user.user_id, state)
    return _done()


@router.put("/v1/me/player/shuffle", status_code=204, summary="Shuffle on or off")
def shuffle(
    state: str = Query(description="true or false"),
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.player.shuffle(user.user_id, state)
    return _done()


@router.get("/v1/me/player/queue", summary="The current track and what plays next")
def get_queue(user: Principal = Depends(current_user), c: Container = Depends(container)) -> Response:
    return JSON(c.player.queue(user.user_id))


@router.post("/v1/me/player/queue", status_code=204, summary="Add a track to the end of the queue")
def add_to_queue(
    uri: str = Query(description="tonearm:track:<id>"),
    device_id: str | None = DeviceId,
    user: Principal = Depends(current_user),
    c: Container = Depends(container),
) -> Response:
    c.player.add(user.user_id, uri)
    return _done()
