"""The `tonearm` command line: serve, worker, migrate, import, demo, user."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path

import click

from tonearm.config import Settings


def _settings() -> Settings:
    from tonearm import logs

    s = Settings()
    logs.configure(json=s.log_json, level=s.log_level)
    s.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded database lives here
    return s


@click.group()
def main() -> None:
    """Tonearm: self-hosted music streaming."""


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest version."""
    from tonearm import migrate as m

    s = _settings()
    m.upgrade(s.resolved_database_url)
    click.echo(f"database at head: {s.resolved_database_url.split('@')[-1]}")


@main.command()
@click.option("--host", default=None, help="Interface to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port to bind (default from settings).")
@click.option("--workers", "web_workers", type=int, default=None, help="HTTP worker processes.")
def serve(host: str | None, port: int | None, web_workers: int | None) -> None:
    """Run the HTTP server (with in-process job workers unless TONEARM_INPROCESS_WORKERS=0)."""
    import uvicorn

    from tonearm import migrate as m

    s = _settings()
    m.upgrade(s.resolved_database_url)
    s.resolved_secret_key()  # create it once, before several processes race to
    n = web_workers or s.web_workers
    uvicorn.run(
        "tonearm.http.asgi:app",
        host=host or s.host,
        port=port or s.port,
        workers=n,
        log_level="warning",
        access_log=False,
        factory=False,
    )


@main.command()
@click.option("--threads", type=int, default=1, help="Worker threads in this process.")
def worker(threads: int) -> None:
    """Run background job workers (scale out by starting more of these)."""
    import signal
    import threading

    from tonearm.bootstrap import bootstrap

    s = _settings()
    c = bootstrap(s)
    workers = [c.worker(name=None) for _ in range(threads)]
    ts = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    c.scheduler.start()

    def stop(*_: object) -> None:
        for w in workers:
            w.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for t in ts:
        t.start()
    for t in ts:
        while t.is_alive():
            t.join(0.5)
    c.close()


@main.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--transcode/--no-transcode", default=True, help="Queue loudness + transcode ladder jobs.")
@click.option("--workers", type=int, default=2, help="Processes reading files.")
def import_(directory: Path, transcode: bool, workers: int) -> None:
    """Import a music folder (MP3, FLAC, Ogg/Opus, M4A, WAV); re-running skips unchanged files."""
    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap
    from tonearm.domains.ingest.progress import import_with_progress

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    report = import_with_progress(c.importer, directory, transcode=transcode, workers=workers)
    click.echo(
        f"found {report.found}, imported {report.imported}, "
        f"unchanged {report.unchanged}, failed {report.failed}"
    )
    for path, reason in report.failures[:20]:
        click.echo(f"  failed: {path}: {reason}", err=True)
    c.close()


@main.command()
@click.option("--all", "all_tracks", is_flag=True, help="Re-measure every ready track too.")
def features(all_tracks: bool) -> None:
    """Queue tempo/brightness measurement for tracks ingested before it existed (workers run it)."""
    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    try:
        queued = c.ingest.queue_audio_features(missing_only=not all_tracks)
        click.echo(f"queued audio features for {queued} track{'' if queued == 1 else 's'}")
    finally:
        c.close()


@main.command()
@click.option("--tracks", "n_tracks", type=int, default=200, help="How many tracks to synthesize.")
@click.option("--seconds", type=float, default=30.0, help="Length of each track.")
@click.option("--transcode/--no-transcode", default=True, help="Queue the transcode ladder for every track.")
@click.option("--wait", is_flag=True, help="Transcode now instead of leaving it to the server's workers.")
def demo(n_tracks: int, seconds: float, transcode: bool, wait: bool) -> None:
    """Synthesize and import a demo catalog, and create demo users (idempotent)."""
    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap
    from tonearm.demo.seed import seed_demo

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    seed_demo(c, n_tracks=n_tracks, duration_s=seconds, transcode=transcode, wait=wait)
    c.close()


