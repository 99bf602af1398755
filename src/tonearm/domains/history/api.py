"""Player events (`POST /v1/me/player/events`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.domains.history.schemas import EventBatch
from tonearm.http.auth import container, current_user

router = APIRouter(tags=["player"])


@router.post("/v1/me/player/events", summary="Report playback events (idempotent by event id)")
def player_events(
    batch: EventBatch, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """Batches of up to 100 events. Retrying a batch is safe: known event ids count as
    `duplicates` and change nothing. Events refused one by one (unknown track, bad clock) are
    listed in `rejected` with the reason; the rest of the batch is kept."""
    return c.history.record(user.user_id, batch.events)
