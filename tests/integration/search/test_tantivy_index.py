"""What only the tantivy adapter has: one writer among processes, readers that follow commits and
rebuilds, and an upgrade path when the schema changes."""

from __future__ import annotations

import time
from pathlib import Path

from tonearm.adapters.search.tantivy import TantivySearchIndex
from tonearm.domains.search.query import parse
from tonearm.ports.search import SearchDoc, SearchIndex


def ids(index: SearchIndex, q: str) -> list[str]:
    query = parse(q).for_kind("track", None)
    assert query is not None
    return index.search(query, limit=10, offset=0).ids


def eventually(index: SearchIndex, q: str, expected: list[str]) -> None:
    deadline = time.monotonic() + 10  # a hang guard, not a latency requirement
    while ids(index, q) != expected:
        assert time.monotonic() < deadline, f"{q!r}: {ids(index, q)}"
        time.sleep(0.02)


def test_one_writer_and_readers_that_follow(tmp_path: Path) -> None:
    # Two instances stand for two processes: flock() locks belong to the open file, not the process.
    writer, reader = TantivySearchIndex(tmp_path), TantivySearchIndex(tmp_path)
    try:
        assert writer.try_lead() and not reader.try_lead()
        writer.upsert([SearchDoc("track", "a", "Harbour Lights")])
        writer.commit(3)
        eventually(reader, "harbour ", ["a"])
        assert reader.applied_seq() == 3

        builder = reader.rebuild()  # a reindex may run in any process
        builder.add([SearchDoc("track", "b", "Fog Horn")])
        builder.finish(5)
        eventually(writer, "fog ", ["b"])
        assert writer.applied_seq() == 5 and ids(writer, "harbour ") == []
        writer.upsert([SearchDoc("track", "c", "Lighthouse")])  # the leader writes to the new generation
        writer.commit(6)
        eventually(reader, "lighthouse ", ["c"])
        assert len(list(tmp_path.glob("gen-*"))) == 1  # the old generation is gone
    finally:
        writer.close()
        reader.close()
    again = TantivySearchIndex(tmp_path)
    try:
        assert again.try_lead()  # the lock went with its holder
    finally:
        again.close()


def test_an_index_of_an_older_schema_starts_over(tmp_path: Path) -> None:
    index = TantivySearchIndex(tmp_path)
    index.upsert([SearchDoc("track", "a", "Harbour Lights")])
    index.commit(9)
    index.close()
    current = (tmp_path / "CURRENT").read_text().strip()
    (tmp_path / current / "schema").write_text("0")  # as written by an older version
    upgraded = TantivySearchIndex(tmp_path)
    try:
        assert upgraded.applied_seq() == 0 and upgraded.count("track") == 0  # the indexer rebuilds it
        assert ids(upgraded, "harbour ") == []
    finally:
        upgraded.close()


def test_processes_with_different_hash_seeds_read_each_others_index(tmp_path: Path) -> None:
    """Queries name fields by number in the searching process's schema: a process started with
    another PYTHONHASHSEED must number them like the one that wrote the index."""
    import os
    import subprocess
    import sys

    script = """
import sys
from pathlib import Path
from tonearm.adapters.search.tantivy import TantivySearchIndex
from tonearm.domains.search.query import parse
from tonearm.ports.search import SearchDoc
index = TantivySearchIndex(Path(sys.argv[1]))
if sys.argv[2] == "write":
    index.upsert([SearchDoc("track", "t", "Nocturne", artists=("Zed Ensemble",), album="Quiet Hours")])
    index.commit(1)
# Two-letter prefixes (the *_pfx fields), each asked of its own field and of another one.
for q in ("artist:ze", "album:qu", "track:no", "artist:qu", "album:no", "track:ze"):
    print(q, index.search(parse(q).for_kind("track", None), limit=5, offset=0).ids)
"""
    outputs = []
    for seed, mode in (("1", "write"), ("2", "read"), ("3", "read"), ("4", "read")):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), mode], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0].splitlines() == [
        "artist:ze ['t']",
        "album:qu ['t']",
        "track:no ['t']",
        "artist:qu []",
        "album:no []",
        "track:ze []",
    ]
    assert outputs[1:] == outputs[:1] * 3
