"""Importing past listening (HistoryService.import_plays), on SQLite and PostgreSQL: imported plays
score exactly as counted ones, reach the top lists whatever their age, re-importing adds nothing,
and a bad batch writes nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.helpers import make_settings
from tests.integration.api.test_search_api import seed
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.schemas import PlayerEvent
from tonearm.domains.history.service import ImportedPlay
from tonearm.domains.history.tables import listening_scores, plays
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.errors import BadRequest, NotFound

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def container(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url), clock=clock)
    yield c
    c.close()


def _user(c: Container, name: str) -> str:
    return c.accounts.sign_up(f"{name}@example.com", "correct horse", name, None)


def _scores(c: Container, user_id: str) -> dict[tuple[str, str], Any]:
    with c.db.read() as conn:
        rows = conn.execute(sa.select(listening_scores).where(listening_scores.c.user_id == user_id))
        return {(r.kind, r.item_id): r for r in rows}


def _play_counts(c: Container) -> dict[str, int]:
    with c.db.read() as conn:
        return {r.id: r.play_count for r in conn.execute(sa.select(tracks.c.id, tracks.c.play_count))}


def _json(body: dict[str, Any]) -> Any:
    """The answer as a client reads it (items hold pre-serialized objects)."""
    return orjson.loads(orjson.dumps(body))


def _top(c: Container, user_id: str, type_: str, time_range: str, key: str = "id") -> list[str]:
    return [i[key] for i in _json(c.history.top(user_id, type_, time_range=time_range))["items"]]


def _listen_live(c: Container, user_id: str, schedule: list[tuple[str, dt.datetime]]) -> None:
    """Each (track, start): a start and an `end` 40 s later, counted when 30 s had been heard."""
    events = []
    for n, (track_id, at) in enumerate(schedule):
        pb = f"live{n}"
        events += [
            PlayerEvent(id=f"{pb}-s", type="start", track_id=track_id, playback_id=pb, timestamp=at),
            PlayerEvent(
                id=f"{pb}-e",
                type="end",
                track_id=track_id,
                playback_id=pb,
                timestamp=at + dt.timedelta(seconds=40),
                ms_played=40_000,
            ),
        ]
    for i in range(0, len(events), 100):
        assert c.history.record(user_id, events[i : i + 100])["rejected"] == []


def test_imported_plays_score_exactly_as_counted_ones(container: Container) -> None:
    ids = seed(container).tracks
    ada, bob = _user(container, "ada"), _user(container, "bob")
    titles = ["Don't Stop Me Now", "Bohemian Rhapsody", "Yesterday", "Halo", "Don't Stop Me Now"]
    schedule = [
        (ids[t], NOW - dt.timedelta(days=d, hours=h)) for d in (1, 6, 17, 28) for h, t in enumerate(titles)
    ]
    before = _play_counts(container)
    _listen_live(container, ada, schedule)
    with container.db.read() as conn:
        counted = conn.execute(
            sa.select(plays.c.track_id, plays.c.played_at, plays.c.ms_played).where(plays.c.user_id == ada)
        ).all()
    assert len(counted) == len(schedule)

    added = container.history.import_plays(bob, [ImportedPlay(t, at, ms) for t, at, ms in counted])
    assert added == len(schedule)
    live, imported = _scores(container, ada), _scores(container, bob)
    assert live.keys() == imported.keys() and len(live) == 4 + 3  # 4 tracks; Queen, Beatles, Beyoncé
    for key, row in live.items():
        other = imported[key]
        assert (other.plays, other.ms_played, other.last_played_at) == (
            row.plays,
            row.ms_played,
            row.last_played_at,
        )
        assert other.short == pytest.approx(row.short, rel=1e-12)
        assert other.medium == pytest.approx(row.medium, rel=1e-12)
    after = _play_counts(container)
    for track_id in {t for t, _ in schedule}:
        assert after[track_id] - before[track_id] == 2 * sum(1 for t, _ in schedule if t == track_id)
    for time_range in ("short_term", "medium_term", "long_term"):
        for type_ in ("tracks", "artists"):
            mine = _top(container, ada, type_, time_range)
            assert mine and _top(container, bob, type_, time_range) == mine


def test_plays_of_any_age_reach_the_top_lists(container: Container) -> None:
    ids = seed(container).tracks
    ada = _user(container, "ada")
    year_ago, months_ago, last_week = (NOW - dt.timedelta(days=d) for d in (450, 100, 7))  # 2024, 2025, 2026
    rows = (
        [ImportedPlay(ids["Bohemian Rhapsody"], year_ago + dt.timedelta(hours=h), 354_000) for h in range(9)]
        + [ImportedPlay(ids["Yesterday"], months_ago + dt.timedelta(hours=h), 125_000) for h in range(5)]
        + [ImportedPlay(ids["Eple"], last_week, 220_000, "tonearm:album:x")]
    )
    assert container.history.import_plays(ada, rows) == 15

    def top(type_: str, time_range: str) -> list[str]:
        return _top(container, ada, type_, time_range, "name")

    assert top("tracks", "long_term") == ["Bohemian Rhapsody", "Yesterday", "Eple"]
    assert top("tracks", "medium_term") == ["Yesterday", "Eple"]  # 6 months: not last year's
    assert top("tracks", "short_term") == ["Eple"]
    assert top("artists", "long_term") == ["Queen", "The Beatles", "Röyksopp"]
    recent = _json(container.history.recently_played(ada, limit=50))
    assert len(recent["items"]) == 15 and recent["items"][0]["track"]["name"] == "Eple"
    # The year's summary reads the same plays.
    assert container.history.year_summary(ada, str(year_ago.year))["plays"] == 9


def test_reimporting_adds_nothing(container: Container) -> None:
    ids = seed(container).tracks
    ada = _user(container, "ada")
    rows = [ImportedPlay(ids["Halo"], NOW - dt.timedelta(days=50, minutes=m), 200_000) for m in range(10)]
    assert container.history.import_plays(ada, rows + rows[:3]) == 10  # repeats in a batch count once
    scores, counts = _scores(container, ada), _play_counts(container)
    # Again, overlapping a new play, with a different zone on the same instants.
    cet = dt.timezone(dt.timedelta(hours=1))
    again = [ImportedPlay(r.track_id, r.played_at.astimezone(cet), r.ms_played) for r in rows]
    extra = ImportedPlay(ids["Halo"], NOW - dt.timedelta(days=3), 200_000)
    assert container.history.import_plays(ada, [*again, extra]) == 1
    now_scores = _scores(container, ada)
    assert now_scores[("track", ids["Halo"])].plays == 11 == scores[("track", ids["Halo"])].plays + 1
    assert _play_counts(container)[ids["Halo"]] == counts[ids["Halo"]] + 1
    assert container.history.import_plays(ada, []) == 0


def test_a_bad_batch_writes_nothing(container: Container) -> None:
    ids = seed(container).tracks
    ada = _user(container, "ada")
    good = ImportedPlay(ids["Halo"], NOW - dt.timedelta(days=2), 200_000)
    with pytest.raises(NotFound):
        container.history.import_plays(ada, [good, ImportedPlay("0" * 22, NOW, 1000)])
    for bad in (
        ImportedPlay(ids["Halo"], NOW + dt.timedelta(hours=1), 1000),  # the future
        ImportedPlay(ids["Halo"], dt.datetime(2025, 1, 1), 1000),  # no time zone
        ImportedPlay(ids["Halo"], NOW, -1),
    ):
        with pytest.raises(BadRequest):
            container.history.import_plays(ada, [good, bad])
    assert _scores(container, ada) == {}
    with container.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(plays)).scalar_one() == 0


def test_twenty_thousand_plays_of_many_listeners_in_one_call(container: Container) -> None:
    track_ids = list(seed(container).tracks.values())
    users = [_user(container, f"u{n}") for n in range(20)]
    start = NOW - dt.timedelta(days=365)
    rows = {
        u: [
            ImportedPlay(
                track_ids[(n * 7 + i * i) % len(track_ids)], start + dt.timedelta(minutes=26 * i + n), 180_000
            )
            for i in range(1000)
        ]
        for n, u in enumerate(users)
    }
    t0 = time.perf_counter()
    assert container.history.import_plays_of(rows) == 20_000
    took = time.perf_counter() - t0
    assert took < 10, f"{took:.1f} s"
    with container.db.read() as conn:
        total = conn.execute(
            sa.select(sa.func.sum(listening_scores.c.plays)).where(listening_scores.c.kind == "track")
        ).scalar_one()
    assert total == 20_000
