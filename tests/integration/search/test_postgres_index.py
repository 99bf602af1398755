"""What only the PostgreSQL adapter has: a rebuild swapped in under live searches, one leader
among processes (an advisory lock), a position that outlives the process, and outages that
surface as SearchUnavailable. Against the real server at TONEARM_TEST_POSTGRES_URL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_URL
from tonearm.adapters.search.postgres import VERSION_TTL_S, PostgresSearchIndex
from tonearm.bootstrap import search_index_for
from tonearm.domains.search.query import parse
from tonearm.kernel.db import Database, make_engine
from tonearm.ports.search import SearchDoc, SearchIndex, SearchUnavailable


def ids(index: SearchIndex, q: str) -> list[str]:
    query = parse(q).for_kind("track", None)
    assert query is not None
    return index.search(query, limit=10, offset=0).ids


def tracks(prefix: str, name: str, n: int) -> list[SearchDoc]:
    return [SearchDoc("track", f"{prefix}{i}", f"{name} {i}", popularity=i) for i in range(n)]


def test_rebuild_swaps_under_live_searches(pg_search_url: str) -> None:
    index = PostgresSearchIndex(pg_search_url)
    index.upsert(tracks("old", "Harbour", 300))
    index.commit(1)
    seen: list[str] = []  # which index answered each search meanwhile: "old" or "new"
    failures: list[BaseException] = []
    stop = threading.Event()
    states = {("harbour ", 300): "old", ("lighthouse ", 0): "old", ("harbour ", 0): "new",
              ("lighthouse ", 400): "new"}  # fmt: skip

    def search_until_stopped() -> None:
        reader = PostgresSearchIndex(pg_search_url)
        try:
            while not stop.is_set():
                for q in ("harbour ", "lighthouse "):
                    query = parse(q).for_kind("track", None)
                    assert query is not None
                    total = reader.search(query, limit=5, offset=0).total
                    seen.append(states.get((q, total), f"{q!r} found {total}"))
        except BaseException as exc:
            failures.append(exc)
        finally:
            reader.close()

    thread = threading.Thread(target=search_until_stopped)
    thread.start()
    try:
        builder = index.rebuild()
        for start in range(0, 400, 100):
            builder.add(tracks("new", "Lighthouse", 400)[start : start + 100])
        time.sleep(0.1)
        assert ids(index, "lighthouse ") == []  # not before the swap
        builder.finish(2)
        time.sleep(0.2)  # the reader searches the new tables for a while
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    # The old index, then the new one: never a mix, nothing, or the old one again.
    switch = seen.index("new")
    assert switch > 0 and set(seen[:switch]) == {"old"} and set(seen[switch:]) == {"new"}, seen
    assert index.applied_seq() == 2 and index.count("track") == 400
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        schema = pg_search_url.split("%3D", 1)[1].split(",", 1)[0]
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        ).fetchall()
    assert [t for (t,) in tables] == ["search_docs", "search_meta", "search_words"]  # nothing left over
    index.close()


def test_aborted_rebuild_leaves_the_live_index_alone(pg_search_url: str) -> None:
    index = PostgresSearchIndex(pg_search_url)
    index.upsert(tracks("a", "Harbour", 3))
    index.commit(4)
    builder = index.rebuild()
    builder.add(tracks("b", "Lighthouse", 3))
    builder.abort()
    assert ids(index, "harbour ") == ["a2", "a1", "a0"]
    assert ids(index, "lighthouse ") == [] and index.applied_seq() == 4
    index.close()


def test_one_leader_among_processes(pg_search_url: str) -> None:
    # Two instances stand for two processes: each holds its own session for the advisory lock.
    first, second = PostgresSearchIndex(pg_search_url), PostgresSearchIndex(pg_search_url)
    try:
        assert first.try_lead()
        assert first.try_lead()  # still the leader
        assert not second.try_lead()
        first.close()  # its session ends, and the lock with it
        assert second.try_lead()
    finally:
        first.close()
        second.close()


def test_the_leader_lock_is_per_schema(pg_search_url: str) -> None:
    other_url = pg_search_url.replace("%3D", "%3Dother_", 1)  # another index in the same database
    a, b = PostgresSearchIndex(pg_search_url), PostgresSearchIndex(other_url)
    try:
        assert a.try_lead() and b.try_lead()
    finally:
        a.close()
        b.close()


def test_applied_seq_and_documents_outlive_the_process(pg_search_url: str) -> None:
    index = PostgresSearchIndex(pg_search_url)
    assert index.applied_seq() == 0
    index.upsert([SearchDoc("track", "a", "Harbour Lights", artists=("Fog Horn",))])
    index.commit(17)
    index.upsert([SearchDoc("track", "b", "Never Committed")])  # buffered only: lost with the process
    index.close()
    again = PostgresSearchIndex(pg_search_url)
    try:
        assert again.applied_seq() == 17
        assert ids(again, "harbor lights ") == ["a"]  # the vocabulary came along: typos still work
        assert ids(again, "never ") == [] and again.count("track") == 1
    finally:
        again.close()


def test_a_commit_after_a_rebuild_elsewhere_asks_for_a_replay(pg_search_url: str) -> None:
    leader, other = PostgresSearchIndex(pg_search_url), PostgresSearchIndex(pg_search_url)
    try:
        assert leader.applied_seq() == 0
        leader.upsert([SearchDoc("track", "stale", "Stale Copy")])
        builder = other.rebuild()
        builder.add([SearchDoc("track", "fresh", "Fresh Copy")])
        builder.finish(9)
        with pytest.raises(SearchUnavailable, match="rebuilt"):
            leader.commit(10)  # read against the replaced index: the caller replays from 9
        assert leader.applied_seq() == 9
        leader.upsert([SearchDoc("track", "later", "Later Song")])
        leader.commit(11)
        assert ids(leader, "copy ") == ["fresh"] and ids(leader, "later ") == ["later"]
    finally:
        leader.close()
        other.close()


def test_unreachable_database_is_unavailable() -> None:
    index = PostgresSearchIndex("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1")
    query = parse("harbour ").for_kind("track", None)
    assert query is not None
    try:
        with pytest.raises(SearchUnavailable):
            index.search(query, limit=10, offset=0)
        with pytest.raises(SearchUnavailable):
            index.applied_seq()
        with pytest.raises(SearchUnavailable):
            index.commit(1)
        assert not index.try_lead()
    finally:
        index.close()


def test_a_dropped_table_is_unavailable_not_a_crash(pg_search_url: str) -> None:
    index = PostgresSearchIndex(pg_search_url)
    index.upsert(tracks("a", "Harbour", 2))
    index.commit(1)
    assert ids(index, "harbour ") == ["a1", "a0"]
    schema = pg_search_url.split("%3D", 1)[1].split(",", 1)[0]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {schema}.search_docs")
    with pytest.raises(SearchUnavailable, match="search_docs"):
        ids(index, "harbour ")
    with pytest.raises(SearchUnavailable):
        index.count("track")
    builder = index.rebuild()  # a reindex brings it back
    builder.add(tracks("b", "Harbour", 1))
    builder.finish(5)
    assert ids(index, "harbour ") == ["b0"] and index.applied_seq() == 5
    index.close()


def test_a_slow_query_times_out_as_unavailable(pg_search_url: str) -> None:
    index = PostgresSearchIndex(pg_search_url, statement_timeout_ms=50)
    index.upsert(tracks("a", "Harbour", 2))
    index.commit(1)
    schema = pg_search_url.split("%3D", 1)[1].split(",", 1)[0]
    with psycopg.connect(PG_URL) as locker:  # holds a lock that every search waits for
        locker.execute(f"LOCK TABLE {schema}.search_docs IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match="QueryCanceled"):
            ids(index, "harbour ")
        assert time.monotonic() - started < 1.5
        locker.rollback()
    assert ids(index, "harbour ") == ["a1", "a0"]  # the pool's connection still works
    index.close()


def test_bootstrap_picks_postgres_by_url(pg_search_url: str, tmp_path: Path) -> None:
    sqlite = Database(make_engine(f"sqlite:///{tmp_path / 'app.db'}"))
    try:
        index = search_index_for(pg_search_url, sqlite)
        assert isinstance(index, PostgresSearchIndex)
        index.close()
        with pytest.raises(ValueError, match="must be PostgreSQL"):
            search_index_for("db://", sqlite)
    finally:
        sqlite.dispose()
    app_db = Database(make_engine(pg_search_url))  # db://: the app's own PostgreSQL database
    try:
        index = search_index_for("db://", app_db)
        assert isinstance(index, PostgresSearchIndex)
        assert index.schema == pg_search_url.split("%3D")[1].split(",")[0]
        index.upsert(tracks("a", "Harbour", 1))
        index.commit(3)
        assert ids(index, "harbour ") == ["a0"]
        index.close()
    finally:
        app_db.dispose()


def new_version(index: PostgresSearchIndex, *old: object) -> object:
    deadline = time.monotonic() + 5  # a hang guard; the lag is VERSION_TTL_S
    while (version := index.version()) in old:
        assert time.monotonic() < deadline, version
        time.sleep(0.01)
    return version


def test_version_follows_commits_in_other_processes(pg_search_url: str) -> None:
    writer, reader = PostgresSearchIndex(pg_search_url), PostgresSearchIndex(pg_search_url)
    try:
        before = reader.version()
        time.sleep(VERSION_TTL_S * 2)
        assert reader.version() == before  # stable while nothing changes
        writer.upsert(tracks("a", "Harbour", 1))
        writer.commit(1)
        assert writer.version() != before  # the committing process at once
        after_commit = new_version(reader, before)  # others within VERSION_TTL_S
        builder = writer.rebuild()
        builder.finish(2)
        new_version(reader, before, after_commit)
    finally:
        writer.close()
        reader.close()


def test_rank_tiers_find_the_best_candidates(pg_search_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild makes rank tiers (partial indexes over bands of static rank) and broad queries
    read their matches best band first. They count exactly up to COUNT_CAP like a search without
    tiers, and above it take their candidates among the best matches by static rank, also for
    documents committed after the rebuild (each lands in the band its rank falls in)."""
    import tonearm.adapters.search.postgres as pg

    monkeypatch.setattr(pg, "COUNT_CAP", 40)  # "broad" from 41 matches on
    words = ["harbour", "harvest", "lights", "river", "night", "horizon", "ember", "hollow"]
    docs = [
        SearchDoc(
            "track",
            f"t{i}",
            " ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 4)) + f" x{i % 97}",
            artists=(f"Band {words[i % len(words)]}",),
            popularity=(i * 7919) % 5003,
            year=1990 + i % 30,
            genres=(("Rock", "Hip-Hop", "Jazz")[i % 3],),
        )
        for i in range(3000)
    ]
    index = PostgresSearchIndex(pg_search_url)
    try:
        builder = index.rebuild()
        builder.add(docs)
        builder.finish(1)
        index.upsert([SearchDoc("track", "late", "harbour lights", popularity=10**9)])
        index.commit(2)
        with index._conn() as conn:
            names = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexdef LIKE '%USING gin (tsv)%' ORDER BY 1"
            ).fetchall()
            # A band per tier and one for the rest: they replace the GIN index of every document.
            assert [n for (n,) in names] == [
                f"search_docs_tier{i}" for i in range(len(pg.TIER_FRACTIONS) + 1)
            ]
        texts = ["h", "ha", "har", "harb", "night h", "lights", "river ni", "year:1990-1999 h", "e", "x1",
                 "x12", "lihgts x12", "hollwo x13", "band x14", "horizo x15", "harvset x1",
                 "genre:rock h", "genre:hip-hop x12", "genre:jazz lihgts"]  # fmt: skip
        pages = [(20, 0), (20, 100), (200, 0)]
        queries = [(t, p, parse(t).for_kind("track", None)) for t in texts for p in pages]
        for scan_rows in (10**9, 0):  # a rare genre: its documents read; or one more GIN key
            monkeypatch.setattr(pg, "GENRE_SCAN_ROWS", scan_rows)
            index._short_cache.clear()
            with_tiers = {(t, p): index.search(q, limit=p[0], offset=p[1]) for t, p, q in queries if q}
            assert with_tiers[("har", (20, 0))].ids[0] == "late"
            assert all(
                with_tiers[(t, (20, 0))].ids for t in ("lihgts x12", "hollwo x13", "genre:jazz lihgts")
            )
            with index._conn() as conn:
                for t, (limit, offset), q in queries:
                    assert q is not None
                    hits = with_tiers[(t, (limit, offset))]
                    tsq = pg._tsquery(q.must, index._expand(conn, q.must))
                    years = q.years or (0, 9999)
                    ranked = conn.execute(
                        "SELECT id, rank FROM search_docs WHERE tsv @@ %s::tsquery AND "
                        "(%s::int[] IS NULL OR year BETWEEN %s AND %s) AND genre_keys @> %s "
                        "ORDER BY rank DESC",
                        (tsq, list(q.years) if q.years else None, *years, list(q.genres)),
                    ).fetchall()
                    if len(ranked) <= pg.COUNT_CAP:
                        assert hits.total == len(ranked), t
                    else:
                        assert hits.total > pg.COUNT_CAP, t
                        window = pg._window(offset, limit)
                        floor = ranked[min(window, len(ranked)) - 1][1]
                        best = {i for i, r in ranked if r >= floor}
                        assert set(hits.ids) <= best, t
        with index._conn() as conn:
            conn.execute("UPDATE search_meta SET tiers = NULL")  # the paths without tiers
            conn.execute("CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv)")
        for t, (limit, offset), q in queries:
            assert q is not None
            hits = index.search(q, limit=limit, offset=offset)
            if hits.total <= pg.COUNT_CAP:
                assert hits == with_tiers[(t, (limit, offset))], t
    finally:
        index.close()
