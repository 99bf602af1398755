"""Accessibility and layout of the main pages in Debian's Chromium: axe-core (from npm) reports no
serious or critical violations, nothing overflows sideways on a 375 px phone, and each page is
saved as a screenshot at desktop (1280x800) and phone (375x812) sizes, as test artifacts
($TONEARM_TEST_ARTIFACTS, else ./test-artifacts, under screenshots/)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.webapp import log_in, serve_demo, tonearm_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules/axe-core/axe.min.js"
ARTIFACTS = Path(os.environ.get("TONEARM_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "screenshots"
SIZES = {"desktop": (1280, 800), "phone": (375, 812)}
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make setup` (npm ci) installs it into node_modules/")
    tmp = tmp_path_factory.mktemp("a11y")
    with serve_demo(tmp, tracks=3, seconds=30) as base:
        tonearm_cli(
            tmp / "data", "user", "premium", "--email", "b@example.com", "--plan", "premium_individual"
        )
        tok = httpx.post(
            f"{base}/api/token",
            data={"grant_type": "password", "username": "b@example.com", "password": "browser pw"},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {tok}"}
        album = httpx.get(f"{base}/v1/browse/new-releases?limit=1").json()["albums"]["items"][0]
        tracks = httpx.get(f"{base}/v1/albums/{album['id']}", headers=auth).json()["tracks"]["items"]
        playlist = httpx.post(
            f"{base}/v1/me/playlists",
            headers=auth,
            json={"name": "Night drive", "description": "<b>tones</b>"},
        ).json()
        httpx.post(
            f"{base}/v1/playlists/{playlist['id']}/tracks",
            headers=auth,
            json={"uris": [f"tonearm:track:{t['id']}" for t in tracks]},
        )
        httpx.put(f"{base}/v1/me/tracks?ids={tracks[0]['id']}", headers=auth)
        yield {
            "base": base,
            "album": album["id"],
            "artist": album["artists"][0]["id"],
            "playlist": playlist["id"],
        }


def _violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({"
        " id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })) })))"
    )
    return list(result)


def _check(page: Page, name: str, ready: str) -> list[str]:
    """Axe at both sizes, screenshots, and the phone's horizontal overflow: (problems, foreign ones)."""
    problems: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_selector(ready)
        page.evaluate(
            "document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => r(0))))"
        )
        for v in _violations(page):
            line = f"{name} ({size}): [{v['impact']}] {v['id']}: {v['help']}\n" + "\n".join(
                f"    {n['target']}: {n['summary']}" for n in v["nodes"][:6]
            )
            print(line)
            if v["impact"] not in BLOCKING:
                continue
            problems.append(line)
        # (a status message would hide the page in the picture)
        page.evaluate("document.querySelector('#toast').hidden = true")
        page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
        if size == "phone":
            wide = page.evaluate(
                "[document.documentElement.scrollWidth, [...document.querySelectorAll('body *')]"
                ".filter((e) => e.getBoundingClientRect().right > innerWidth + 1)"
                ".slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
                " + (typeof e.className === 'string' && e.className"
                " ? '.' + e.className.split(' ').join('.') : ''))]"
            )
            if wide[0] > w:
                problems.append(f"{name} (phone): the page is {wide[0]} px wide, wider than {w}: {wide[1]}")
    return problems


def _verdict(problems: list[str]) -> None:
    assert problems == [], "\n".join(problems)


LOGGED_OUT = {"login": ("#/login", "input[name=email]"), "signup": ("#/signup", "input[name=email]")}
LOGGED_IN = {
    "home": ("#/", ".grid .card img"),
    "search": ("#/search/browser%20song", "#view h2"),
    "album": ("#/album/{album}", "table.tracks tr.track"),
    "artist": ("#/artist/{artist}", ".album-head h1"),
    "library": ("#/library", "#view h1"),
    "playlist": ("#/playlist/{playlist}", "table.tracks tr.track"),
    "upload": ("#/upload", "#view h1"),
    "account": ("#/account", "#view h1"),
    "downloads": ("#/downloads", "table.downloads tr.dl"),
}


@pytest.fixture(scope="module")
def listener(server: dict[str, Any], browser: Browser) -> Iterator[Page]:
    """A Premium listener's page with three downloads and a track in the player bar."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    log_in(page, server["base"])
    page.wait_for_selector("#nav .badge:text('premium')")
    got = page.evaluate(
        "(id) => import('/static/core.js').then((c) => c.api('/v1/albums/' + id)).then((a) =>"
        " import('/static/offline.js').then((m) => m.download(a.tracks.items.map((t) =>"
        " Object.assign({ album: { id: a.id, name: a.name, images: a.images } }, t)))))",
        server["album"],
    )
    assert got["downloaded"] == 3, json.dumps(got)
    page.goto(f"{server['base']}/#/album/{server['album']}")
    page.wait_for_selector("table.tracks tr.track")
    page.click("#play-all")
    page.wait_for_function("document.querySelector('#audio').currentTime > 0.5")
    page.evaluate("document.querySelector('#audio').pause()")
    yield page
    context.close()
    assert errors == []


@pytest.mark.parametrize("name", list(LOGGED_OUT))
def test_logged_out_page(name: str, server: dict[str, Any], browser: Browser) -> None:
    page = browser.new_page(bypass_csp=True)
    hash_, ready = LOGGED_OUT[name]
    page.goto(f"{server['base']}/{hash_}")
    result = _check(page, name, ready)
    page.close()
    _verdict(result)


@pytest.mark.parametrize("name", list(LOGGED_IN))
def test_logged_in_page(name: str, server: dict[str, Any], listener: Page) -> None:
    hash_, ready = LOGGED_IN[name]
    listener.goto(f"{server['base']}/{hash_.format(**server)}")
    _verdict(_check(listener, name, ready))


def test_skip_link_and_focus(server: dict[str, Any], listener: Page) -> None:
    """The first Tab stop skips to the page's heading; focused controls show an outline."""
    listener.set_viewport_size({"width": 1280, "height": 800})
    listener.goto(f"{server['base']}/#/album/{server['album']}")
    listener.reload()  # focus starts from the top of the document
    listener.wait_for_selector("table.tracks tr.track")
    listener.keyboard.press("Tab")
    assert listener.evaluate("document.activeElement.className") == "skip-link"
    assert listener.evaluate("document.activeElement.getBoundingClientRect().top") >= 0  # shown when focused
    listener.keyboard.press("Enter")
    assert listener.evaluate("document.activeElement.tagName") == "H1"
    listener.keyboard.press("Tab")
    outline = listener.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline


def test_a_dialog(server: dict[str, Any], listener: Page) -> None:
    """A modal dialog (sharing an album) on both sizes."""
    listener.goto(f"{server['base']}/#/album/{server['album']}")
    listener.get_by_role("button", name="Share Chromium Nights").click()
    _verdict(_check(listener, "share-dialog", "dialog[open]"))
    listener.keyboard.press("Escape")
