"""The web app's pages in Debian's Chromium: upload (a song becomes playable; a text file named .mp3
gets a plain-words refusal; HTML in its title stays text), the artist page (top tracks, follow),
a track's page and ⋯ menu, grouped search, and editing a playlist's details and cover."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from tests.e2e.webapp import ARGS, CHROMIUM, log_in, serve_demo
from tests.helpers import make_tone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_demo(tmp_path_factory.mktemp("pages")) as url:
        yield url


@pytest.fixture
def page(base: str) -> Iterator[Any]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(bypass_csp=True)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("dialog", lambda d: errors.append(f"a {d.type} dialog opened: {d.message}"))
        log_in(pg, base)
        pg.wait_for_selector(".grid .card")
        yield pg
        assert errors == []
        browser.close()


def _token(base: str) -> dict[str, str]:
    tok = httpx.post(
        f"{base}/api/token",
        data={"grant_type": "password", "username": "b@example.com", "password": "browser pw"},
    ).json()["access_token"]
    return {"Authorization": f"Bearer {tok}"}


def test_upload_a_song_and_play_it_refuse_a_fake_and_show_html_as_text(
    base: str, page: Any, tmp_path: Path
) -> None:
    title = "<img src=x onerror=alert(1)> Uploaded & Sung"
    song = make_tone(tmp_path / "song.flac", seconds=3, tags={"title": title, "artist": "Uploader"})
    fake = tmp_path / "notes.mp3"
    fake.write_text("these are my notes, not music\n" * 50)
    page.click("#nav a[href='#/upload']")
    page.wait_for_selector("#choose")
    page.set_input_files("#pick", [str(song), str(fake)])
    page.wait_for_selector("#list li:has-text('notes.mp3') .error")
    refusal = page.inner_text("#list li:has-text('notes.mp3') .error")
    assert "audio" in refusal.lower(), refusal  # said in words, from the content, not the name
    page.wait_for_selector("#list li:has-text('song.flac') button.play-upload", timeout=60_000)
    # The title is text: its markup shows as characters and no <img> was made from it.
    assert title in page.inner_text("#list li:has-text('song.flac')")
    assert page.locator("#list img").count() == 0
    page.click("#list li:has-text('song.flac') button.play-upload")
    page.wait_for_function("document.querySelector('#audio').currentTime > 0.5", timeout=30_000)
    assert page.inner_text("#np-title") == title


def test_artist_page_top_tracks_and_follow(base: str, page: Any) -> None:
    page.fill("#search", "headless")
    page.wait_for_selector("h2:text('Artists')")
    headings = page.locator("#view h2").all_inner_texts()
    assert "Artists" in headings and "Albums" in headings
    page.click(".grid a.card[href^='#/artist/'] >> nth=0")
    page.wait_for_selector("h2:text('Popular')")
    assert page.locator("table.tracks tr.track").count() == 3
    follow = page.locator("#save")
    assert follow.inner_text() == "Follow" and follow.get_attribute("aria-pressed") == "false"
    follow.click()
    page.wait_for_selector("#save[aria-pressed=true]")
    artist_id = page.url.rsplit("/", 1)[1]
    following = httpx.get(
        f"{base}/v1/me/following/contains", params={"type": "artist", "ids": artist_id}, headers=_token(base)
    ).json()
    assert following == [True]
    page.click("#save")
    page.wait_for_selector("#save[aria-pressed=false]")


def test_track_page_and_the_track_menu(base: str, page: Any) -> None:
    page.click(".grid a.card[href^='#/album/'] >> nth=0")
    page.wait_for_selector("table.tracks tr.track")
    page.click("table.tracks tr.track >> nth=1 >> td.title a.name")
    # The album page has an .album-head h1 too: wait for the track page's, not the one still shown.
    page.wait_for_function("document.querySelector('.album-head h1')?.textContent === 'Browser Song 1'")
    assert page.url.split("#")[1].startswith("/track/")
    assert "Chromium Nights" in page.inner_text(".album-head")
    # The ⋯ menu: keyboard-operable, Escape gives focus back to its button.
    more = page.get_by_role("button", name="More options for Browser Song 1")
    more.click()
    menu = page.get_by_role("menu")
    items = menu.get_by_role("menuitem").all_inner_texts()
    assert items[:4] == ["Play next", "Add to queue", "Add to playlist", "Start radio"]
    assert "Share" in items and "Go to album" in items
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent") == "Add to queue"
    page.keyboard.press("Escape")
    assert page.get_by_role("menu").count() == 0
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "More options for Browser Song 1"
    )
    more.click()
    page.get_by_role("menuitem", name="Go to album").click()
    page.wait_for_url("**/#/album/*")


def test_edit_a_playlists_details_and_cover(base: str, page: Any, tmp_path: Path) -> None:
    made = httpx.post(
        f"{base}/v1/me/playlists", json={"name": "Before", "public": False}, headers=_token(base)
    ).json()
    page.goto(f"{base}/#/playlist/{made['id']}")
    page.wait_for_selector("#edit")
    before = page.get_attribute(".album-head img", "src")
    cover = tmp_path / "cover.png"
    Image.new("RGB", (900, 700), (200, 40, 90)).save(cover)
    page.click("#edit")
    page.fill("dialog input[name=name]", "After <b>bold</b>")
    page.fill("dialog textarea[name=description]", "Edited in the browser")
    page.check("dialog input[name=public]")
    page.set_input_files("dialog input[name=cover]", str(cover))
    page.click("dialog button.primary")
    page.wait_for_selector(".album-head h1:text('After <b>bold</b>')")
    assert page.inner_text(".album-head .muted >> nth=0") == "Public playlist"
    got = httpx.get(f"{base}/v1/playlists/{made['id']}", headers=_token(base)).json()
    assert got["name"] == "After <b>bold</b>"
    assert (got["description"], got["public"]) == ("Edited in the browser", True)
    # The uploaded cover replaced the generated one: a square JPEG the server serves.
    after = got["images"][0]["url"]
    assert after != before
    served = httpx.get(after)
    assert served.status_code == 200
    shown = Image.open(io.BytesIO(served.content))
    assert shown.width == shown.height
    assert abs(shown.getpixel((shown.width // 2, shown.height // 2))[0] - 200) < 30  # type: ignore[index]


def test_an_expired_session_is_renewed_silently_then_a_revoked_one_returns_after_log_in(
    base: str, page: Any
) -> None:
    page.click(".grid a.card[href^='#/album/'] >> nth=0")
    page.wait_for_selector("table.tracks tr.track")
    album_url = page.url
    # An access token the server no longer takes: the refresh token gets a new one unseen.
    page.evaluate("localStorage.setItem('tonearm.access', 'expired-or-forged')")
    page.reload()
    page.wait_for_selector("table.tracks tr.track")
    page.wait_for_selector("#logout")
    renewed = page.evaluate("localStorage.getItem('tonearm.access')")
    assert renewed and renewed != "expired-or-forged"
    # Both tokens gone bad (the session was revoked elsewhere): to the log-in page, told why,
    # and back to the album after logging in.
    refresh = page.evaluate("localStorage.getItem('tonearm.refresh')")
    assert httpx.post(f"{base}/api/token/revoke", data={"token": refresh}).status_code == 200
    page.evaluate("localStorage.setItem('tonearm.access', 'expired-or-forged')")
    page.reload()
    page.wait_for_selector("input[name=email]")
    assert "session has ended" in page.inner_text("#toast")
    page.fill("input[name=email]", "b@example.com")
    page.fill("input[name=password]", "browser pw")
    page.click("button.primary")
    page.wait_for_url(album_url)
    page.wait_for_selector("table.tracks tr.track")


def test_the_content_security_policy_stops_injected_script(base: str) -> None:
    """Were markup ever to reach the page from a title, an inline <script> would not run."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page()  # the policy enforced, as for every listener
        violations: list[str] = []
        pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        pg.goto(f"{base}/#/login")
        pg.wait_for_selector("input[name=email]")  # the app's own modules run
        pg.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
            " document.body.appendChild(s); }"
        )
        assert pg.evaluate("() => window.__ran === undefined")
        assert violations, "the browser did not report the refused inline script"
        browser.close()
