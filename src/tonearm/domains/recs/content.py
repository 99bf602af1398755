"""The content model: a vector per track from what the catalog says about it.

Each track becomes a bag of tokens: its genres (`g:<slug>`, weighted up), its artists
(`a:<id>`), its album, and the words of its title, description and genre names; TF-IDF weighs
them and a truncated SVD (latent semantic analysis) folds synonyms and co-occurring tags into
`dims` dense dimensions. Three measured audio features (tempo, loudness, brightness; see
media.audio_features), standardised, are appended at a lower weight. Rows are unit length, so a
dot product is a cosine.

Why not a neural sentence embedding: the one offline choice on PyPI (all-MiniLM-L6-v2 packaged
with PyTorch) costs about a gigabyte of dependencies and minutes of CPU for 100,000 tracks; the
descriptions here are short tag-like sentences, where LSA does as well (docs/recommendations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import sqlalchemy as sa
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from tonearm.domains.catalog.tables import artists, genres, track_artists, track_genres, tracks

F32 = npt.NDArray[np.float32]
GENRE_REPEAT = 3  # a genre weighs three times a word
AUDIO_WEIGHT = 0.35


@dataclass
class Catalog:
    """The trainable catalog: ready, public tracks, with what the content model reads."""

    item_ids: list[str]
    item_artist: npt.NDArray[np.int32]
    artist_ids: list[str]
    genre_slugs: list[str]
    genre_names: list[str]
    item_genres: sp.csr_matrix
    documents: list[str]
    audio: npt.NDArray[np.float64]  # n x 3 (tempo, loudness, brightness), NaN where unmeasured
    durations: npt.NDArray[np.float64] | None = None  # ms


def load_catalog(conn: sa.Connection) -> Catalog:
    rows = conn.execute(
        sa.select(
            tracks.c.id,
            tracks.c.title,
            tracks.c.description,
            tracks.c.album_id,
            tracks.c.tempo_bpm,
            tracks.c.duration_ms,
            tracks.c.loudness_lufs,
            tracks.c.brightness_hz,
        )
        .where(tracks.c.status == "ready", tracks.c.visibility == "public")
        .order_by(tracks.c.id)
    ).all()
    item_ids = [r.id for r in rows]
    index = {t: i for i, t in enumerate(item_ids)}
    first_artist: dict[str, str] = {}
    artist_tokens: dict[str, list[str]] = {}
    artist_names = dict(conn.execute(sa.select(artists.c.id, artists.c.name)).all())
    for track_id, artist_id in conn.execute(
        sa.select(track_artists.c.track_id, track_artists.c.artist_id).order_by(
            track_artists.c.track_id, track_artists.c.position
        )
    ):
        if track_id in index:
            first_artist.setdefault(track_id, artist_id)
            artist_tokens.setdefault(track_id, []).append(f"a{artist_id} {artist_names.get(artist_id, '')}")
    genre_rows = conn.execute(
        sa.select(genres.c.id, genres.c.slug, genres.c.name).order_by(genres.c.id)
    ).all()
    genre_col = {g.id: j for j, g in enumerate(genre_rows)}
    g_rows, g_cols = [], []
    genre_tokens: dict[str, list[str]] = {}
    for track_id, genre_id in conn.execute(sa.select(track_genres.c.track_id, track_genres.c.genre_id)):
        i = index.get(track_id)
        if i is None:
            continue
        j = genre_col[genre_id]
        g_rows.append(i)
        g_cols.append(j)
        g = genre_rows[j]
        genre_tokens.setdefault(track_id, []).extend([f"g{g.slug.replace('-', '')} {g.name}"] * GENRE_REPEAT)
    item_genres = sp.csr_matrix(
        (np.ones(len(g_rows), np.float32), (g_rows, g_cols)), shape=(len(item_ids), len(genre_rows))
    )
    artist_ids = sorted(set(first_artist.values()))
    artist_col = {a: k for k, a in enumerate(artist_ids)}
    item_artist = np.array([artist_col.get(first_artist.get(t, ""), -1) for t in item_ids], dtype=np.int32)
    if (item_artist < 0).any():  # a track with no artist row: give it a placeholder of its own
        artist_ids.append("")
        item_artist[item_artist < 0] = len(artist_ids) - 1
    documents = [
        " ".join(
            [
                r.title,
                r.description or "",
                f"al{r.album_id}",
                *artist_tokens.get(r.id, []),
                *genre_tokens.get(r.id, []),
            ]
        )
        for r in rows
    ]
    audio = np.array(
        [[_num(r.tempo_bpm), _num(r.loudness_lufs), _num(r.brightness_hz)] for r in rows], dtype=np.float64
    ).reshape(len(rows), 3)
    return Catalog(
        item_ids,
        item_artist,
        artist_ids,
        [g.slug for g in genre_rows],
        [g.name for g in genre_rows],
        item_genres,
        documents,
        audio,
        np.array([float(r.duration_ms) for r in rows], dtype=np.float64),
    )


def _num(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def content_vectors(catalog: Catalog, *, dims: int = 48, seed: int = 0) -> F32:
    """Unit vectors (n x d) for the catalog's tracks; empty catalogs give an n x 0 array."""
    n = len(catalog.item_ids)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1, max_features=200_000, dtype=np.float32)
    x = tfidf.fit_transform(catalog.documents)
    k = max(1, min(dims, x.shape[1] - 1, n - 1))
    if k >= 2:
        dense = TruncatedSVD(
            n_components=k, random_state=seed, algorithm="randomized", n_iter=4
        ).fit_transform(x)
    else:
        dense = x.toarray()
    dense = _unit(dense.astype(np.float32))
    audio = _standardised_audio(catalog.audio) * AUDIO_WEIGHT
    return _unit(np.hstack([dense, audio]).astype(np.float32))


def _standardised_audio(audio: npt.NDArray[np.float64]) -> F32:
    out = np.zeros_like(audio, dtype=np.float32)
    for j in range(audio.shape[1]):
        col = audio[:, j]
        ok = ~np.isnan(col)
        if ok.sum() >= 2 and float(col[ok].std()) > 0:
            out[ok, j] = (col[ok] - col[ok].mean()) / col[ok].std() / np.sqrt(audio.shape[1])
    return out


def _unit(x: F32) -> F32:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(np.divide(x, norms, out=np.zeros_like(x), where=norms > 0), dtype=np.float32)
