"""Request bodies for the devices API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DeviceKind = Literal["browser", "phone", "desktop", "speaker"]
MAX_IDS = 10_000


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Shown in the account's device list.")
    kind: DeviceKind


class DeviceRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class DownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=MAX_IDS, description="Track ids, at most 10,000.")
    rendition: str | None = Field(
        None,
        max_length=16,
        description="Which rendition to download (aac_320 by default; aac_160, opus_96, original...).",
    )


class TrackIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=MAX_IDS)
