"""What players send: batches of events, validated at the edge."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EventType = Literal["start", "progress", "pause", "resume", "seek", "skip", "end", "error", "rebuffer"]
_CLIENT_ID = r"^[A-Za-z0-9_.:-]+$"
_DAY_MS = 24 * 3600 * 1000


class PlayerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1, max_length=64, pattern=_CLIENT_ID, description="Client-made, unique per user."
    )
    type: EventType
    track_id: str = Field(pattern=r"^[0-9A-Za-z]{22}$")
    playback_id: str = Field(
        min_length=1, max_length=64, pattern=_CLIENT_ID, description="One id per listening of one track."
    )
    timestamp: AwareDatetime = Field(description="When it happened on the client (ISO 8601 with offset).")
    position_ms: int | None = Field(None, ge=0, le=_DAY_MS, description="Playhead position.")
    ms_played: int | None = Field(
        None, ge=0, le=_DAY_MS, description="Audio actually heard in this playback so far (seeks excluded)."
    )
    rendition: str | None = Field(None, max_length=32, pattern=_CLIENT_ID)
    startup_ms: int | None = Field(None, ge=0, le=600_000, description="`start`: request to first sound.")
    duration_ms: int | None = Field(None, ge=0, le=3_600_000, description="`rebuffer`: how long it stalled.")
    context_uri: str | None = Field(None, max_length=100)
    message: str | None = Field(None, max_length=300, description="`error`: what went wrong.")

    def client_time(self) -> dt.datetime:
        return self.timestamp.astimezone(dt.UTC)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[PlayerEvent] = Field(min_length=1, max_length=100)
