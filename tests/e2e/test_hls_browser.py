"""The web player streams adaptively in Debian's Chromium: hls.js plays the signed HLS master of a
premium listener (AAC 96/160/320), climbs to the top variant on loopback, drops to a lower one
when the network is throttled (DevTools network emulation), keeps playing, and reports player
events that the server counts."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, Request, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.test_server_and_worker import _free_port, _tonearm, _wait_ready
from tests.e2e.webapp import ARGS, CHROMIUM
from tests.helpers import make_tone
from tonearm.domains.history.tables import playbacks
from tonearm.kernel.db import make_engine

pytestmark = pytest.mark.slow
VENDOR = Path(__file__).parents[2] / "src/tonearm/web/static/vendor/hls.light.min.js"
TRACK_S = 75  # long enough to climb, be throttled, switch down and go on playing
THROTTLED_BPS = 120_000  # between the 96 and the 160 kb/s variant


def _poll(what: str, fn: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _counter(base: str, name: str, labels: str) -> float:
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", httpx.get(f"{base}/metrics").text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def premium_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required (make test-deps installs it)")
    if not VENDOR.exists():
        pytest.fail(f"{VENDOR} is missing: `make setup` vendors hls.js from npm")
    tmp_path = tmp_path_factory.mktemp("hls")
    lib = tmp_path / "lib"
    lib.mkdir()
    # Pink noise under the chord makes the AAC encoder spend what each bit rate allows, as on music,
    # so the three variants really differ in size.
    make_tone(
        lib / "song.flac",
        seconds=TRACK_S,
        freq=196,
        noise=True,
        tags={"title": "Adaptive Song", "artist": "Headless", "album": "Bitrate Ladder", "track": "1"},
    )
    port = _free_port()
    data = tmp_path / "data"
    env = {
        **os.environ,
        "TONEARM_DATA_DIR": str(data),
        "TONEARM_PORT": str(port),
        "TONEARM_SECRET_KEY": "h" * 40,
        "TONEARM_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TONEARM_LOG_LEVEL": "WARNING",
    }
    env.pop("TONEARM_DATABASE_URL", None)
    subprocess.run(_tonearm("import", str(lib)), env=env, check=True, capture_output=True)
    subprocess.run(
        _tonearm(
            "user", "create", "--email", "p@example.com", "--name", "Premium", "--password", "premium pw"
        ),
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(  # before the first log-in, so every token sees the premium plan
        _tonearm("user", "premium", "--email", "p@example.com", "--days", "2"),
        env=env,
        check=True,
        capture_output=True,
    )
    engine = make_engine(f"sqlite:///{data / 'tonearm.db'}")
    proc = subprocess.Popen(_tonearm("serve"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        _poll(
            "the imported track to be transcoded",
            lambda: (
                'tonearm_jobs_total{kind="ingest.track_renditions",outcome="done"} 1.0'
                in httpx.get(f"{base}/metrics").text
            ),
            120,
        )
        yield {"base": base, "engine": engine}
    finally:
        proc.terminate()
        proc.wait(20)
        engine.dispose()


def _js(page: Page, expr: str) -> Any:
    return page.evaluate(expr)


def _log_in_and_play(page: Page, base: str) -> None:
    page.goto(f"{base}/#/login")
    page.fill("input[name=email]", "p@example.com")
    page.fill("input[name=password]", "premium pw")
    page.click("button.primary")
    page.wait_for_selector("#nav .badge:text('premium')")
    page.click(".grid .card >> nth=0")  # an album (the home shelves come first)
    page.click("tr.track >> nth=0 >> td.dur")  # (not a link)
    page.wait_for_function(
        "window.__tonearm.hls !== null && window.__tonearm.audio.currentTime > 3", timeout=30_000
    )


STATE_JS = """(() => {
  const t = window.__tonearm, a = t.audio, b = a.buffered, h = t.hls;
  return {position: a.currentTime, buffered_to: b.length ? b.end(b.length - 1) : 0,
          paused: a.paused, ended: a.ended, error: a.error && a.error.code,
          level: h && h.currentLevel, loading: h && h.loadLevel, estimate_bps: h && h.bandwidthEstimate,
          history: t.levelHistory.map(x => [x.rendition, Math.round(x.t)])};
})()"""


def test_hls_adapts_to_a_throttled_network_and_reports_events(premium_server: dict[str, Any]) -> None:
    base, engine = premium_server["base"], premium_server["engine"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(bypass_csp=True)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            _log_in_and_play(page, base)
            levels = _js(page, "window.__tonearm.hls.levels.map(l => [l.uri.split('?')[0], l.bitrate])")
            names = sorted(u.rsplit("/", 1)[-1] for u, _ in levels)
            assert names == ["aac_160.m3u8", "aac_320.m3u8", "aac_96.m3u8"], levels
            rates = sorted(b for _, b in levels)
            assert rates[0] < rates[1] < rates[2], levels  # the noise makes the variants really differ

            # Unthrottled loopback: ABR climbs to the top variant, and that is what the bar shows.
            page.wait_for_function(
                "(h => h.currentLevel >= 0 && h.levels[h.currentLevel].bitrate === "
                "Math.max(...h.levels.map(l => l.bitrate)))(window.__tonearm.hls)",
                timeout=30_000,
            )
            assert page.inner_text("#np-quality") == "AAC 320 kbps"
            before = _js(page, "window.__tonearm.hls.levels[window.__tonearm.hls.currentLevel].bitrate")
            seen = _js(page, "window.__tonearm.levelHistory.length")

            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": 100,
                    "downloadThroughput": THROTTLED_BPS / 8,
                    "uploadThroughput": -1,
                },
            )
            throttled_at = time.monotonic()
            # LEVEL_SWITCHED fires when the lower variant is heard, i.e. once the ~15 s of buffer
            # fetched at the top rate has played out after hls.js switched its loading down.
            try:
                page.wait_for_function(
                    f"window.__tonearm.levelHistory.slice({seen}).some(h => h.bitrate < {before})",
                    timeout=90_000,
                    polling=250,
                )
            except PlaywrightTimeout:
                pytest.fail(f"no switch to a lower variant under throttling: {_js(page, STATE_JS)}")
            took = time.monotonic() - throttled_at
            lower = _js(page, f"window.__tonearm.levelHistory.slice({seen}).find(h => h.bitrate < {before})")
            took_s = f"{took:.1f} s after throttling"
            print(f"switched {before} -> {lower['bitrate']} b/s ({lower['rendition']}), {took_s}")
            assert lower["rendition"] in ("aac_96", "aac_160")
            assert page.inner_text("#np-quality") in ("AAC 96 kbps", "AAC 160 kbps")

            # Playback goes on at the lower bit rate.
            at = _js(page, "window.__tonearm.audio.currentTime")
            page.wait_for_function(
                f"window.__tonearm.audio.currentTime > {at + 2} || window.__tonearm.audio.ended",
                timeout=60_000,
            )
            state = _js(page, STATE_JS)
            assert state["error"] is None and (not state["paused"] or state["ended"]), state

            # The player reports its events (batched every 10 s); the server counted them.
            page.wait_for_function(
                "(s => s.some(e => e.type === 'start') && s.some(e => e.type === 'progress'))"
                "(window.__tonearm.events.sent)",
                timeout=40_000,
            )
            assert _counter(base, "tonearm_player_events_total", 'type="start"') >= 1
            playback_id = _js(page, "window.__tonearm.events.sent[0].playback_id")
            with engine.connect() as conn:
                pb = conn.execute(sa.select(playbacks).where(playbacks.c.id == playback_id)).one()
            assert pb.startup_ms is not None and 0 < pb.startup_ms < 60_000
            assert pb.rendition in ("aac_96", "aac_160", "aac_320")
            assert pb.ms_played >= 15_000
            assert errors == []
        finally:
            browser.close()


def test_expired_stream_urls_are_renewed_where_playback_was(premium_server: dict[str, Any]) -> None:
    """A signed URL that answers 403 (it expired during a long pause) makes the player fetch a new
    grant and go on from the same position, within the same playback (no second `start`)."""
    base = premium_server["base"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(bypass_csp=True)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            expired = {"on": False, "refused": 0, "grants": 0}

            def hls_request(route: Route) -> None:
                if expired["on"]:
                    expired["refused"] += 1
                    route.fulfill(status=403, content_type="application/json", body='{"error":{}}')
                else:
                    route.continue_()

            def on_request(request: Request) -> None:
                if request.url.split("?")[0].endswith("/playback"):
                    expired["grants"] += 1
                    expired["on"] = False  # the new grant's URLs are good

            page.route("**/hls/**", hls_request)
            page.on("request", on_request)
            _log_in_and_play(page, base)
            assert expired["grants"] == 1
            first = _js(page, "window.__tonearm.hls")
            _js(
                page,
                "window.__tonearm.audio.addEventListener('playing', e => "
                "(window.__playingAt = window.__playingAt || []).push(e.target.currentTime))",
            )
            at = _js(page, "window.__tonearm.audio.currentTime")
            # (Playwright's sync API runs the route handler only while a call into it waits.)
            with page.expect_request(lambda r: r.url.split("?")[0].endswith("/playback"), timeout=30_000):
                expired["on"] = True
            assert expired["grants"] == 2
            assert expired["refused"] >= 1
            page.wait_for_function(f"window.__tonearm.audio.currentTime > {at + 6}", timeout=30_000)
            assert first is not None and _js(page, "window.__tonearm.hls !== null")
            resumed_from = _js(page, "window.__playingAt[0]")
            assert resumed_from >= at - 0.5, (at, resumed_from)  # where it was, not from the start
            _js(page, "window.__tonearm.events.flush()")
            page.wait_for_function(
                "window.__tonearm.events.queue.length === 0 && !window.__tonearm.events.pending"
            )
            types = _js(page, "window.__tonearm.events.sent.map(e => e.type)")
            assert types.count("start") == 1 and "error" not in types, types
            assert errors == []
        finally:
            browser.close()