@main.group()
def user() -> None:
    """Manage accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--role", type=click.Choice(["listener", "artist", "admin"]), default="listener")
@click.option("--birth-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--password", default=None, help="Prompted for when omitted.")
def user_create(
    email: str, display_name: str, role: str, birth_date: dt.datetime | None, password: str | None
) -> None:
    """Create an account (e.g. the first admin)."""
    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap
    from tonearm.kernel.errors import TonearmError

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    pw = password or getpass.getpass("password: ")
    try:
        user_id = c.accounts.sign_up(
            email, pw, display_name, birth_date.date() if birth_date else None, role=role
        )
    except TonearmError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        c.close()
    click.echo(f"created {role} {email} ({user_id})")


@user.command("premium")
@click.option("--email", required=True)
@click.option("--plan", "plan_id", default="premium_individual", show_default=True)
@click.option("--days", type=int, default=30, show_default=True)
def user_premium(email: str, plan_id: str, days: int) -> None:
    """Give an account a plan for some days without charging (staff, testers, gifts); it ends by itself."""
    import sqlalchemy as sa

    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap
    from tonearm.domains.accounts.tables import users
    from tonearm.kernel.errors import TonearmError

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    try:
        with c.db.read() as conn:
            user_id = conn.execute(
                sa.select(users.c.id).where(users.c.email == email.strip().lower())
            ).scalar()
        if user_id is None:
            raise click.ClickException(f"no account with e-mail {email}")
        c.billing.comp(user_id, plan_id, days)
    except TonearmError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        c.close()
    click.echo(f"{email} has {plan_id} for {days} days")


@user.command("api-key")
@click.option("--email", required=True)
@click.option("--name", required=True, help="What the key is for, e.g. 'Symfonium on my phone'.")
def user_api_key(email: str, name: str) -> None:
    """Create an API key for a Subsonic app or a ListenBrainz scrobbler, and print it (once)."""
    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap
    from tonearm.kernel.errors import TonearmError

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    try:
        found = c.credentials.user_by_name(email)
        if found is None:
            raise click.ClickException(f"no account with e-mail {email}")
        created = c.credentials.create_key(found[0].user_id, name)
    except TonearmError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        c.close()
    click.echo(created["key"])


if __name__ == "__main__":
    main()


@main.group()
def search() -> None:
    """The search index."""


@search.command("reindex")
def search_reindex() -> None:
    """Rebuild the search index from the database; the live index answers until the new one is in."""
    import sys

    from tqdm import tqdm

    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    try:
        with tqdm(unit="doc", desc="reindexing", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = max(total, done)
                bar.update(done - bar.n)

            result = c.indexer.reindex(progress)
        click.echo(
            f"indexed {result.documents} documents in {result.seconds:.1f} s "
            f"(tracks {c.search_index.count('track')}, albums {c.search_index.count('album')}, "
            f"artists {c.search_index.count('artist')}, playlists {c.search_index.count('playlist')}); "
            f"changes after #{result.seq} replay on top"
        )
    finally:
        c.close()


@search.command("status")
def search_status() -> None:
    """How many documents the index holds and how far it is behind the catalog."""
    from tonearm.bootstrap import bootstrap
    from tonearm.kernel import changes

    s = _settings()
    c = bootstrap(s)
    try:
        with c.db.read() as conn:
            head = changes.head(conn)
        applied = c.search_index.applied_seq()
        click.echo(f"index: {s.resolved_search_url.split('@')[-1]}")
        for kind in ("track", "album", "artist", "playlist"):
            click.echo(f"  {kind}s: {c.search_index.count(kind)}")
        click.echo(f"  applied change #{applied} of #{head} ({max(head - applied, 0)} pending)")
    finally:
        c.close()


@main.group()
def recs() -> None:
    """The recommender: train it, see its runs, measure it."""


@recs.command("train")
@click.option("--force", is_flag=True, help="Train even when no signal changed since the last model.")
def recs_train(force: bool) -> None:
    """Train now, in this process, with a progress bar (resumes an interrupted run)."""
    import sys

    from tqdm import tqdm

    from tonearm import migrate as m
    from tonearm.bootstrap import bootstrap

    s = _settings()
    m.upgrade(s.resolved_database_url)
    c = bootstrap(s)
    stages = ("signals", "content", "als", "ready")
    try:
        with tqdm(total=len(stages) - 1, desc="training", unit="stage", file=sys.stderr) as bar:

            def progress(stage: str, fraction: float) -> None:
                bar.set_postfix_str(stage)
                bar.n = round(min(len(stages) - 1, stages.index(stage) + fraction), 2)
                bar.refresh()

            run = c.recs.train(force=force, progress=progress)
        st = run["stats"]
        took = " ".join(f"{k} {v:.1f} s" for k, v in st.get("seconds", {}).items())
        what = "trained" if run["created"] else "already up to date:"
        click.echo(
            f"{what} model {run['id']} ({run['status']}): {st.get('users', 0)} listeners, "
            f"{st.get('items', 0)} tracks, {st.get('plays', 0)} plays; {took}"
        )
    finally:
        c.close()


@recs.command("status")
def recs_status() -> None:
    """The model being served and the latest training runs."""
    from tonearm.bootstrap import bootstrap

    c = bootstrap(_settings())
    try:
        info = c.recs.runs(limit=5)
        click.echo(f"serving: {info['serving'] or 'no model yet (popularity fallback)'}")
        for r in info["runs"]:
            click.echo(
                f"  {r['id']}  {r['status']:<8} {r['stage']:<8} {r['progress']:.0%}  {r['created_at']}"
            )
    finally:
        c.close()


@recs.command("evaluate")
@click.option("--test-fraction", default=0.2, show_default=True, help="Newest share of plays held out.")
@click.option("--max-listeners", default=5000, show_default=True, help="Listeners scored (a sample).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Write a PNG chart.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def recs_evaluate(test_fraction: float, max_listeners: int, plot_path: str | None, as_json: bool) -> None:
    """Split plays by time, train on the older part, and score top-10 lists against what each
    listener played later: recall@10, NDCG@10, coverage and diversity, next to a popularity baseline."""
    import sys
    from pathlib import Path

    import orjson
    from tqdm import tqdm

    from tonearm.bootstrap import bootstrap
    from tonearm.domains.recs.evaluate import evaluate, plot

    if not 0.05 <= test_fraction <= 0.5:
        raise click.BadParameter("between 0.05 and 0.5", param_hint="--test-fraction")
    c = bootstrap(_settings())
    try:
        with tqdm(total=100, desc="evaluating", unit="%", file=sys.stderr) as bar:

            def progress(stage: str, fraction: float) -> None:
                bar.set_postfix_str(stage)
                bar.n = int(fraction * 100) if stage == "evaluate" else 0
                bar.refresh()

            try:
                report = evaluate(
                    c.db, test_fraction=test_fraction, max_listeners=max_listeners, progress=progress
                )
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
        if as_json:
            click.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(
                f"split at {report.cutoff}: trained on {report.train_plays} plays, "
                f"{report.test_listeners} listeners with {report.test_items} new tracks played later"
            )
            click.echo(f"{'':14}{'recall@10':>10}{'NDCG@10':>10}{'coverage':>10}{'diversity':>10}")
            for name, sc in (("tonearm", report.ours), ("popularity", report.popularity)):
                click.echo(
                    f"{name:14}{sc.recall:>10.4f}{sc.ndcg:>10.4f}{sc.coverage:>10.4f}{sc.diversity:>10.4f}"
                )
            lift = "inf" if report.lift == float("inf") else f"{report.lift:.2f}"
            click.echo(f"recall lift over popularity: {lift}x")
        if plot_path:
            click.echo(f"plot: {plot(report, Path(plot_path))}")
    finally:
        c.close()
