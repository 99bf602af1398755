"""The web app in Debian's Chromium: log in, see cover art, play a track and hear time advance,
search as you type."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.webapp import log_in, serve_demo, tonearm_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    with serve_demo(tmp_path) as base:
        yield base


def test_log_in_browse_covers_and_play(demo_server: str, page: Page) -> None:
    log_in(page, demo_server)
    page.wait_for_selector(".card img")
    page.wait_for_function(
        "[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth === 300)"
    )
    assert "Chromium Nights" in page.inner_text(".grid")
    # The home feed: a free listener with no history gets popularity shelves, told why.
    assert page.inner_text(".shelf[data-shelf=popular] h2") == "Popular right now"
    assert page.locator(".shelf[data-shelf=popular] .card").count() == 3
    assert "Premium" in page.inner_text(".notice")
    page.click(".shelf[data-shelf=popular] .card >> nth=0")
    page.wait_for_function("document.querySelector('#np-title').textContent.startsWith('Browser Song')")
    page.click(".grid .card >> nth=0")
    page.wait_for_selector("tr.track")
    assert page.locator("tr.track").count() == 3
    page.click("tr.track >> nth=0 >> td.dur")  # (not a link)
    page.wait_for_function("document.querySelector('#np-title').textContent === 'Browser Song 0'")
    try:
        page.wait_for_function("document.querySelector('#audio').currentTime > 1", timeout=45_000)
    except PlaywrightTimeoutError as exc:  # say what the player was doing (seen once under load)
        state = page.evaluate(
            "(() => { const a = document.querySelector('#audio'); return {paused: a.paused, "
            "readyState: a.readyState, networkState: a.networkState, error: a.error && a.error.code, "
            "currentTime: a.currentTime, src: a.currentSrc, status: document.querySelector('#np-status')"
            "?.textContent, events: (window.__tonearm?.events || []).slice(-10)}; })()"
        )
        raise AssertionError(f"the clicked track did not play: {state}") from exc
    assert page.inner_text("#np-title") == "Browser Song 0"
    assert "kbps" in page.inner_text("#np-quality")

    # Search as you type, with a typo; then to the artist's page from the results.
    page.fill("#search", "browsr song 2")
    page.wait_for_selector("table.results tr.track")
    assert "Browser Song 2" in page.inner_text("table.results tr.track >> nth=0")
    assert "#/search/" in page.url
    page.fill("#search", "headl")
    page.wait_for_selector(".grid a.card[href^='#/artist/']")
    page.click(".grid a.card[href^='#/artist/'] >> nth=0")
    page.wait_for_selector(".album-head h1")
    assert page.inner_text(".album-head h1") == "Headless"
    assert "Chromium Nights" in page.inner_text(".grid")


def test_an_invitation_link_logs_in_and_joins_the_family_plan(
    demo_server: str, tmp_path: Path, page: Page
) -> None:
    """The link a Family manager hands out: /join/<code> leads through the log-in to a Join button,
    and the listener comes out premium."""
    manager = {"email": "m@example.com", "password": "manager pw"}
    data = tmp_path / "data"
    tonearm_cli(
        data,
        "user",
        "create",
        "--email",
        manager["email"],
        "--name",
        "Mum",
        "--password",
        manager["password"],
    )
    tonearm_cli(data, "user", "premium", "--email", manager["email"], "--plan", "premium_family")
    tok = httpx.post(
        f"{demo_server}/api/token",
        data={"grant_type": "password", "username": manager["email"], "password": manager["password"]},
    ).json()["access_token"]
    invitation = httpx.post(
        f"{demo_server}/v1/me/subscription/invitations", headers={"Authorization": f"Bearer {tok}"}
    ).json()
    assert invitation["url"].startswith(f"{demo_server}/join/")
    page.goto(invitation["url"])
    page.wait_for_selector("input[name=email]")  # not logged in yet: the log-in comes first
    page.fill("input[name=email]", "b@example.com")
    page.fill("input[name=password]", "browser pw")
    page.click("button.primary")
    page.wait_for_selector("#join")
    assert "Premium Family" in page.inner_text("h1") and "Mum invites you" in page.inner_text("#view")
    page.click("#join")
    page.wait_for_selector("#nav .badge:text('premium')")
    assert "You are Premium now" in page.inner_text("#view")
    assert httpx.get(f"{demo_server}/join/..%2Fetc").status_code == 404


def _rows(page: Any) -> list[str]:
    return [
        t.split("\n")[0].strip()
        for t in page.locator("table.tracks tr.track td.title .name").all_inner_texts()
    ]


def test_like_build_and_reorder_a_playlist(demo_server: str, page: Page) -> None:
    log_in(page, demo_server)
    page.click(".grid .card >> nth=0")
    page.wait_for_selector("table.tracks tr.track")
    assert _rows(page) == ["Browser Song 0", "Browser Song 1", "Browser Song 2"]

    like = page.get_by_role("button", name="Like Browser Song 0")
    like.click()
    page.wait_for_selector("tr.track >> nth=0 >> button.like[aria-pressed=true]")
    assert page.get_by_role("button", name="Unlike Browser Song 0").count() == 1

    # Build a playlist from the album: the first track starts it, the others join it.
    page.get_by_role("button", name="Add Browser Song 0 to a playlist").click()
    page.fill("dialog input[name=name]", "Road trip")
    page.click("dialog form button.primary")
    page.wait_for_selector("dialog", state="detached")
    for n in (1, 2):
        page.get_by_role("button", name=f"Add Browser Song {n} to a playlist").click()
        page.click("dialog ul.pick button:text('Road trip')")
        page.wait_for_selector("dialog", state="detached")

    page.click("#nav a[href='#/library']")
    page.wait_for_selector("h1:text('Your library')")
    assert "Browser Song 0" in page.inner_text("table.tracks")  # Liked Songs
    page.click(".grid a.card:has-text('Road trip')")
    page.wait_for_selector("table.tracks tr.track >> nth=2")
    assert _rows(page) == ["Browser Song 0", "Browser Song 1", "Browser Song 2"]

    page.drag_and_drop("tr.track >> nth=2", "tr.track >> nth=0")  # the last to the top
    page.wait_for_function("document.querySelector('table.tracks td.title').textContent.includes('Song 2')")
    assert _rows(page) == ["Browser Song 2", "Browser Song 0", "Browser Song 1"]
    page.get_by_role("button", name="Move Browser Song 2 down").click()  # the keyboard's way
    page.wait_for_function("document.querySelector('table.tracks td.title').textContent.includes('Song 0')")
    assert _rows(page) == ["Browser Song 0", "Browser Song 2", "Browser Song 1"]
    page.get_by_role("button", name="Remove Browser Song 1").click()
    page.wait_for_function("document.querySelectorAll('table.tracks tr.track').length === 2")
    assert _rows(page) == ["Browser Song 0", "Browser Song 2"]

    # The server agrees.
    tok = page.evaluate("localStorage.getItem('tonearm.access')")
    mine = httpx.get(f"{demo_server}/v1/me/playlists", headers={"Authorization": f"Bearer {tok}"}).json()
    road = next(x for x in mine["items"] if x["name"] == "Road trip")
    items = httpx.get(
        f"{demo_server}/v1/playlists/{road['id']}/tracks", headers={"Authorization": f"Bearer {tok}"}
    ).json()["items"]
    assert [i["track"]["name"] for i in items] == ["Browser Song 0", "Browser Song 2"]
