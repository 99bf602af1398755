"""`tonearm demo`: synthesize the demo catalog, import it through the real pipeline, add demo users.

Idempotent: files already rendered are kept, the importer skips unchanged files, users are created once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from tqdm import tqdm

from tonearm.bootstrap import Container
from tonearm.demo.catalog import demo_catalog
from tonearm.demo.files import write_demo_files
from tonearm.demo.listeners import plant_listeners
from tonearm.domains.accounts.tables import users
from tonearm.domains.ingest.progress import import_with_progress
from tonearm.domains.ingest.service import ReceivedFile
from tonearm.kernel.errors import Conflict, NotFound

DEMO_USERS = (
    ("admin@tonearm.local", "tonearm-admin", "Admin", "admin"),
    ("listener@tonearm.local", "tonearm-demo", "Demo Listener", "listener"),
    ("premium@tonearm.local", "tonearm-premium", "Demo Premium", "listener"),
    ("artist@tonearm.local", "tonearm-artist", "Demo Artist", "artist"),
)
PREMIUM_EMAIL = "premium@tonearm.local"
AD_SECONDS = 6.0
PLANTED_GROUPS, PLANTED_PER_GROUP = 8, 15  # see demo/listeners.py


def seed_demo(
    c: Container, *, n_tracks: int = 200, duration_s: float = 30.0, transcode: bool = True, wait: bool = False
) -> None:
    """Synthesize, import and (unless `wait`) leave the transcode ladder to the server's workers:
    the MP3 originals are within the free tier's cap, so the catalog is playable at once."""
    for email, password, name, role in DEMO_USERS:
        with contextlib.suppress(Conflict):  # already created on an earlier run
            c.accounts.sign_up(email, password, name, dt.date(1990, 1, 1), role=role)
    _demo_ad(c)  # before the import, so its two jobs are not queued behind the catalog's transcodes
    _demo_subscription(c)
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
    # Listeners with planted tastes (the demo listener and premium accounts among them), so the
    # home feed is personal and a recommender has months of listening to learn from.
    with tqdm(
        total=PLANTED_GROUPS * PLANTED_PER_GROUP + 2, unit="listener", desc="planting", file=sys.stderr
    ) as bar:
        planted = plant_listeners(
            c,
            groups=PLANTED_GROUPS,
            per_group=PLANTED_PER_GROUP,
            members={"listener@tonearm.local": 0, PREMIUM_EMAIL: 1},
            progress=bar.update,
        )
    click.echo(f"demo listeners: {planted.summary()}")
    run = c.recs.train()  # a few seconds; the server retrains hourly as listening moves on
    took = sum(run["stats"].get("seconds", {}).values())
    click.echo(f"recommender: model {run['id']} ({run['status']}) over {run['stats'].get('plays', 0)} plays")
    if run["created"]:
        click.echo(f"  trained in {took:.1f} s")
    url = c.settings.public_url
    click.echo(f"\nTonearm demo is ready at {url}")
    for email, password, _name, role in DEMO_USERS:
        plan = " (Premium Individual, paid with the sandbox's test card 4242 4242 4242 4242)"
        click.echo(f"  {role:<9} {email} / {password}{plan if email == PREMIUM_EMAIL else ''}")
    app_password = _demo_app_password(c, "listener@tonearm.local")
    if app_password:
        click.echo(
            f"Subsonic apps (DSub, Symfonium, Feishin...): server {url}, user listener@tonearm.local, "
            f"password {app_password} (the demo listener's app password; docs/subsonic.md)"
        )


def _demo_app_password(c: Container, email: str) -> str | None:
    """The demo listener's Subsonic app password, made once, so a phone app can connect at once."""
    found = c.credentials.user_by_name(email)
    if found is None:
        return None
    caller, password = found
    return password or c.credentials.reset_app_password(caller.user_id)


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


def _user_id(c: Container, email: str) -> str:
    with c.db.read() as conn:
        return str(conn.execute(sa.select(users.c.id).where(users.c.email == email)).scalar_one())


def _demo_subscription(c: Container) -> None:
    """The premium demo listener pays for Premium Individual through the sandbox gateway, the way
    a listener would (a tokenized test card, a real charge, an invoice); once."""
    user_id = _user_id(c, PREMIUM_EMAIL)
    try:
        c.billing.subscription(user_id)
        return
    except NotFound:
        pass
    today = c.clock.now()
    card = c.gateway.tokenize_card("4242424242424242", 12, today.year + 3, "123")
    c.billing.subscribe(user_id, "premium_individual", card.token, idempotency_key="demo-premium")


def _demo_ad(c: Container) -> None:
    """A short synthesized jingle uploaded by the demo admin and run as an audio ad, so a free
    listener hears what the Premium plans take away; once."""
    if c.entitlements.ads.listing():
        return
    admin = _user_id(c, "admin@tonearm.local")
    folder = c.settings.data_dir / "demo-ads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tonearm-premium-ad.mp3"
    if not path.exists():
        _synthesize_jingle(path)
    data = path.read_bytes()
    upload_id = c.ingest.receive(
        admin,
        ReceivedFile(path, path.name, len(data), hashlib.sha256(data).hexdigest(), data[:64]),
        visibility="private",
    )
    worker = c.worker(name="demo-ad")
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = c.ingest.upload_status(upload_id, admin)
        if status["status"] in ("ready", "failed"):
            break
        if not worker.run_once():
            time.sleep(0.2)
    if status.get("status") != "ready":
        click.echo(f"demo ad: its audio did not become ready ({status.get('status')}); no ad runs")
        return
    c.entitlements.ads.create(status["track"]["id"], "Go Premium", "Tonearm", None)


def _synthesize_jingle(path: Path) -> None:
    """Three rising chimes over a soft pad, tagged as an ad (ffmpeg's own signal generators)."""
    chimes = "+".join(
        f"0.3*sin(2*PI*{f}*t)*exp(-3*(t-{start}))*gte(t,{start})"
        for f, start in ((523.25, 0.2), (659.25, 1.0), (783.99, 1.8))
    )
    expr = f"{chimes}+0.08*sin(2*PI*261.63*t)"
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"aevalsrc='{expr}':s=44100:d={AD_SECONDS}",
            "-af", f"afade=t=out:st={AD_SECONDS - 1}:d=1", "-ac", "2", "-b:a", "128k",
            "-metadata", "title=Go Premium", "-metadata", "artist=Tonearm",
            str(path),
        ],
        check=True,
    )  # fmt: skip
