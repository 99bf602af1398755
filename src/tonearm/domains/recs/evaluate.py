"""Offline evaluation: does the recommender predict what listeners played next?

Plays are split by time: everything before the cutoff (by default the moment 80 % of plays had
happened) trains a model exactly as the background job would, with every signal dated before the
cutoff; each listener's test set is the tracks they played after it and had not touched before
(new discoveries). Each listener with a test set gets two top-10 lists of tracks they had not
touched: ours (the serving path: blend, exclusions, diversity) and the popularity baseline's
(most played before the cutoff). Reported, for both:

- recall@10: hits / min(10, size of the test set), averaged over listeners;
- NDCG@10: discounted gain of the hits over the best possible order;
- catalog coverage: distinct tracks recommended to anyone / trainable tracks;
- diversity: distinct artists in a list / its length, averaged.

It reads only the database, so it runs the same on the demo and on any deployment.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from tonearm.domains.history.tables import plays
from tonearm.domains.recs import model as m
from tonearm.domains.recs.trainer import Params, build
from tonearm.kernel.db import Database

K = 10


@dataclass
class Scores:
    recall: float = 0.0
    ndcg: float = 0.0
    coverage: float = 0.0
    diversity: float = 0.0


@dataclass
class Report:
    cutoff: str
    train_plays: int
    test_listeners: int
    test_items: int
    items: int
    ours: Scores
    popularity: Scores
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def lift(self) -> float:
        return self.ours.recall / self.popularity.recall if self.popularity.recall > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "recall_lift": None if math.isinf(self.lift) else round(self.lift, 2)}


def cutoff_for(conn: sa.Connection, test_fraction: float) -> dt.datetime | None:
    total = conn.execute(sa.select(sa.func.count()).select_from(plays)).scalar_one()
    if total < 10:
        return None
    k = int(total * (1.0 - test_fraction))
    return conn.execute(
        sa.select(plays.c.played_at).order_by(plays.c.played_at, plays.c.id).offset(k).limit(1)
    ).scalar()


def evaluate(
    db: Database,
    *,
    test_fraction: float = 0.2,
    max_listeners: int = 5000,
    params: Params | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> Report:
    if not 0.05 <= test_fraction <= 0.5:
        raise ValueError("test_fraction must be between 0.05 and 0.5")
    say = progress or (lambda _s, _f: None)
    seconds: dict[str, float] = {}
    with db.read() as conn:
        cutoff = cutoff_for(conn, test_fraction)
        if cutoff is None:
            raise ValueError("not enough plays to evaluate: at least 10 are needed")
        t = time.perf_counter()
        built = build(conn, now=cutoff, until=cutoff, params=params, progress=say)
        seconds["train"] = time.perf_counter() - t
        later = conn.execute(
            sa.select(plays.c.user_id, plays.c.track_id).where(plays.c.played_at >= cutoff).distinct()
        ).all()
    model, matrix = built.model, built.matrix
    row_of = {u: i for i, u in enumerate(matrix.user_ids)}
    conf = matrix.confidences.tocsr()
    test: dict[str, set[int]] = defaultdict(set)
    seen_before: dict[int, set[int]] = {}

    def touched_by(row: int) -> set[int]:
        if row not in seen_before:
            seen_before[row] = set(conf.indices[conf.indptr[row] : conf.indptr[row + 1]].tolist())
        return seen_before[row]

    for user_id, track_id in later:
        i = model.index.get(track_id)
        if i is None:
            continue
        r = row_of.get(user_id)
        if r is not None and i in touched_by(r):
            continue  # heard before the cutoff: not a discovery
        test[user_id].add(i)
    users = sorted(u for u in test if test[u])
    rng = np.random.default_rng(0)
    if len(users) > max_listeners:
        users = sorted(rng.choice(users, size=max_listeners, replace=False).tolist())
    t = time.perf_counter()
    ours_lists: list[list[int]] = []
    pop_lists: list[list[int]] = []
    for n, user_id in enumerate(users):
        r = row_of.get(user_id)
        signals: dict[int, float] = {}
        if r is not None:
            lo, hi = conf.indptr[r], conf.indptr[r + 1]
            signals = dict(zip(conf.indices[lo:hi].tolist(), conf.data[lo:hi].tolist(), strict=True))
        touched = set(signals)
        scores, _ = model.blend(signals)
        ranked = m.top_items(scores, n=K * 3 + 20, exclude=touched)
        ours_lists.append(m.diversify(ranked, model.item_artist, limit=K))
        pop_lists.append(m.top_items(model.popularity, n=K, exclude=touched))
        if n % 200 == 0:
            say("evaluate", n / max(1, len(users)))
    seconds["score"] = time.perf_counter() - t
    say("evaluate", 1.0)
    truth = [test[u] for u in users]
    return Report(
        cutoff=cutoff.isoformat(),
        train_plays=matrix.plays,
        test_listeners=len(users),
        test_items=sum(len(x) for x in truth),
        items=model.n_items,
        ours=_score(ours_lists, truth, model),
        popularity=_score(pop_lists, truth, model),
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )


def _score(lists: list[list[int]], truth: list[set[int]], model: m.RecModel) -> Scores:
    if not lists:
        return Scores()
    recall = ndcg = diversity = 0.0
    seen: set[int] = set()
    for recs, rel in zip(lists, truth, strict=True):
        hits = [1.0 if i in rel else 0.0 for i in recs[:K]]
        recall += sum(hits) / min(K, len(rel))
        dcg = sum(h / math.log2(rank + 2) for rank, h in enumerate(hits))
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(K, len(rel))))
        ndcg += dcg / ideal
        if recs:
            diversity += len({int(model.item_artist[i]) for i in recs[:K]}) / len(recs[:K])
        seen.update(recs[:K])
    n = len(lists)
    return Scores(
        recall=round(recall / n, 4),
        ndcg=round(ndcg / n, 4),
        coverage=round(len(seen) / max(1, model.n_items), 4),
        diversity=round(diversity / n, 4),
    )


def plot(report: Report, path: Path) -> Path:
    """A grouped bar chart of the four metrics, ours next to the popularity baseline, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["recall@10", "NDCG@10", "coverage", "diversity"]
    ours = [report.ours.recall, report.ours.ndcg, report.ours.coverage, report.ours.diversity]
    pop = [
        report.popularity.recall,
        report.popularity.ndcg,
        report.popularity.coverage,
        report.popularity.diversity,
    ]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    b1 = ax.bar(x - 0.2, ours, 0.4, label="Tonearm (ALS + content + popularity)", color="#1db954")
    b2 = ax.bar(x + 0.2, pop, 0.4, label="Popularity baseline", color="#9aa0a6")
    ax.bar_label(b1, fmt="%.3f", fontsize=8)
    ax.bar_label(b2, fmt="%.3f", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, max(1.0, *ours, *pop) * 1.1)
    lift = "∞" if math.isinf(report.lift) else f"{report.lift:.1f}x"
    ax.set_title(
        f"Recommendations vs popularity: {report.test_listeners} listeners, recall lift {lift}", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
