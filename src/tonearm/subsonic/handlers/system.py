"""System: ping, getLicense, getOpenSubsonicExtensions, tokenInfo."""

from __future__ import annotations

from typing import Any

from tonearm.subsonic.protocol import METHODS, Call, method

# OpenSubsonic extensions and the methods each needs: one is advertised only when all of its
# methods are registered, so the list cannot claim more than the server does.
EXTENSIONS: dict[str, tuple[list[int], tuple[str, ...]]] = {
    "apiKeyAuthentication": ([1], ("tokenInfo",)),
    "formPost": ([1], ("ping",)),
    "songLyrics": ([1], ("getLyricsBySongId",)),
    "transcodeOffset": ([1], ("stream",)),
    "indexBasedQueue": ([1], ("getPlayQueueByIndex", "savePlayQueueByIndex")),
    "playbackReport": ([1], ("reportPlayback",)),
}


@method("ping", inline=True)
def ping(call: Call) -> None:
    return None


@method("getLicense", inline=True)
def get_license(call: Call) -> dict[str, Any]:
    # Tonearm is free software: there is no licence to check, ever.
    return {"license": {"valid": True}}


@method("getOpenSubsonicExtensions", auth=False, inline=True)
def get_open_subsonic_extensions(call: Call) -> dict[str, Any]:
    return {
        "openSubsonicExtensions": [
            {"name": name, "versions": versions}
            for name, (versions, needs) in EXTENSIONS.items()
            if all(m in METHODS for m in needs)
        ]
    }


@method("tokenInfo", inline=True)
def token_info(call: Call) -> dict[str, Any]:
    assert call.caller is not None
    return {"tokenInfo": {"username": call.caller.username}}
