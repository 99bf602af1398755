"""Privacy's job: building a data export. It takes the export's id and reloads the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tonearm.domains.privacy.service import EXPORT_JOB
from tonearm.workers.runner import TaskRegistry

if TYPE_CHECKING:
    from tonearm.bootstrap import Container


def register(registry: TaskRegistry) -> None:
    @registry.task(EXPORT_JOB)
    def build_export(c: Container, payload: dict[str, Any]) -> None:
        c.privacy.build_export(payload["export_id"])
