"""What players send to `PUT /v1/me/player/play` (the Spotify Web API's body)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Offset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: int | None = Field(None, ge=0, description="Index in the context or in `uris` (from 0).")
    uri: str | None = Field(None, max_length=100, description="Or the track to start at: tonearm:track:<id>.")


class PlayRequest(BaseModel):
    """`context_uri` (an album, playlist or artist) or `uris` (tracks), not both; neither resumes."""

    model_config = ConfigDict(extra="forbid")

    context_uri: str | None = Field(None, max_length=100, description="tonearm:album|playlist|artist:<id>")
    uris: list[str] | None = Field(None, max_length=10_000, description="Up to 1,000 track URIs.")
    offset: Offset | None = None
    position_ms: int | None = Field(None, ge=0, le=24 * 3600 * 1000)
