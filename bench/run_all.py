"""Runs every benchmark in turn and prints their figures (see docs/benchmarks.md).

.venv/bin/python bench/run_all.py          # or: make bench
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ["transcode.py"],
    ["import_files.py", "--files", "10000"],
    ["api_tracks.py", "--tracks", "100000", "--workers", "1"],
    ["api_tracks.py", "--tracks", "100000", "--workers", "2"],
    ["search_engines.py", "--n", "1000000", "--engines", "tantivy"],
    ["search_postgres.py", "--n", "1000000", "--queries", "3000"],
    ["search_freshness.py"],
    ["search_api.py", "--tracks", "100000"],
    ["playlists.py"],
    ["history.py"],
    ["entitlements.py", "--db", "sqlite"],
    ["entitlements.py", "--db", "postgres"],
    ["licences.py"],
    ["recs.py", "--db", "sqlite"],
    ["recs.py", "--db", "postgres"],
    ["web_player.py"],
]


def main() -> int:
    failed = 0
    for bench in BENCHES:
        print(f"\n=== {' '.join(bench)} ===", flush=True)
        failed += (
            subprocess.run(
                [sys.executable, str(HERE / bench[0]), *bench[1:]], cwd=HERE, check=False
            ).returncode
            != 0
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
