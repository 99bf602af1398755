"""scrobble and reportPlayback: plays land in the same history as the web player's (plays,
listening scores, the track's play count), exactly once per listening; now-playing is kept for
getNowPlaying. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tests.integration.subsonic.conftest import Listener, World
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.tables import listening_scores, now_playing, plays

LENGTH_S = 180  # every seeded track


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _plays(world: World, who: Listener, track_id: str) -> tuple[int, int, int]:
    """(rows in plays, the listener's score plays, the track's play count)."""
    with world.c.db.read() as conn:
        rows = conn.execute(
            sa.select(sa.func.count())
            .select_from(plays)
            .where(plays.c.user_id == who.user_id, plays.c.track_id == track_id)
        ).scalar_one()
        score = conn.execute(
            sa.select(listening_scores.c.plays).where(
                listening_scores.c.user_id == who.user_id,
                listening_scores.c.kind == "track",
                listening_scores.c.item_id == track_id,
            )
        ).scalar()
        count = conn.execute(sa.select(tracks.c.play_count).where(tracks.c.id == track_id)).scalar_one()
    return int(rows), int(score or 0), int(count)


def _now_playing(world: World, who: Listener) -> tuple[str, str, dt.datetime] | None:
    with world.c.db.read() as conn:
        row = conn.execute(
            sa.select(now_playing.c.track_id, now_playing.c.client, now_playing.c.started_at).where(
                now_playing.c.user_id == who.user_id
            )
        ).first()
    return (row.track_id, row.client, row.started_at) if row else None


def test_a_scrobble_counts_exactly_one_play(world: World) -> None:
    who = world.new_listener()
    track = world.seeded.tracks["Eple"]
    before = _plays(world, who, track)[2]
    at = world.c.clock.now() - dt.timedelta(hours=1)
    assert world.rest("scrobble", who, id=track, time=_ms(at)) == world.rest("ping", who)
    assert _plays(world, who, track) == (1, 1, before + 1)
    # The same listening again (a retry, or another app reporting it): nothing more.
    world.rest("scrobble", who, id=track, time=_ms(at + dt.timedelta(seconds=60)))
    assert _plays(world, who, track) == (1, 1, before + 1)
    # The song played again right after: a second play.
    world.rest("scrobble", who, id=track, time=_ms(at + dt.timedelta(seconds=LENGTH_S)))
    assert _plays(world, who, track) == (2, 2, before + 2)
    # The listener's history shows it, as the web player's plays.
    recent = world.c.history.recently_played(who.user_id, limit=5)
    assert [item["played_at"][:19] for item in recent["items"]] == [
        (at + dt.timedelta(seconds=LENGTH_S)).strftime("%Y-%m-%dT%H:%M:%S"),
        at.strftime("%Y-%m-%dT%H:%M:%S"),
    ]


def test_scrobbling_several_songs_at_once(world: World) -> None:
    who = world.new_listener()
    a, b = world.seeded.tracks["Eple"], world.seeded.tracks["Halo"]
    t0 = world.c.clock.now() - dt.timedelta(days=400)  # any age: these were heard offline
    world.rest("scrobble", who, id=[a, b], time=[_ms(t0), _ms(t0 + dt.timedelta(minutes=4))])
    assert _plays(world, who, a)[:2] == (1, 1) and _plays(world, who, b)[:2] == (1, 1)
    # Without times: now.
    world.rest("scrobble", who, id=[b])
    assert _plays(world, who, b)[:2] == (2, 2)


def test_a_bad_scrobble_counts_nothing(world: World) -> None:
    who = world.new_listener()
    track = world.seeded.tracks["Eple"]
    secret = world.seeded.tracks["Secret Demo"]
    assert world.rest("scrobble", who, id=[track, secret])["error"]["code"] == 70
    assert world.rest("scrobble", who, id="0" * 22)["error"]["code"] == 70
    assert world.rest("scrobble", who)["error"]["code"] == 10
    assert world.rest("scrobble", who, id=[track, track], time=[1])["error"]["code"] == 0
    assert world.rest("scrobble", who, id=track, time="yesterday")["error"]["code"] == 0
    future = world.c.clock.now() + dt.timedelta(days=1)
    assert world.rest("scrobble", who, id=track, time=_ms(future))["error"]["code"] == 0
    assert world.rest("scrobble", who, id=track, submission="maybe")["error"]["code"] == 0
    assert _plays(world, who, track)[:2] == (0, 0)


def test_now_playing_is_recorded_without_a_play(world: World) -> None:
    who = world.new_listener()
    track = world.seeded.tracks["Halo"]
    world.rest("scrobble", who, id=track, submission="false", c="DSub")
    entry = _now_playing(world, who)
    assert entry is not None and entry[0] == track and entry[1] == "DSub"
    assert abs((world.c.clock.now() - entry[2]).total_seconds()) < 5
    assert _plays(world, who, track)[:2] == (0, 0)
    # The next song replaces it.
    other = world.seeded.tracks["Eple"]
    world.rest("scrobble", who, id=other, submission="false")
    now = _now_playing(world, who)
    assert now is not None and now[0] == other
    # Another listener's private song is not something one can be playing.
    secret = world.seeded.tracks["Secret Demo"]
    assert world.rest("scrobble", who, id=secret, submission="false")["error"]["code"] == 70


def _report(
    world: World, who: Listener, track: str, state: str, position_ms: int, **kw: str
) -> dict[str, Any]:
    return world.rest(
        "reportPlayback", who, mediaId=track, mediaType="song", positionMs=position_ms, state=state, **kw
    )


def test_report_playback_counts_one_play_after_30_seconds(world: World) -> None:
    who = world.new_listener()
    track = world.seeded.tracks["Eple"]
    assert "error" not in _report(world, who, track, "starting", 0)
    entry = _now_playing(world, who)
    assert entry is not None and entry[0] == track
    _report(world, who, track, "playing", 10_000)
    assert _plays(world, who, track)[:2] == (0, 0)
    _report(world, who, track, "playing", 31_000)
    assert _plays(world, who, track)[:2] == (1, 1)
    _report(world, who, track, "paused", 40_000)
    _report(world, who, track, "playing", 40_000)
    _report(world, who, track, "stopped", 90_000)
    assert _plays(world, who, track)[:2] == (1, 1)
    assert _now_playing(world, who) is None
    # The app also scrobbles what it reported: the same listening, not a second play.
    world.rest("scrobble", who, id=track)
    assert _plays(world, who, track)[:2] == (1, 1)
    # Starting the song again is a new listening.
    _report(world, who, track, "starting", 0)
    _report(world, who, track, "playing", 45_000)
    assert _plays(world, who, track)[:2] == (2, 2)


def test_report_playback_with_ignore_scrobble_only_sets_now_playing(world: World) -> None:
    who = world.new_listener()
    track = world.seeded.tracks["Halo"]
    _report(world, who, track, "starting", 0, ignoreScrobble="true")
    _report(world, who, track, "playing", 120_000, ignoreScrobble="true", playbackRate="2.0")
    entry = _now_playing(world, who)
    assert entry is not None and entry[0] == track
    assert _plays(world, who, track)[:2] == (0, 0)


def test_report_playback_refuses_bad_reports(world: World) -> None:
    who = world.new_listener()
    track = world.seeded.tracks["Eple"]
    assert _report(world, who, track, "rewinding", 0)["error"]["code"] == 0
    assert _report(world, who, track, "playing", 0, playbackRate="0")["error"]["code"] == 0
    assert _report(world, who, track, "playing", -5)["error"]["code"] == 0
    assert _report(world, who, world.seeded.tracks["Secret Demo"], "playing", 0)["error"]["code"] == 70
    podcast = world.rest(
        "reportPlayback", who, mediaId=track, mediaType="podcast", positionMs=0, state="playing"
    )
    assert podcast["error"]["code"] == 70
    missing = world.rest("reportPlayback", who, mediaId=track, mediaType="song", state="playing")
    assert missing["error"]["code"] == 10
    assert _now_playing(world, who) is None


def test_the_extensions_are_advertised(world: World) -> None:
    names = {e["name"] for e in world.rest("getOpenSubsonicExtensions")["openSubsonicExtensions"]}
    assert {"playbackReport", "songLyrics", "transcodeOffset"} <= names
