"""Spotify's tunable track attributes on /v1/recommendations (`min_tempo`, `max_loudness`,
`target_duration_ms`, ...), for the attributes Tonearm measures: tempo (BPM, at ingest),
loudness (integrated LUFS, at ingest) and duration (ms).

`min_`/`max_` filter: a track whose value is unknown does not pass. `target_` steers: the score
loses one unit per `SCALE` of distance (20 BPM, 3 dB, one minute), a track of unknown value three.
Spotify's other attributes (energy, danceability, ...) are not measured here; they are accepted
and ignored, as Spotify ignores what it does not know, and named in the `X-Tonearm-Ignored`
response header so a client can tell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from tonearm.domains.catalog.tables import tracks
from tonearm.domains.recs.model import ATTRIBUTES
from tonearm.kernel.errors import BadRequest

SCALE = {"tempo": 20.0, "loudness": 3.0, "duration_ms": 60_000.0}
RANGE = {"tempo": (0.0, 400.0), "loudness": (-70.0, 10.0), "duration_ms": (0.0, 86_400_000.0)}
COLUMN = {
    "tempo": tracks.c.tempo_bpm,
    "loudness": tracks.c.loudness_lufs,
    "duration_ms": tracks.c.duration_ms,
}
NOT_MEASURED = (
    "acousticness",
    "danceability",
    "energy",
    "instrumentalness",
    "key",
    "liveness",
    "mode",
    "popularity",
    "speechiness",
    "time_signature",
    "valence",
)
_PARAM = re.compile(r"^(min|max|target)_([a-z_]+)$")
UNKNOWN_PENALTY = 3.0


@dataclass
class Tunable:
    attribute: str
    min: float | None = None
    max: float | None = None
    target: float | None = None


def parse(params: Iterable[tuple[str, str]]) -> tuple[list[Tunable], list[str]]:
    """The tunables asked for, and the Spotify parameters ignored; BadRequest for a value that is
    not a number, out of range, given twice, or a minimum above the maximum."""
    found: dict[str, Tunable] = {}
    ignored: list[str] = []
    seen: set[str] = set()
    for key, raw in params:
        m = _PARAM.match(key)
        if m is None:
            continue
        bound, attribute = m.groups()
        if attribute in NOT_MEASURED:
            ignored.append(key)
            continue
        if attribute not in ATTRIBUTES:
            raise BadRequest(
                f"{key}: unknown attribute {attribute!r}; Tonearm tunes tempo, loudness and duration_ms"
            )
        if key in seen:
            raise BadRequest(f"{key}: given twice")
        seen.add(key)
        try:
            value = float(raw)
        except ValueError:
            raise BadRequest(f"{key}: must be a number, not {raw[:40]!r}") from None
        lo, hi = RANGE[attribute]
        if not math.isfinite(value) or not lo <= value <= hi:
            raise BadRequest(f"{key}: must be between {lo:g} and {hi:g}")
        t = found.setdefault(attribute, Tunable(attribute))
        setattr(t, bound, value)
    for t in found.values():
        if t.min is not None and t.max is not None and t.min > t.max:
            raise BadRequest(f"min_{t.attribute} ({t.min:g}) is above max_{t.attribute} ({t.max:g})")
    return list(found.values()), sorted(set(ignored))


def allowed(attrs: npt.NDArray[np.float32], tunables: Iterable[Tunable]) -> npt.NDArray[np.bool_] | None:
    """Which items pass every min/max (None: no filter asked for)."""
    mask: npt.NDArray[np.bool_] | None = None
    for t in tunables:
        col = attrs[:, ATTRIBUTES.index(t.attribute)]
        known = ~np.isnan(col)
        with np.errstate(invalid="ignore"):  # NaN compares false: unknown values never pass
            if t.min is not None:
                passed = known & (col >= t.min)
                mask = passed if mask is None else mask & passed
            if t.max is not None:
                passed = known & (col <= t.max)
                mask = passed if mask is None else mask & passed
    return mask


def penalty(attrs: npt.NDArray[np.float32], tunables: Iterable[Tunable]) -> npt.NDArray[np.float32] | None:
    """What each item's score loses for its distance from the targets (None: no target)."""
    out: npt.NDArray[np.float32] | None = None
    for t in tunables:
        if t.target is None:
            continue
        col = attrs[:, ATTRIBUTES.index(t.attribute)]
        dist = np.abs(col - t.target) / SCALE[t.attribute]
        p = np.where(np.isnan(dist), UNKNOWN_PENALTY, dist).astype(np.float32)
        out = p if out is None else out + p
    return out


def sql_filter(tunables: Iterable[Tunable]) -> list[sa.ColumnElement[bool]]:
    """The min/max as SQL conditions on `tracks` (the popularity fallback before any model)."""
    conds: list[sa.ColumnElement[bool]] = []
    for t in tunables:
        col = COLUMN[t.attribute]
        if t.min is not None:
            conds.append(col >= t.min)
        if t.max is not None:
            conds.append(col <= t.max)
    return conds
