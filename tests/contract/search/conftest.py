"""Search index adapters for the contract suite, each one fresh. The PostgreSQL adapter joins
this list when it exists (see docs/search.md, "What is next")."""

from __future__ import annotations

from pathlib import Path

from tonearm.ports.search import SearchIndex


def make_index(kind: str, tmp_path: Path) -> SearchIndex:
    if kind == "memory":
        from tonearm.adapters.search.memory import MemorySearchIndex

        return MemorySearchIndex()
    if kind == "tantivy":
        from tonearm.adapters.search.tantivy import TantivySearchIndex

        return TantivySearchIndex(tmp_path / "search")
    raise ValueError(kind)
