"""Search index adapters for the contract suite, each one fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from tonearm.ports.search import SearchIndex

ADAPTERS = ["memory", "tantivy", "postgres"]


def make_index(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> SearchIndex:
    """A new, empty index of this adapter (PostgreSQL: in a private schema that the
    `pg_search_url` fixture drops after the test)."""
    if kind == "memory":
        from tonearm.adapters.search.memory import MemorySearchIndex

        return MemorySearchIndex()
    if kind == "tantivy":
        from tonearm.adapters.search.tantivy import TantivySearchIndex

        return TantivySearchIndex(tmp_path / "search")
    if kind == "postgres":
        from tonearm.adapters.search.postgres import PostgresSearchIndex

        return PostgresSearchIndex(request.getfixturevalue("pg_search_url"))
    raise ValueError(kind)
