"""The trained recommender, as arrays, and the arithmetic that serves from it.

A model is what one training run made (see trainer.py), for the catalog as it was then:
- `item_factors` (n x k): implicit-feedback ALS item vectors (collaborative filtering). Users'
  vectors are not kept: every request solves the listener's vector from their current signals
  against the fixed item vectors ("fold-in", one k x k solve), so a new like or play moves their
  recommendations as soon as the signal is read, with no retraining, and a listener who joined
  after training is served like any other.
- `content` (n x d): unit vectors from genres, artists, words (TF-IDF of title, description,
  genre and artist names, reduced by truncated SVD) and measured audio features: what serves new
  listeners, new tracks (no plays yet) and seeds.
- `popularity` (n): decayed plays and likes of everyone, log-scaled to 0..1: the fallback.

Nothing here touches the database: the service hands in signals and gets item indexes back.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
ATTRIBUTES = ("tempo", "loudness", "duration_ms")  # the columns of RecModel.attributes


@dataclass
class Blend:
    """How much each model weighs, by how much the listener has told us."""

    cf: float = 1.0  # collaborative, scaled by history size / (history size + cf_ramp)
    cf_ramp: float = 4.0
    content: float = 0.45
    popularity: float = 0.2


@dataclass
class RecModel:
    version: str
    item_ids: list[str]
    item_artist: I32  # artist index of each item (its first artist)
    artist_ids: list[str]
    genre_slugs: list[str]
    genre_names: list[str]
    item_genres: sp.csr_matrix  # n x G membership (0/1)
    item_factors: F32  # n x k (zeros where ALS had nothing)
    content: F32  # n x d, rows of unit length (or zero)
    popularity: F32  # n, 0..1
    regularization: float = 0.05
    # n x 3: tempo (BPM), loudness (LUFS), duration (ms); NaN where unmeasured. Spotify's tunable
    # attributes (min_/max_/target_tempo, ...) filter and steer by them.
    attributes: F32 | None = None
    index: dict[str, int] = field(init=False, repr=False)
    artist_index: dict[str, int] = field(init=False, repr=False)
    genre_index: dict[str, int] = field(init=False, repr=False)
    _yty: npt.NDArray[np.float64] = field(init=False, repr=False)
    _unit_factors: F32 = field(init=False, repr=False)
    _artist_items: list[I32] = field(init=False, repr=False)
    _genre_dense: npt.NDArray[np.bool_] = field(init=False, repr=False)
    popularity_z: F32 = field(init=False, repr=False)
    _has_cf: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.item_ids)}
        self.artist_index = {a: i for i, a in enumerate(self.artist_ids)}
        self.genre_index = {g: i for i, g in enumerate(self.genre_slugs)}
        shape = (len(self.item_ids), len(ATTRIBUTES))
        attrs = self.attributes
        self.attrs: F32 = (
            attrs if attrs is not None and attrs.shape == shape else np.full(shape, np.nan, np.float32)
        )
        self._has_cf = bool(self.item_factors.size) and bool(np.any(self.item_factors))
        y = self.item_factors.astype(np.float64)
        self._yty = y.T @ y
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        self._unit_factors = np.divide(
            self.item_factors, norms, out=np.zeros_like(self.item_factors), where=norms > 0
        )
        self._genre_dense = np.asarray(self.item_genres.toarray() > 0)  # n x G booleans: 3 MB for 100k x 30
        self.popularity_z = _standardise(self.popularity)
        order = np.argsort(self.item_artist, kind="stable")
        bounds = np.searchsorted(self.item_artist[order], np.arange(len(self.artist_ids) + 1))
        self._artist_items = [
            order[bounds[a] : bounds[a + 1]].astype(np.int32) for a in range(len(self.artist_ids))
        ]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def has_cf(self) -> bool:
        return self._has_cf

    # Fold-in and scores -----------------------------------------------------------------------
    def user_vector(self, signals: Mapping[int, float]) -> npt.NDArray[np.float64] | None:
        """The listener's ALS vector from their confidences (item index -> confidence; negative
        means "not this", with that much confidence): the same normal equations ALS solves for
        each user, YtY + Y_u^T (C_u - I) Y_u + reg I, against the fixed item vectors."""
        if not signals or not self.has_cf:
            return None
        idx = np.fromiter(signals.keys(), dtype=np.int64, count=len(signals))
        conf = np.fromiter(signals.values(), dtype=np.float64, count=len(signals))
        yu = self.item_factors[idx].astype(np.float64)
        k = yu.shape[1]
        a = self._yty + self.regularization * np.eye(k) + (yu.T * (np.abs(conf) - 1.0)) @ yu
        b = (yu * np.where(conf > 0, conf, 0.0)[:, None]).sum(axis=0)
        if not np.any(b):
            return None
        try:
            return np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            return None

    def cf_scores(self, user_vec: npt.NDArray[np.float64]) -> F32:
        return self.item_factors @ user_vec.astype(np.float32)

    def content_profile(self, signals: Mapping[int, float]) -> F32 | None:
        """A taste vector in content space: liked things pull, skipped things push (at half)."""
        if not signals:
            return None
        idx = np.fromiter(signals.keys(), dtype=np.int64, count=len(signals))
        conf = np.fromiter(signals.values(), dtype=np.float32, count=len(signals))
        weights = np.where(conf > 0, np.log1p(np.abs(conf)), -0.5 * np.log1p(np.abs(conf)))
        profile = (self.content[idx] * weights[:, None]).sum(axis=0)
        norm = float(np.linalg.norm(profile))
        return (profile / norm).astype(np.float32) if norm > 0 else None

    def content_scores(self, profile: F32) -> F32:
        return self.content @ profile

    def similar_to_items(self, items: Sequence[int]) -> F32:
        """Mean similarity to some items: cosine of ALS vectors and of content vectors."""
        idx = np.asarray(items, dtype=np.int64)
        content = self.content @ self.content[idx].mean(axis=0)
        if not self.has_cf:
            return np.asarray(content, dtype=np.float32)
        cf = self._unit_factors @ self._unit_factors[idx].mean(axis=0)
        return np.asarray(0.5 * cf + 0.5 * content, dtype=np.float32)

    def artist_items(self, artist_idx: int) -> I32:
        return self._artist_items[artist_idx]

    def genre_members(self, genre_idx: int) -> F32:
        return self._genre_dense[:, genre_idx].astype(np.float32)

    def blend(
        self,
        signals: Mapping[int, float],
        weights: Blend | None = None,
        *,
        items: npt.NDArray[np.int64] | None = None,
    ) -> tuple[F32, dict[str, float]]:
        """Personal scores for every item (or only for `items`, standardised among them: how a
        seeded list re-ranks its candidates cheaply), and how much each model counted."""
        w = weights or Blend()
        positives = sum(1 for v in signals.values() if v > 0)
        n = self.n_items if items is None else len(items)
        total = np.zeros(n, dtype=np.float32)
        used: dict[str, float] = {}
        user_vec = self.user_vector(signals)
        if user_vec is not None:
            share = w.cf * positives / (positives + w.cf_ramp)
            factors = self.item_factors if items is None else self.item_factors[items]
            total += share * _standardise(factors @ user_vec.astype(np.float32))
            used["collaborative"] = round(share, 3)
        profile = self.content_profile(signals)
        if profile is not None:
            content = self.content if items is None else self.content[items]
            total += w.content * _standardise(content @ profile)
            used["content"] = w.content
        pop_share = w.popularity if used else 1.0
        total += pop_share * (self.popularity_z if items is None else _standardise(self.popularity[items]))
        used["popularity"] = pop_share
        return total, used

    # Persistence --------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            version=np.array(self.version),
            **pack_items(self),
            item_factors=self.item_factors,
            content=self.content,
            popularity=self.popularity,
            regularization=np.array(self.regularization),
            attributes=self.attrs,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> RecModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(
                version=str(z["version"]),
                **unpack_items(z),
                item_factors=z["item_factors"].astype(np.float32),
                content=z["content"].astype(np.float32),
                popularity=z["popularity"].astype(np.float32),
                regularization=float(z["regularization"]),
                attributes=z["attributes"].astype(np.float32) if "attributes" in z else None,
            )


class ItemTable(Protocol):
    """What a model and the trainer's catalog checkpoint both hold about the items."""

    item_ids: list[str]
    item_artist: I32
    artist_ids: list[str]
    genre_slugs: list[str]
    genre_names: list[str]
    item_genres: sp.csr_matrix


