"""bench/recs_data.py at a small size on SQLite: the counts it reports are in the database, and
its listening scores are exactly what HistoryService.import_plays makes of the same plays."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from tests.helpers import make_settings
from tonearm.bootstrap import bootstrap
from tonearm.domains.history.service import ImportedPlay
from tonearm.domains.history.tables import listening_scores, playbacks, plays
from tonearm.domains.library.tables import track_likes

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def recs_data() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))  # the bench scripts import their `_common` as a top-level module
    try:
        yield importlib.import_module("recs_data")
    finally:
        sys.path.remove(str(BENCH))


def test_small_dataset_is_consistent(recs_data: ModuleType, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'recs.db'}"
    out = recs_data.make_dataset(url, users=500, tracks=2000, plays=20_000, progress=False)
    assert out["plays"] == 20_000 and out["users"] == 500 and out["tracks"] == 2000
    c = bootstrap(make_settings(tmp_path, url))
    try:
        with c.db.read() as conn:

            def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
                return int(
                    conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
                )

            assert count(plays) == out["plays"] and count(track_likes) == out["likes"]
            assert (
                count(playbacks, playbacks.c.counted.is_(False), playbacks.c.ms_played < 30_000)
                == out["skips"]
            )
            assert count(listening_scores) == out["listening_scores"]
            ls = listening_scores
            totals = conn.execute(
                sa.select(ls.c.kind, sa.func.sum(ls.c.plays)).group_by(ls.c.kind).order_by(ls.c.kind)
            ).all()
            play_count = conn.execute(sa.text("SELECT sum(play_count) FROM tracks")).scalar_one()
            genres = conn.execute(sa.text("SELECT count(*) FROM genres")).scalar_one()
            busiest = conn.execute(
                sa.select(plays.c.user_id).group_by(plays.c.user_id).order_by(sa.func.count().desc()).limit(3)
            ).scalars()
            sample = {
                u: conn.execute(
                    sa.select(plays.c.track_id, plays.c.played_at, plays.c.ms_played).where(
                        plays.c.user_id == u
                    )
                ).all()
                for u in busiest
            }
        assert dict(totals)["track"] == play_count == 20_000 and dict(totals)["artist"] >= 20_000
        assert genres == 30
        # The same plays imported for a new listener score exactly the same.
        for user_id, rows in sample.items():
            twin = c.accounts.sign_up(f"twin-{user_id.lower()}@example.com", "correct horse", "Twin", None)
            assert c.history.import_plays(twin, [ImportedPlay(*r) for r in rows]) == len(rows)
            with c.db.read() as conn:
                cols = [ls.c.kind, ls.c.item_id, ls.c.plays, ls.c.ms_played, ls.c.short, ls.c.medium]
                cols.append(ls.c.last_played_at)
                made = set(conn.execute(sa.select(*cols).where(ls.c.user_id == user_id)))
                imported = set(conn.execute(sa.select(*cols).where(ls.c.user_id == twin)))
            assert made == imported and len(made) > 10
    finally:
        c.close()
