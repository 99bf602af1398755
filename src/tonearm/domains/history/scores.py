"""Decayed listening scores: what `listening_scores.short` and `.medium` hold.

A play at time t adds `2 ** ((t - SCORE_EPOCH) / half_life)` to its track's and artists' scores.
At any later moment T every score, divided by the same `2 ** ((T - SCORE_EPOCH) / half_life)`,
is the play count decayed by half every half-life; the divisor is common to all rows, so ordering
by the stored sum ranks "what this listener played most, lately" without ever rewriting a row or
rescanning plays. Adding to a row is one `UPDATE ... SET short = short + x`.

Half-lives: 14 days for short_term and 90 days for medium_term (a play weighs as much as two
plays one half-life earlier). Spotify's windows (about 4 weeks and 6 months) are enforced on top,
with `last_played_at`, when the lists are read.

Range (IEEE doubles, largest about 2 ** 1024). A term reaches 2 ** 1024 after 1024 half-lives:
for `short` that is 1024 x 14 days = 39.2 years after the epoch. Leaving room for 2 ** 29 plays
in one row (a play a minute for a thousand years), scores stay finite for plays until 994 x 14
days = 38.1 years after 2025-01-01, i.e. early 2063 (`medium`: 994 x 90 days, until about 2269).
Before the epoch terms shrink: `short` loses precision for plays before 1986 and underflows to 0
before 1984
(imported plays can be that old: they still count in `plays` and `medium`). `MAX_SCORE_TIME` is the
limit (later plays are scored as of then); before 2063 a migration must rebase: move the epoch
forward by k half-lives and multiply every stored score by 2 ** -k (exact in binary floating
point, so rankings do not change). Precision: a double holds 53 bits, so in one row a play more
than 53 half-lives older than the newest (2 years for `short`) no longer moves its sum; by then it
has decayed to nothing anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SCORE_EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SHORT_HALF_LIFE = dt.timedelta(days=14)
MEDIUM_HALF_LIFE = dt.timedelta(days=90)
# Spotify's windows: "approximately last 4 weeks" and "approximately last 6 months".
SHORT_WINDOW = dt.timedelta(weeks=4)
MEDIUM_WINDOW = dt.timedelta(days=182)
# Plays after this would overflow `short` (see the module docstring).
MAX_SCORE_TIME = SCORE_EPOCH + 994 * SHORT_HALF_LIFE

_SHORT_S = SHORT_HALF_LIFE.total_seconds()
_MEDIUM_S = MEDIUM_HALF_LIFE.total_seconds()


def decayed(played_at: dt.datetime) -> tuple[float, float]:
    """The (short, medium) score terms of one play."""
    age_s = (min(played_at, MAX_SCORE_TIME) - SCORE_EPOCH).total_seconds()
    return 2.0 ** (age_s / _SHORT_S), 2.0 ** (age_s / _MEDIUM_S)


def score_rows(
    user_id: str,
    new_plays: Iterable[tuple[str, dt.datetime, int]],
    artists_of: Mapping[str, Sequence[str]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """What (track_id, played_at, ms_played) plays add to one listener's `listening_scores`, per
    (kind, item_id): the rows to upsert (added to a row already there). Summed in the order given;
    the live path, `HistoryService.import_plays` and the benchmark data all add up through here."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for track_id, played_at, ms_played in new_plays:
        short, medium = decayed(played_at)
        for kind, item_id in [("track", track_id), *(("artist", a) for a in artists_of.get(track_id, ()))]:
            row = rows.get((kind, item_id))
            if row is None:
                rows[(kind, item_id)] = {
                    "user_id": user_id,
                    "kind": kind,
                    "item_id": item_id,
                    "plays": 1,
                    "ms_played": ms_played,
                    "short": short,
                    "medium": medium,
                    "last_played_at": played_at,
                }
            else:
                row["plays"] += 1
                row["ms_played"] += ms_played
                row["short"] += short
                row["medium"] += medium
                row["last_played_at"] = max(row["last_played_at"], played_at)
    return rows
