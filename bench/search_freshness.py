"""How long a catalog change takes to reach search results (the issue: "within a second").

A catalog of --tracks tracks (metadata only) is indexed once; then --edits times a track is
renamed through the same service call `PATCH /v1/tracks/{id}` makes, and the clock runs until the
index, polled as a listener's search would, finds the new title. The indexer runs as it does in
`tonearm serve`: a thread polling the change log every `search_poll_s` (0.25 s), woken at once by
changes made in its own process. Both cases are measured: a change made in the indexer's process
(an upload finishing in an in-process worker) and one made by another process (a separate
`tonearm worker`, or another web worker), which only the poll notices.

    .venv/bin/python bench/search_freshness.py [--tracks 100000] [--edits 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine, seed_catalog
from tonearm.bootstrap import bootstrap
from tonearm.config import Settings
from tonearm.domains.accounts.service import Principal
from tonearm.domains.ingest.schemas import TrackEdit
from tonearm.domains.search.query import parse

ADMIN = Principal(user_id="bench", session_id="bench", role="admin", product="premium", display_name="bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--edits", type=int, default=50)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = f"sqlite:///{data / 'tonearm.db'}"
        ids = seed_catalog(url, args.tracks)
        settings = Settings(
            data_dir=data, database_url=url, secret_key="b" * 40, log_json=False, log_level="WARNING"
        )
        c = bootstrap(settings)
        t0 = time.perf_counter()
        result = c.indexer.reindex()
        print(
            f"indexed {result.documents} documents of a {args.tracks}-track catalog "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        c.indexer.start()
        other = bootstrap(settings)  # stands for another process: its changes cannot wake c's indexer
        try:
            for label, editor in (("same process (woken)", c), ("another process (polled)", other)):
                waits = []
                for i in range(args.edits):
                    track_id = ids[(i * 7919) % len(ids)]
                    word = f"freshness{label[:4]}{i}x"
                    query = parse(word + " ").for_kind("track", None)
                    assert query is not None
                    started = time.perf_counter()
                    editor.ingest.edit_track(ADMIN, track_id, TrackEdit(name=f"Renamed {word}"))
                    while c.search_index.search(query, limit=1, offset=0).ids != [track_id]:
                        time.sleep(0.002)
                        if time.perf_counter() - started > 30:
                            raise SystemExit(f"{label}: the edit of {track_id} never reached the index")
                    waits.append((time.perf_counter() - started) * 1000)
                waits.sort()
                p99 = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))]
                print(
                    f"{label:26s} edit -> searchable: median {statistics.median(waits):6.1f} ms, "
                    f"p99 {p99:6.1f} ms, max {waits[-1]:6.1f} ms over {len(waits)} edits"
                )
        finally:
            other.close()
            c.close()


if __name__ == "__main__":
    main()
