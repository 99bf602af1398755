"""`tonearm demo`: synthesize the demo catalog, import it through the real pipeline, add demo users.

Idempotent: files already rendered are kept, the importer skips unchanged files, users are created once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import threading
import time

import click
from tqdm import tqdm

from tonearm.bootstrap import Container
from tonearm.demo.catalog import demo_catalog
from tonearm.demo.files import write_demo_files
from tonearm.domains.ingest.progress import import_with_progress
from tonearm.kernel.errors import Conflict

DEMO_USERS = (
    ("admin@tonearm.local", "tonearm-admin", "Admin", "admin"),
    ("listener@tonearm.local", "tonearm-demo", "Demo Listener", "listener"),
    ("artist@tonearm.local", "tonearm-artist", "Demo Artist", "artist"),
)


def seed_demo(
    c: Container, *, n_tracks: int = 200, duration_s: float = 30.0, transcode: bool = True, wait: bool = False
) -> None:
    """Synthesize, import and (unless `wait`) leave the transcode ladder to the server's workers:
    the MP3 originals are within the free tier's cap, so the catalog is playable at once."""
    out = c.settings.data_dir / "demo-music"
    tracks = demo_catalog(n_tracks, duration_s=duration_s)
    with tqdm(total=len(tracks), unit="track", desc="synthesizing", file=sys.stderr) as bar:
        write_demo_files(out, tracks, workers=2, progress=bar.update)
    report = import_with_progress(c.importer, out, transcode=transcode)
    if transcode and wait:
        _drain_with_progress(c)
    click.echo(
        f"demo catalog: {report.imported} imported, {report.unchanged} already there, {report.failed} failed"
    )
    for email, password, name, role in DEMO_USERS:
        with contextlib.suppress(Conflict):  # already created on an earlier run
            c.accounts.sign_up(email, password, name, dt.date(1990, 1, 1), role=role)
    url = c.settings.public_url
    click.echo(f"\nTonearm demo is ready at {url}")
    for email, password, _name, role in DEMO_USERS:
        click.echo(f"  {role:<9} {email} / {password}")


def _drain_with_progress(c: Container, threads: int = 2) -> None:
    """Transcodes the demo now (ffmpeg runs in parallel), so free listeners can play at once."""
    pending = c.jobs.counts().get("queued", 0)
    if not pending:
        return
    workers = [c.worker(name=f"demo-{i}") for i in range(threads)]
    runners = [threading.Thread(target=w.drain, kwargs={"timeout_s": 3600}) for w in workers]
    with tqdm(total=pending, unit="track", desc="transcoding", file=sys.stderr) as bar:
        for t in runners:
            t.start()
        while any(t.is_alive() for t in runners):
            time.sleep(0.5)
            counts = c.jobs.counts()
            bar.n = pending - counts.get("queued", 0) - counts.get("running", 0)
            bar.refresh()
        for t in runners:
            t.join()
