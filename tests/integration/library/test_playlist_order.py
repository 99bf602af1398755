"""Playlist order under random edits, against a Python list as the model: inserts at random
positions, moves of ranges (Spotify's range_start / insert_before / range_length) and removals by
position and by URI, through PlaylistService on SQLite and PostgreSQL. Half the runs lower the
renumbering threshold so that renumbering happens often, in the middle of everything else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import _pg_url, _private_pg_schema
from tests.helpers import make_settings
from tests.integration.api.test_search_api import seed
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import albums
from tonearm.domains.library import playlists as playlists_module
from tonearm.kernel.errors import BadRequest


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One database per backend for all examples (each example makes its own playlist)."""
    tmp: Path = tmp_path_factory.mktemp("order")
    with _private_pg_schema("o_") if request.param == "postgres" else _nothing() as schema:
        url = _pg_url(schema) if schema else f"sqlite:///{tmp / 'order.db'}"
        migrate.upgrade(url)
        c = bootstrap(make_settings(tmp, url, search_url="memory://"))
        try:
            user_id = c.accounts.sign_up("model@example.com", "a long password", "Model", None)
            tracks = list(seed(c).tracks.values())[:12]
            with c.db.write() as conn:  # no covers: the mosaic is tested elsewhere, order here
                conn.execute(sa.update(albums).values(image_id=None))
            yield {"c": c, "user": user_id, "tracks": tracks}
        finally:
            c.close()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


add = st.tuples(st.just("add"), st.floats(0, 1), st.lists(st.integers(0, 11), min_size=1, max_size=6))
op = st.one_of(
    add,
    add,  # twice as likely as the others, so playlists grow
    st.tuples(st.just("move"), st.floats(0, 1), st.floats(0, 1), st.integers(1, 4)),
    st.tuples(st.just("remove_at"), st.lists(st.floats(0, 1), min_size=1, max_size=3)),
    st.tuples(st.just("remove_uri"), st.integers(0, 11)),
)


def read_all(c: Container, user: str, playlist_id: str) -> list[str | None]:
    out: list[str | None] = []
    offset = 0
    while True:  # small pages: paging is part of what is checked
        page = orjson.loads(orjson.dumps(c.playlists.items(playlist_id, user, limit=7, offset=offset)))
        out += [i["track"]["id"] if i["track"] else None for i in page["items"]]
        if page["next"] is None:
            return out
        offset += 7


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=5, max_size=40), renumber_above=st.sampled_from([2, 3, 48]))
def test_random_edits_match_a_list(
    world: dict[str, Any], ops: list[tuple[Any, ...]], renumber_above: int
) -> None:
    c, user, pool = world["c"], world["user"], world["tracks"]
    svc = c.playlists
    playlist_id = svc.create(user, name="model")["id"]
    model: list[str | None] = []
    with mock.patch.object(playlists_module, "RENUMBER_ABOVE", renumber_above):
        for kind, *args in ops:
            n = len(model)
            if kind == "add":
                at, picks = round(args[0] * n), [pool[i] for i in args[1]]
                svc.add(user, playlist_id, picks, position=at)
                model[at:at] = picks
            elif kind == "move":
                if n == 0:
                    with pytest.raises(BadRequest, match="the playlist is empty"):
                        svc.reorder(user, playlist_id, range_start=0, insert_before=0)
                    continue
                start = min(round(args[0] * (n - 1)), n - 1)
                length = min(args[2], n - start)
                before = round(args[1] * n)
                svc.reorder(user, playlist_id, range_start=start, insert_before=before, range_length=length)
                moved, rest = model[start : start + length], model[:start] + model[start + length :]
                at = before if before <= start else max(before - length, start)
                model[:] = rest[:at] + moved + rest[at:]
            elif kind == "remove_at":
                if n == 0:
                    continue
                positions = sorted({min(round(f * (n - 1)), n - 1) for f in args[0]})
                svc.remove(user, playlist_id, [(model[p], [p]) for p in positions])
                model = [t for i, t in enumerate(model) if i not in positions]
            else:
                track = pool[args[0]]
                svc.remove(user, playlist_id, [(track, None)])
                model = [t for t in model if t != track]
            assert read_all(c, user, playlist_id) == model, (kind, args)
