"""What admins send to run audio ads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track_id: str = Field(description="The ad's audio: a ready track uploaded by an admin (usually private).")
    name: str = Field(max_length=200)
    advertiser: str = Field(max_length=200)
    click_url: str | None = Field(None, max_length=500, description="Where the player links: http(s) only.")


class AdUpdate(BaseModel):
    """Only the members given change; `active: false` stops serving the ad and keeps its figures."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    advertiser: str | None = Field(None, max_length=200)
    click_url: str | None = Field(None, max_length=500)
    active: bool | None = None
