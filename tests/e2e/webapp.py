"""What the browser tests share: Debian's Chromium and its flags, a Tonearm server in a subprocess
with a few imported tones and a listener, and logging in through the web app."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_server_and_worker import _free_port, _tonearm, _wait_ready
from tests.helpers import make_tone

# Pages are opened with bypass_csp=True: Playwright evaluates string predicates (wait_for_function)
# and injected scripts (axe) with eval, which the app's Content-Security-Policy refuses.
# test_pages_browser checks that the policy holds in a page that does not bypass it.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def _wait_jobs_done(base: str, n: int, timeout_s: float = 90) -> None:
    """The in-process worker transcodes the imported tracks; free listeners need those renditions."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{base}/metrics").text
        # (counted by kind: the scheduler's billing sweep is a job too)
        if f'tonearm_jobs_total{{kind="ingest.track_renditions",outcome="done"}} {float(n)}' in metrics:
            return
        time.sleep(0.5)
    pytest.fail("imported tracks were not transcoded in time")


@contextmanager
def serve_demo(tmp_path: Path, *, tracks: int = 3, seconds: int = 4, **env_extra: str) -> Iterator[str]:
    """A server with `tracks` imported tones by "Headless" (album "Chromium Nights") and the
    listener b@example.com / "browser pw"; yields its base URL once the tones are transcoded."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required (make test-deps installs it)")
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(tracks):
        make_tone(
            lib / f"{i}.flac",
            seconds=seconds,
            freq=220 * (i + 1),
            tags={
                "title": f"Browser Song {i}",
                "artist": "Headless",
                "album": "Chromium Nights",
                "track": str(i + 1),
            },
        )
    port = _free_port()
    env = {
        **os.environ,
        "TONEARM_DATA_DIR": str(tmp_path / "data"),
        "TONEARM_PORT": str(port),
        "TONEARM_SECRET_KEY": "w" * 40,
        "TONEARM_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TONEARM_LOG_LEVEL": "WARNING",
        **env_extra,
    }
    subprocess.run(_tonearm("import", str(lib)), env=env, check=True, capture_output=True)
    subprocess.run(
        _tonearm(
            "user", "create", "--email", "b@example.com", "--name", "Browser", "--password", "browser pw"
        ),
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(_tonearm("serve"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        _wait_jobs_done(base, tracks)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def tonearm_cli(data_dir: Path, *args: str, **extra_env: str) -> None:
    """`tonearm <args>` against a test server's data directory (users, plans, roles)."""
    env = {**os.environ, "TONEARM_DATA_DIR": str(data_dir), "TONEARM_LOG_LEVEL": "WARNING", **extra_env}
    subprocess.run(_tonearm(*args), env=env, check=True, capture_output=True)


def log_in(page: Any, base: str, email: str = "b@example.com", password: str = "browser pw") -> None:  # noqa: S107 (the test listener)
    page.goto(f"{base}/#/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button.primary")
