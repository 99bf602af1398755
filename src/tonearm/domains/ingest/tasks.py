"""Ingest's jobs. Each takes ids and reloads what it needs (see service.py for the stages)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tonearm.domains.ingest.scans import SCAN_JOB
from tonearm.domains.ingest.service import AUDIO_FEATURES_JOB
from tonearm.workers.runner import TaskRegistry

if TYPE_CHECKING:
    from tonearm.bootstrap import Container


def register(registry: TaskRegistry) -> None:
    @registry.task("ingest.analyze")
    def analyze(c: Container, payload: dict[str, Any]) -> None:
        c.ingest.analyze(payload["upload_id"])

    @registry.task("ingest.renditions")
    def renditions(c: Container, payload: dict[str, Any]) -> None:
        c.ingest.make_renditions(payload["upload_id"])

    @registry.task("ingest.track_renditions")
    def track_renditions(c: Container, payload: dict[str, Any]) -> None:
        c.importer.make_track_renditions(payload["track_id"])

    @registry.task(AUDIO_FEATURES_JOB)
    def audio_features(c: Container, payload: dict[str, Any]) -> None:
        c.ingest.measure_audio_features(payload["track_id"])

    @registry.task(SCAN_JOB)
    def library_scan(c: Container, payload: dict[str, Any]) -> None:
        c.scans.run(payload["scan_id"])
