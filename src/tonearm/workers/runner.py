"""The job runner: claims jobs, runs their handlers under a heartbeat, logs one timing line per job.

Runs as threads inside `tonearm serve` (embedded default) or as `tonearm worker` processes.
A handler raising `PermanentError` fails its job for good (bad input will not get better);
any other exception is retried with backoff until the job's attempts run out.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Counter, Histogram

from tonearm.ports.jobs import Job, JobQueue

if TYPE_CHECKING:
    from tonearm.bootstrap import Container

log = structlog.get_logger("tonearm.jobs")

Handler = Callable[["Container", dict[str, Any]], None]

JOBS_DONE = Counter("tonearm_jobs_total", "Jobs finished, by kind and outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram(
    "tonearm_job_seconds", "Job run time", ["kind"], buckets=(0.01, 0.1, 0.5, 1, 5, 30, 120)
)


class PermanentError(Exception):
    """The job cannot succeed by retrying (e.g. the upload is not audio)."""


class TaskRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def task(self, kind: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if kind in self._handlers:
                raise ValueError(f"task {kind!r} registered twice")
            self._handlers[kind] = fn
            return fn

        return register

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)


class Worker:
    def __init__(
        self,
        container: Container,
        queue: JobQueue,
        registry: TaskRegistry,
        *,
        poll_s: float = 0.5,
        heartbeat_s: float | None = None,
        name: str | None = None,
    ) -> None:
        self.container = container
        self.queue = queue
        self.registry = registry
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.stop = threading.Event()

    def run_once(self) -> bool:
        """Runs one due job if there is one; returns whether it did."""
        job = self.queue.claim(self.id)
        if job is None:
            return False
        self._run(job)
        return True

    def run_forever(self) -> None:
        log.info("worker.start", worker=self.id, kinds=self.registry.kinds())
        while not self.stop.is_set():
            try:
                if not self.run_once():
                    self.stop.wait(self.poll_s)
            except Exception:  # the database went away: keep the worker alive, try again
                log.exception("worker.loop_error", worker=self.id)
                self.stop.wait(min(5.0, self.poll_s * 10))
        log.info("worker.stop", worker=self.id)

    def drain(self, *, timeout_s: float = 120.0) -> int:
        """Runs due jobs until none is left (tests and the CLI's import use this)."""
        done, deadline = 0, time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.run_once():
            done += 1
        return done

    def _run(self, job: Job) -> None:
        handler = self.registry.get(job.kind)
        if handler is None:
            self.queue.fail(job, f"no handler for job kind {job.kind!r}", retry=False)
            JOBS_DONE.labels(job.kind, "unknown").inc()
            return
        beat_stop = threading.Event()
        interval = self.heartbeat_s or max(1.0, getattr(self.queue, "lease_s", 300) / 3)
        beat = threading.Thread(target=self._heartbeat, args=(job, beat_stop, interval), daemon=True)
        beat.start()
        started = time.perf_counter()
        outcome = "done"
        try:
            handler(self.container, job.payload)
        except PermanentError as exc:
            outcome = "failed"
            self.queue.fail(job, str(exc), retry=False)
        except Exception as exc:
            outcome = "retry" if job.attempts < job.max_attempts else "failed"
            self.queue.fail(job, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}", retry=True)
        else:
            self.queue.complete(job)
        finally:
            beat_stop.set()
            beat.join()
        elapsed = time.perf_counter() - started
        JOBS_DONE.labels(job.kind, outcome).inc()
        JOB_SECONDS.labels(job.kind).observe(elapsed)
        log.info(
            "job",
            kind=job.kind,
            id=job.id,
            attempt=job.attempts,
            outcome=outcome,
            ms=round(elapsed * 1000, 1),
        )

    def _heartbeat(self, job: Job, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.queue.heartbeat(job, self.id)
            except Exception:
                log.exception("worker.heartbeat_failed", job=job.id)
