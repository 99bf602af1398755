"""The recommender's jobs: training (idempotent, resumable: see trainer.py) and remaking the
generated playlists of active listeners (in batches; each batch queues the next)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tonearm.domains.recs.service import PLAYLISTS_JOB, TRAIN_JOB
from tonearm.workers.runner import TaskRegistry

if TYPE_CHECKING:
    from tonearm.bootstrap import Container


def register(registry: TaskRegistry) -> None:
    @registry.task(TRAIN_JOB)
    def train(c: Container, payload: dict[str, Any]) -> None:
        c.recs.train(model_id=payload.get("model_id"))  # none: the periodic run, if the data moved

    @registry.task(PLAYLISTS_JOB)
    def playlists(c: Container, payload: dict[str, Any]) -> None:
        _done, cursor = c.recs.refresh_active(after=payload.get("after"))
        if cursor is not None:
            with c.db.write() as conn:
                c.jobs.enqueue(conn, PLAYLISTS_JOB, {"after": cursor}, dedupe_key=f"{PLAYLISTS_JOB}>{cursor}")
