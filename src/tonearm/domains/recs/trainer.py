"""Training: the database's signals in, a RecModel out.

`build()` is the whole computation, in memory, with no side effects (the evaluation calls it on
a time split). `Trainer.run()` is the background job around it: each stage's output goes to the
blob store under the run's prefix and the run's row records the stage, so a worker killed mid-way
is retried by the queue and resumes after the last finished stage; a run over data that has not
changed since the last ready model (same watermark) stops at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
import sqlalchemy as sa
import structlog
from threadpoolctl import threadpool_limits

from tonearm.domains.catalog.tables import tracks
from tonearm.domains.history.tables import playbacks, plays
from tonearm.domains.library.tables import album_saves, playlist_entries, track_likes
from tonearm.domains.recs.content import Catalog, content_vectors, load_catalog
from tonearm.domains.recs.model import RecModel, pack_items, unpack_items
from tonearm.domains.recs.signals import Matrix, load_matrix
from tonearm.domains.recs.tables import rec_hidden, rec_models
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.ids import new_id
from tonearm.ports.blobs import BlobStore

log = structlog.get_logger("tonearm.recs")
Progress = Callable[[str, float], None]
PARAMS_VERSION = "als64-v1"


@dataclass(frozen=True)
class Params:
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    content_dims: int = 48
    seed: int = 7

    def factors_for(self, n_items: int, n_users: int) -> int:
        # A small catalog (the demo's 200 tracks) overfits 64 factors; keep about one per 4 items.
        return max(4, min(self.factors, n_items // 4, max(4, n_users)))


@dataclass
class Built:
    model: RecModel
    matrix: Matrix
    seconds: dict[str, float] = field(default_factory=dict)


def _noop(_stage: str, _fraction: float) -> None:
    return None


def popularity(conf: sp.csr_matrix) -> np.ndarray:
    pos = conf.copy()
    pos.data = np.clip(pos.data, 0, None)
    raw = np.log1p(np.asarray(pos.sum(axis=0)).ravel())
    top = float(raw.max()) if raw.size else 0.0
    return np.asarray(raw / top if top > 0 else raw, dtype=np.float32)


def fit_als(conf: sp.csr_matrix, params: Params, progress: Progress = _noop) -> np.ndarray:
    """ALS item factors (items x k) from user x item confidences."""
    from implicit.cpu.als import AlternatingLeastSquares

    n_users, n_items = conf.shape
    k = params.factors_for(n_items, n_users)
    if conf.nnz == 0 or n_users == 0:
        return np.zeros((n_items, k), dtype=np.float32)

    def on_iteration(i: int, _elapsed: float, _loss: float) -> None:
        progress("als", (i + 1) / params.iterations)

    with threadpool_limits(1, "blas"):  # implicit parallelises itself (OpenMP); BLAS threads fight it
        als = AlternatingLeastSquares(
            factors=k,
            regularization=params.regularization,
            iterations=params.iterations,
            random_state=params.seed,
            calculate_training_loss=False,
        )
        als.fit(conf, show_progress=False, callback=on_iteration)
    return np.ascontiguousarray(als.item_factors, dtype=np.float32)


def assemble(
    version: str,
    catalog: Catalog,
    factors: np.ndarray,
    content: np.ndarray,
    conf: sp.csr_matrix,
    params: Params,
) -> RecModel:
    return RecModel(
        version=version,
        item_ids=catalog.item_ids,
        item_artist=catalog.item_artist,
        artist_ids=catalog.artist_ids,
        genre_slugs=catalog.genre_slugs,
        genre_names=catalog.genre_names,
        item_genres=catalog.item_genres,
        item_factors=factors,
        attributes=np.column_stack(
            [
                catalog.audio[:, 0],
                catalog.audio[:, 1],
                catalog.durations
                if catalog.durations is not None
                else np.full(len(catalog.item_ids), np.nan),
            ]
        ).astype(np.float32),
        content=content,
        popularity=popularity(conf),
        regularization=params.regularization,
    )


def build(
    conn: sa.Connection,
    *,
    now: dt.datetime,
    until: dt.datetime | None = None,
    params: Params | None = None,
    version: str = "adhoc",
    progress: Progress = _noop,
) -> Built:
    """Everything at once, in memory (the evaluation, tests)."""
    p = params or Params()
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    catalog = load_catalog(conn)
    matrix = load_matrix(conn, catalog.item_ids, now=now, until=until)
    seconds["signals"] = time.perf_counter() - t
    progress("signals", 1.0)
    t = time.perf_counter()
    content = content_vectors(catalog, dims=p.content_dims, seed=p.seed)
    seconds["content"] = time.perf_counter() - t
    progress("content", 1.0)
    t = time.perf_counter()
    factors = fit_als(matrix.confidences, p, progress)
    seconds["als"] = time.perf_counter() - t
    model = assemble(version, catalog, factors, content, matrix.confidences, p)
    return Built(model, matrix, seconds)


# The background job --------------------------------------------------------------------------------
STAGES = ("signals", "content", "als", "ready")


def watermark(conn: sa.Connection) -> str:
    """A fingerprint of everything training reads: when it has not moved, neither would the model."""
    parts: list[Any] = [PARAMS_VERSION]
    for q in (
        sa.select(sa.func.count(), sa.func.max(plays.c.id)).select_from(plays),
        sa.select(sa.func.count(), sa.func.max(track_likes.c.added_at)).select_from(track_likes),
        sa.select(sa.func.count(), sa.func.max(playbacks.c.updated_at)).where(playbacks.c.counted.is_(False)),
        sa.select(sa.func.count(), sa.func.max(playlist_entries.c.added_at)).select_from(playlist_entries),
        sa.select(sa.func.count(), sa.func.max(album_saves.c.added_at)).select_from(album_saves),
        sa.select(sa.func.count(), sa.func.max(rec_hidden.c.hidden_at)).select_from(rec_hidden),
        sa.select(sa.func.count(), sa.func.max(tracks.c.updated_at)).where(
            tracks.c.status == "ready", tracks.c.visibility == "public"
        ),
    ):
        parts.extend(str(v) for v in conn.execute(q).one())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class Trainer:
    def __init__(self, db: Database, blobs: BlobStore, clock: Clock, params: Params | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.clock = clock
        self.params = params or Params()

    def start(self, *, force: bool = False) -> tuple[str, bool]:
        """The run to work on: (id, created). Returns the ready model's id when the data has not
        changed since it was trained (unless `force`), or the unfinished run over the same data."""
        with self.db.write() as conn:
            mark = watermark(conn)
            if force:
                mark = mark[:24] + new_id()[:8]
            row = conn.execute(
                sa.select(rec_models.c.id, rec_models.c.status)
                .where(rec_models.c.watermark == mark, rec_models.c.status != "failed")
                .order_by(rec_models.c.created_at.desc())
                .limit(1)
            ).first()
            if row is not None:
                return row.id, False
            model_id = new_id()
            now = self.clock.now()
            conn.execute(  # runs over older data will never be served: stop them being resumed
                rec_models.update()
                .where(rec_models.c.status == "running")
                .values(status="failed", error="superseded by a run over newer data", updated_at=now)
            )
            conn.execute(
                rec_models.insert().values(
                    id=model_id,
                    status="running",
                    stage="queued",
                    progress=0.0,
                    watermark=mark,
                    blob_prefix=f"recs/{model_id}",
                    created_at=now,
                    updated_at=now,
                )
            )
        return model_id, True

    def _read(self, key: str) -> bytes:
        with self.blobs.open(key) as f:
            return f.read()

    def _set(self, model_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(
                rec_models.update()
                .where(rec_models.c.id == model_id)
                .values(updated_at=self.clock.now(), **values)
            )

    def run(self, model_id: str, progress: Progress = _noop) -> str:
        """Runs (or resumes) a training run to `ready`; returns its status."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(rec_models).where(rec_models.c.id == model_id)).first()
        if row is None or row.status != "running":
            return "missing" if row is None else str(row.status)
        prefix = row.blob_prefix
        stats: dict[str, Any] = orjson.loads(row.stats) if row.stats else {}
        seconds: dict[str, float] = stats.setdefault("seconds", {})

        def report(stage: str, fraction: float) -> None:
            overall = (STAGES.index(stage) + min(1.0, fraction)) / (len(STAGES) - 1)
            if stage != "als" or fraction >= 1.0 or int(fraction * 100) % 20 == 0:
                self._set(model_id, stage=stage, progress=round(min(0.99, overall), 3))  # not every iteration
            progress(stage, fraction)

        try:
            now = row.created_at
            catalog_key, matrix_key = f"{prefix}/catalog.npz", f"{prefix}/signals.npz"
            if not (self.blobs.exists(catalog_key) and self.blobs.exists(matrix_key)):
                t = time.perf_counter()
                report("signals", 0.0)
                with self.db.read() as conn:
                    catalog = load_catalog(conn)
                    matrix = load_matrix(conn, catalog.item_ids, now=now)
                self.blobs.put_bytes(catalog_key, _catalog_bytes(catalog))
                self.blobs.put_bytes(matrix_key, _matrix_bytes(matrix))
                seconds["signals"] = round(time.perf_counter() - t, 3)
                stats.update(
                    items=len(catalog.item_ids),
                    users=len(matrix.user_ids),
                    nnz=int(matrix.confidences.nnz),
                    plays=matrix.plays,
                    signals=matrix.stats,
                )
                self._set(model_id, stats=orjson.dumps(stats).decode())
            catalog = _catalog_from(self._read(catalog_key))
            conf = _matrix_from(self._read(matrix_key))
            report("content", 0.0)
            content_key = f"{prefix}/content.npy"
            if not self.blobs.exists(content_key):
                t = time.perf_counter()
                content = content_vectors(catalog, dims=self.params.content_dims, seed=self.params.seed)
                self.blobs.put_bytes(content_key, _npy_bytes(content))
                seconds["content"] = round(time.perf_counter() - t, 3)
                self._set(model_id, stats=orjson.dumps(stats).decode())
            content = np.load(io.BytesIO(self._read(content_key)), allow_pickle=False)
            report("als", 0.0)
            factors_key = f"{prefix}/factors.npy"
            if not self.blobs.exists(factors_key):
                t = time.perf_counter()
                factors = fit_als(conf, self.params, report)
                self.blobs.put_bytes(factors_key, _npy_bytes(factors))
                seconds["als"] = round(time.perf_counter() - t, 3)
            factors = np.load(io.BytesIO(self._read(factors_key)), allow_pickle=False)
            model = assemble(model_id, catalog, factors, content, conf, self.params)
            self.blobs.put_bytes(f"{prefix}/model.npz", model.to_bytes())
            self._set(
                model_id,
                status="ready",
                stage="ready",
                progress=1.0,
                stats=orjson.dumps(stats).decode(),
                finished_at=self.clock.now(),
            )
            progress("ready", 1.0)
            log.info("recs.trained", model_id=model_id, **{k: v for k, v in stats.items() if k != "signals"})
            return "ready"
        except Exception as exc:
            log.exception("recs.train_failed", model_id=model_id)
            self._set(model_id, error=f"{type(exc).__name__}: {exc}"[:300])
            raise

    def fail(self, model_id: str, error: str) -> None:
        self._set(model_id, status="failed", error=error[:300], finished_at=self.clock.now())


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _matrix_bytes(m: Matrix) -> bytes:
    buf = io.BytesIO()
    sp.save_npz(buf, m.confidences.tocsr(), compressed=False)
    return buf.getvalue()


def _matrix_from(data: bytes) -> sp.csr_matrix:
    return sp.load_npz(io.BytesIO(data)).tocsr().astype(np.float32)


def _catalog_bytes(c: Catalog) -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf,
        **pack_items(c),
        documents=np.frombuffer(orjson.dumps(c.documents), dtype=np.uint8),
        audio=c.audio,
        durations=c.durations if c.durations is not None else np.zeros(0),
    )
    return buf.getvalue()


def _catalog_from(data: bytes) -> Catalog:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return Catalog(
            **unpack_items(z),
            documents=orjson.loads(z["documents"].tobytes()),
            audio=z["audio"],
            durations=z["durations"] if "durations" in z and len(z["durations"]) else None,
        )
