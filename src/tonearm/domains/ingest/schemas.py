"""Request bodies of the ingest domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackEdit(BaseModel):
    """`PATCH /v1/tracks/{id}`: what an uploader may change of their track; absent fields stay."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = Field(None, max_length=2000)
    explicit: bool | None = None
    visibility: Literal["public", "private"] | None = None
    genres: list[str] | None = Field(None, max_length=10)
