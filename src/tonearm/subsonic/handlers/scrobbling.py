"""Media annotation: scrobble and reportPlayback (the playbackReport extension).

Plays land in the history the web player writes (HistoryService): `plays`, the listener's
`listening_scores` and the tracks' play counts, so top lists, "recently played" and Subsonic's
`playCount` all see them. Two roads, never both for one listening:

- `scrobble` (submission=true) says "this was heard": one play per id, dated by `time` (else
  now), unless a play of that song by that listener is already stored within the song's length
  of it (the same listening, reported twice: see HistoryService.add_listens).
- `reportPlayback` reports the playhead; it becomes player events of one playback (`starting`
  begins it), and the playback counts as a play when 30 s have been heard, exactly as in the web
  player. `ignoreScrobble=true` only updates now-playing.

Both keep `now_playing` (what getNowPlaying shows): the last song each listener's app reported.
"""

from __future__ import annotations

import datetime as dt
import re

from tonearm.domains.history.schemas import PlayerEvent
from tonearm.domains.history.service import ImportedPlay
from tonearm.domains.streaming.service import PlaybackInfo
from tonearm.kernel.errors import NotFound
from tonearm.kernel.ids import is_valid_id
from tonearm.subsonic.protocol import GENERIC, Call, SubsonicError, method, missing, not_found

# reportPlayback's states, the player event each becomes, and a letter for the event's id.
_STATES: dict[str, tuple[str, str]] = {
    "starting": ("start", "s"),
    "playing": ("progress", "p"),
    "paused": ("pause", "z"),
    "stopped": ("end", "x"),
}
# The extension's rule: events for a playback stop 30 minutes after its planned end.
_SESSION_GRACE = dt.timedelta(minutes=30)
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_RATE_RE = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,6})?$")
_PLAYBACK_PREFIX = "ss-"  # the playbacks reportPlayback makes (the web player's ids are UUIDs)


def _info(call: Call, track_id: str) -> PlaybackInfo:
    if not is_valid_id(track_id):
        raise not_found("Song")
    try:
        return call.c.streaming.visible_info(track_id, call.user_id)
    except NotFound:
        raise not_found("Song") from None


def _session_start(
    call: Call, info: PlaybackInfo, started_at: dt.datetime, *, stale_after: dt.timedelta
) -> dt.datetime:
    """Sets now-playing to this song unless the app is already playing it (an entry for the
    same song, younger than `stale_after` past its start): then that entry, and its start,
    stay. Returns the start of the listening now shown."""
    history = call.c.history
    current = history.now_playing_of(call.user_id)
    now = call.c.clock.now()
    if current is not None and current.track_id == info.track_id and current.started_at + stale_after > now:
        return current.started_at
    history.set_now_playing(call.user_id, info.track_id, call.client, started_at)
    return started_at


@method("scrobble")
def scrobble(call: Call) -> None:
    ids = call.params.all("id")
    if not ids:
        raise missing("id")
    times = call.params.all("time")
    if times and len(times) != len(ids):
        raise SubsonicError(GENERIC, "Parameter time: give one time per id, or none")
    submission = call.params.bool("submission", True)
    now = call.c.clock.now()
    at: list[dt.datetime] = []
    for raw in times:
        if not raw.isdigit() or int(raw) > _MAX_MS:
            raise SubsonicError(GENERIC, f"Parameter time must be milliseconds since 1970, not {raw[:40]!r}")
        at.append(dt.datetime.fromtimestamp(int(raw) / 1000, dt.UTC))
    infos = [_info(call, i) for i in ids]  # all or nothing: one unknown id, and nothing is counted
    if not submission:
        # "Now playing" names one song: the last given (an app sends one).
        info = infos[-1]
        started = at[-1] if at else now
        _session_start(call, info, started, stale_after=dt.timedelta(milliseconds=info.duration_ms))
        return
    listens = [
        # A scrobble says the song was heard, not for how long: its length is the best figure.
        ImportedPlay(info.track_id, at[n] if at else now, info.duration_ms)
        for n, info in enumerate(infos)
    ]
    call.c.history.add_listens(call.user_id, listens)
    return


@method("reportPlayback")
def report_playback(call: Call) -> None:
    media_id = call.params.req("mediaId")
    media_type = call.params.req("mediaType")
    position = call.params.int("positionMs", lo=0)
    state = call.params.req("state")
    raw_rate = call.params.opt("playbackRate") or "1.0"
    ignore = call.params.bool("ignoreScrobble", False)
    if media_type == "podcast":
        raise not_found("Podcast episode")  # Tonearm has no podcasts
    if media_type != "song":
        raise SubsonicError(GENERIC, f"Parameter mediaType must be song or podcast, not {media_type[:40]!r}")
    if state not in _STATES:
        raise SubsonicError(
            GENERIC, f"Parameter state must be one of {', '.join(_STATES)}, not {state[:40]!r}"
        )
    if not _RATE_RE.match(raw_rate) or not 0 < float(raw_rate) <= 16:
        raise SubsonicError(GENERIC, f"Parameter playbackRate must be a speed above 0, not {raw_rate[:40]!r}")
    rate = float(raw_rate)
    info = _info(call, media_id)
    position = min(position, info.duration_ms)
    history = call.c.history
    now = call.c.clock.now()
    heard_for = dt.timedelta(milliseconds=position / rate)
    session = dt.timedelta(milliseconds=info.duration_ms / rate) + _SESSION_GRACE
    if state == "starting":  # a new listening, even of the same song again (repeat)
        history.set_now_playing(call.user_id, info.track_id, call.client, now - heard_for)
    elif state == "stopped":
        history.clear_now_playing(call.user_id, info.track_id)
    else:
        _session_start(call, info, now - heard_for, stale_after=session)
    if ignore:
        return
    # Reports carry no playback id: `starting` begins a playback, and every later report of the
    # song (a retried one, one after `stopped`) goes on with this app's latest playback of it,
    # which counts as a play once (HistoryService.record) however often it is reported.
    playback_id = (
        None
        if state == "starting"
        else history.latest_playback(call.user_id, info.track_id, _PLAYBACK_PREFIX, now - session)
    )
    playback_id = playback_id or f"{_PLAYBACK_PREFIX}{info.track_id}-{int(now.timestamp() * 1000)}"
    event_type, letter = _STATES[state]
    event = PlayerEvent(
        id=f"{playback_id}-{letter}{position}",
        type=event_type,
        track_id=info.track_id,
        playback_id=playback_id,
        timestamp=now,
        position_ms=position,
    )
    result = history.record(call.user_id, [event])
    if result["rejected"]:
        raise SubsonicError(GENERIC, str(result["rejected"][0].get("reason", "the report was refused")))