def pack_items(t: ItemTable) -> dict[str, Any]:
    """An ItemTable as arrays for np.savez (no pickles: blobs are loaded with allow_pickle=False)."""
    g = t.item_genres.tocsr()
    return {
        "item_ids": np.array(t.item_ids, dtype="U22"),
        "item_artist": t.item_artist,
        "artist_ids": np.array(t.artist_ids, dtype="U22"),
        "genre_slugs": np.array(t.genre_slugs, dtype=str),
        "genre_names": np.array(t.genre_names, dtype=str),
        "g_data": g.data,
        "g_indices": g.indices,
        "g_indptr": g.indptr,
        "g_shape": np.array(g.shape),
    }


def unpack_items(z: Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """The ItemTable fields back from `pack_items`' arrays."""
    return {
        "item_ids": [str(x) for x in z["item_ids"]],
        "item_artist": z["item_artist"].astype(np.int32),
        "artist_ids": [str(x) for x in z["artist_ids"]],
        "genre_slugs": [str(x) for x in z["genre_slugs"]],
        "genre_names": [str(x) for x in z["genre_names"]],
        "item_genres": sp.csr_matrix(
            (z["g_data"], z["g_indices"], z["g_indptr"]), shape=tuple(int(x) for x in z["g_shape"])
        ),
    }


def _standardise(x: F32) -> F32:
    std = float(x.std())
    if std <= 1e-12:
        return np.zeros_like(x)
    return ((x - float(x.mean())) / std).astype(np.float32)


def top_items(
    scores: F32,
    *,
    n: int,
    exclude: Iterable[int] = (),
    allowed: npt.NDArray[np.bool_] | None = None,
) -> list[int]:
    """The `n` best item indexes, best first, leaving out `exclude` and what `allowed` forbids."""
    s = scores.astype(np.float32, copy=True)
    ex = np.fromiter(exclude, dtype=np.int64)
    if ex.size:
        s[ex] = -np.inf
    if allowed is not None:
        s[~allowed] = -np.inf
    n = min(n, int(np.isfinite(s).sum()))
    if n <= 0:
        return []
    part = np.argpartition(-s, n - 1)[:n]
    return [int(i) for i in part[np.argsort(-s[part], kind="stable")]]


def diversify(
    ranked: Sequence[int], item_artist: I32, *, limit: int, per_artist: int | None = None
) -> list[int]:
    """Greedy re-rank: keeps the order, but no artist takes more than `per_artist` places in the
    list (default: 2 in 10, at least 1); what the cap pushed out fills any places left at the end,
    so a thin catalog still returns a full page."""
    cap = per_artist if per_artist is not None else max(1, math.ceil(limit / 5))
    counts: dict[int, int] = {}
    out: list[int] = []
    held: list[int] = []
    for i in ranked:
        a = int(item_artist[i])
        if counts.get(a, 0) < cap:
            counts[a] = counts.get(a, 0) + 1
            out.append(i)
            if len(out) == limit:
                return out
        else:
            held.append(i)
    return out + held[: limit - len(out)]


def kmeans(x: F32, k: int, *, seed: int = 0, iterations: int = 20) -> I32:
    """Cluster labels for the rows of `x` (unit vectors): spherical k-means, k-means++ seeding.
    Small inputs only (a listener's favourites): daily mixes are one cluster each."""
    n = x.shape[0]
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centres = [x[int(rng.integers(n))]]
    for _ in range(1, k):
        d = 1.0 - np.max(np.stack([x @ c for c in centres]), axis=0)
        d = np.clip(d, 0, None)
        if float(d.sum()) <= 0:
            break
        centres.append(x[int(rng.choice(n, p=d / d.sum()))])
    c = np.stack(centres)
    labels = np.zeros(n, dtype=np.int32)
    for _ in range(iterations):
        new = np.argmax(x @ c.T, axis=1).astype(np.int32)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for j in range(c.shape[0]):
            members = x[labels == j]
            if len(members):
                m = members.mean(axis=0)
                norm = float(np.linalg.norm(m))
                c[j] = m / norm if norm > 0 else m
    return labels
