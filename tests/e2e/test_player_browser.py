"""The web player's bar and queue in Debian's Chromium: an album played from a row is the queue,
next and previous follow it; the queue page reorders and removes; shuffle and repeat; seeking, the
keyboard and the Media Session; a free listener's skip limit and ads; a track that cannot be played
is skipped with a message; the player rides out a server that goes away and comes back.

One server for the module (importing and transcoding costs ~20 s); each test has its own browser
context (its own localStorage) and listener where their state matters: premium p@ for the queue,
free b@ for the skip limit (2 an hour here), free f@ for ads (an ad before every track once one
runs; that test comes last, as the ad is the server's)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route

from tests.e2e.webapp import log_in, serve_demo, tonearm_cli
from tests.helpers import make_tone

pytestmark = pytest.mark.slow
TRACKS = 5
PREMIUM = ("p@example.com", "premium pw")
FREE = ("b@example.com", "browser pw")
AD_LISTENER = ("f@example.com", "free listener pw")
ADMIN = ("a@example.com", "admin pw")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("player")
    extra = {"TONEARM_FREE_SKIPS_PER_HOUR": "2", "TONEARM_ADS_EVERY_TRACKS": "1"}
    with serve_demo(tmp, tracks=TRACKS, seconds=30, **extra) as base:
        users = ((PREMIUM, "Pat", "listener"), (AD_LISTENER, "Fay", "listener"), (ADMIN, "Ada", "admin"))
        for (email, pw), name, role in users:
            tonearm_cli(
                tmp / "data",
                "user",
                "create",
                "--email",
                email,
                "--name",
                name,
                "--role",
                role,
                "--password",
                pw,
            )
        tonearm_cli(tmp / "data", "user", "premium", "--email", PREMIUM[0], "--days", "2")
        album = httpx.get(f"{base}/v1/browse/new-releases?limit=1").json()["albums"]["items"][0]
        tracks = httpx.get(f"{base}/v1/albums/{album['id']}/tracks?limit=50").json()["items"]
        yield {"base": base, "album": album["id"], "tracks": tracks, "tmp": tmp}


def _log_in(page: Page, base: str, who: tuple[str, str]) -> None:
    log_in(page, base, *who)
    page.wait_for_selector("#nav .badge")


def _open_album(page: Page, server: dict[str, Any]) -> None:
    page.goto(f"{server['base']}/#/album/{server['album']}")
    page.wait_for_selector("table.tracks tr.track >> nth=4")


PLAY_ALBUM = """async (index) => {
  const album = location.hash.split("/")[2];
  const auth = {Authorization: "Bearer " + localStorage.getItem("tonearm.access")};
  const r = await fetch(`/v1/albums/${album}/tracks?limit=50`, {headers: auth});
  (await import("/static/player.js")).playTracks((await r.json()).items, index);
}"""


def _start_queue(page: Page, index: int = 0) -> None:
    """The album's tracks become the queue from `index`: what a click on a track row does (tracks.js
    calls playTracks(tracks, i)); called here directly so these tests do not depend on the rows."""
    page.evaluate(PLAY_ALBUM, index)
    _playing(page, f"Browser Song {index}")


def _playing(page: Page, title: str) -> None:
    """`title` is in the bar and its time advances."""
    page.wait_for_function(f"document.querySelector('#np-title').textContent === {title!r}")
    at = page.evaluate("window.__tonearm.audio.currentTime")
    page.wait_for_function(
        f"!window.__tonearm.audio.paused && window.__tonearm.audio.currentTime > {at + 0.5}", timeout=30_000
    )


def _next_up(page: Page) -> list[str]:
    return page.locator("#q-next .q-item .t").all_inner_texts()


def _at(page: Page, seconds: float) -> None:
    page.fill("#np-seek", str(seconds))
    page.wait_for_function(f"Math.abs(window.__tonearm.audio.currentTime - {seconds}) < 3")


def _toast(page: Page, text: str) -> str:
    page.wait_for_function(
        f"(t => !t.hidden && t.textContent.includes({text!r}))(document.querySelector('#toast'))",
        timeout=30_000,
    )
    return page.inner_text("#toast")


# --- what waits for tracks.js: a row click plays the table as the queue; the ⋯ menu ---------------
def test_a_row_plays_the_album_and_next_and_previous_follow_it(page: Page, server: dict[str, Any]) -> None:
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    page.click("table.tracks tr.track >> nth=1 >> td.dur")  # (not a link)
    _playing(page, "Browser Song 1")
    page.click("#np-queue-btn")
    page.wait_for_selector("#q-next")
    assert _next_up(page) == ["Browser Song 2", "Browser Song 3", "Browser Song 4"]
    page.get_by_role("button", name="Next track", exact=True).click()
    _playing(page, "Browser Song 2")
    _at(page, 0)  # within its first 3 s "previous" goes back a track (after them, to the start)
    page.get_by_role("button", name="Previous track", exact=True).click()
    _playing(page, "Browser Song 1")
    # The bar links to the album and the artist.
    assert page.get_attribute("#np-title", "href") == f"#/album/{server['album']}"
    assert page.locator("#np-artist a[href^='#/artist/']").inner_text() == "Headless"


def test_the_track_menu_plays_next_and_adds_to_the_queue(page: Page, server: dict[str, Any]) -> None:
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    page.click("table.tracks tr.track >> nth=0 >> td.dur")  # (not a link)
    _playing(page, "Browser Song 0")
    page.get_by_role("button", name="More options for Browser Song 3", exact=True).click()
    page.get_by_role("menuitem", name="Play next", exact=True).click()
    assert "Added to queue" in _toast(page, "Added to queue")
    page.get_by_role("button", name="More options for Browser Song 0", exact=True).click()
    page.get_by_role("menuitem", name="Add to queue", exact=True).click()
    page.click("#np-queue-btn")
    page.wait_for_selector("#q-next")
    assert _next_up(page) == [
        "Browser Song 3",
        "Browser Song 1",
        "Browser Song 2",
        "Browser Song 3",
        "Browser Song 4",
        "Browser Song 0",
    ]


# --- the queue, shuffle, repeat -------------------------------------------------------------------
def test_the_queue_page_reorders_removes_clears_and_survives_a_reload(
    page: Page, server: dict[str, Any]
) -> None:
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    _start_queue(page, 0)
    # HTML in a title shows as text (a track object as another module might pass it).
    page.evaluate(
        """async () => (await import("/static/player.js")).enqueue([{id: "x", name: "<b id=bold>Bold</b>",
             artists: [{id: "y", name: "<i>it</i>"}], album: null, duration_ms: 1000}])"""
    )
    assert _toast(page, "Added to queue")
    page.get_by_role("button", name="Queue", exact=True).click()
    page.wait_for_selector("#q-next")
    assert "#/queue" in page.url
    assert _next_up(page) == [
        "Browser Song 1",
        "Browser Song 2",
        "Browser Song 3",
        "Browser Song 4",
        "<b id=bold>Bold</b>",
    ]
    assert page.locator("#bold").count() == 0
    page.get_by_role("button", name="Remove <b id=bold>Bold</b> from queue", exact=True).click()

    page.get_by_role("button", name="Move Browser Song 3 up", exact=True).click()
    assert _next_up(page) == ["Browser Song 1", "Browser Song 3", "Browser Song 2", "Browser Song 4"]
    # The focus stays on the moved track's button: the keyboard can go on moving it.
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Move Browser Song 3 up"
    page.drag_and_drop("#q-next .q-item >> nth=3", "#q-next .q-item >> nth=0")  # the last to the top
    assert _next_up(page) == ["Browser Song 4", "Browser Song 1", "Browser Song 3", "Browser Song 2"]
    page.get_by_role("button", name="Remove Browser Song 1 from queue", exact=True).click()
    assert _next_up(page) == ["Browser Song 4", "Browser Song 3", "Browser Song 2"]

    page.get_by_role("button", name="Next track", exact=True).click()
    _playing(page, "Browser Song 4")
    assert page.inner_text("#q-now .t") == "Browser Song 4"
    assert _next_up(page) == ["Browser Song 3", "Browser Song 2"]

    # A reload (or a session that ended) loses nothing, and does not start playing by itself.
    _at(page, 12)
    page.reload()
    page.wait_for_selector("#q-next")
    assert page.inner_text("#np-title") == "Browser Song 4"
    assert _next_up(page) == ["Browser Song 3", "Browser Song 2"]
    assert page.evaluate("window.__tonearm.audio.paused")
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function("window.__tonearm.audio.currentTime > 12.5", timeout=30_000)

    page.get_by_role("button", name="Clear queue", exact=True).click()
    assert page.locator("#q-next").count() == 0
    assert page.inner_text("#q-now .t") == "Browser Song 4"


def test_shuffle_and_repeat(page: Page, server: dict[str, Any]) -> None:
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    _start_queue(page, 0)
    page.click("#np-queue-btn")
    page.wait_for_selector("#q-next")
    in_order = ["Browser Song 1", "Browser Song 2", "Browser Song 3", "Browser Song 4"]
    shuffle = page.get_by_role("button", name="Shuffle", exact=True)
    orders = []
    for _ in range(8):  # one order in 24 is the album's own: shuffle until it differs
        shuffle.click()
        assert shuffle.get_attribute("aria-pressed") == "true"
        orders.append(_next_up(page))
        if orders[-1] != in_order:
            break
        shuffle.click()
    assert sorted(orders[-1]) == in_order and orders[-1] != in_order
    shuffle.click()  # off: the album's order again, from the current track on
    assert shuffle.get_attribute("aria-pressed") == "false"
    assert _next_up(page) == in_order

    # Repeat all: after the last track, the first.
    page.get_by_role("button", name="Repeat: off", exact=True).click()
    page.locator("#q-next .q-play >> nth=3").click()  # Browser Song 4, from the queue
    _playing(page, "Browser Song 4")
    _at(page, 28)
    _playing(page, "Browser Song 0")
    # Repeat one: the same track again.
    page.get_by_role("button", name="Repeat: all", exact=True).click()
    assert page.get_attribute("#np-repeat", "aria-label") == "Repeat: one"
    first = page.evaluate("window.__tonearm.events.pb.id")
    _at(page, 28)
    page.wait_for_function(f"window.__tonearm.events.pb && window.__tonearm.events.pb.id !== {first!r}")
    _playing(page, "Browser Song 0")
    # Repeat off: the queue ends after its last track, and playback stops.
    page.get_by_role("button", name="Repeat: one", exact=True).click()
    page.locator("#q-next .q-play >> nth=3").click()
    _playing(page, "Browser Song 4")
    _at(page, 28)
    page.wait_for_function("document.querySelector('#np-play').getAttribute('aria-label') === 'Play'")
    assert page.evaluate("window.__tonearm.audio.paused")
    assert page.inner_text("#np-title") == "Browser Song 4"


# --- seeking, keyboard, Media Session -----------------------------------------------------------------
def test_seek_slider_keyboard_and_media_session(page: Page, server: dict[str, Any]) -> None:
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    _start_queue(page, 0)
    _at(page, 20)
    assert page.evaluate("window.__tonearm.audio.currentTime") >= 19.5
    page.evaluate("document.activeElement.blur()")

    page.keyboard.press(" ")
    page.wait_for_function("window.__tonearm.audio.paused")
    page.wait_for_selector("#np-play[aria-label=Play]")
    page.keyboard.press(" ")
    page.wait_for_function("!window.__tonearm.audio.paused")
    at = page.evaluate("window.__tonearm.audio.currentTime")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"window.__tonearm.audio.currentTime < {at - 3}")
    page.keyboard.press("Shift+ArrowRight")
    _playing(page, "Browser Song 1")

    page.keyboard.press("ArrowDown")
    assert page.evaluate("+document.querySelector('#np-volume').value") == pytest.approx(0.95)
    page.keyboard.press("m")
    assert page.evaluate("window.__tonearm.audio.muted")
    assert page.get_attribute("#np-mute", "aria-pressed") == "true"
    page.keyboard.press("m")
    page.keyboard.press("r")
    assert page.get_attribute("#np-repeat", "aria-label") == "Repeat: all"
    page.keyboard.press("s")
    assert page.get_attribute("#np-shuffle", "aria-pressed") == "true"
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("s")  # typing is typing: no shuffle
    assert page.get_attribute("#np-shuffle", "aria-pressed") == "true"
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("?")
    page.wait_for_selector("dialog#shortcuts[open]")
    assert "Shuffle" in page.inner_text("dialog#shortcuts")
    page.keyboard.press("Escape")
    # The volume is the listener's, kept for next time.
    assert page.evaluate("JSON.parse(localStorage.getItem('tonearm.volume')).volume") == pytest.approx(0.95)

    meta = page.evaluate(
        "(m => ({title: m.title, artist: m.artist, album: m.album, art: m.artwork.length}))"
        "(navigator.mediaSession.metadata)"
    )
    assert meta["title"] == "Browser Song 1" and meta["artist"] == "Headless"
    assert meta["album"] == "Chromium Nights" and meta["art"] >= 1
    # Every control of the bar has an accessible name.
    unnamed = page.evaluate(
        "[...document.querySelectorAll('#player button, #player input')]"
        ".filter(e => !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)"
    )
    assert unnamed == []


# --- a free listener: the skip limit -------------------------------------------------------------------
def test_a_free_listener_hits_the_skip_limit(page: Page, server: dict[str, Any]) -> None:
    _log_in(page, server["base"], FREE)
    _open_album(page, server)
    _start_queue(page, 0)
    nxt = page.get_by_role("button", name="Next track", exact=True)
    nxt.click()
    _playing(page, "Browser Song 1")
    nxt.click()
    _playing(page, "Browser Song 2")
    nxt.click()  # the third in an hour: refused by the server
    message = _toast(page, "skips this hour")
    assert "You've used your 2 skips this hour. Next skip at" in message and "Premium" in message
    assert page.inner_text("#np-title") == "Browser Song 2"
    _playing(page, "Browser Song 2")
    page.evaluate("document.querySelector('#toast').hidden = true")
    page.keyboard.press("n")  # the keyboard's skip is a skip too
    _toast(page, "skips this hour")
    assert page.inner_text("#np-title") == "Browser Song 2"


# --- failures --------------------------------------------------------------------------------------------
def test_a_track_that_cannot_be_played_is_skipped_with_a_message(page: Page, server: dict[str, Any]) -> None:
    broken = server["tracks"][1]["id"]
    page.route(f"**/hls/{broken}/**", lambda route: route.abort())
    page.route(f"**/stream/{broken}/**", lambda route: route.abort())
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    _start_queue(page, 0)
    page.get_by_role("button", name="Next track", exact=True).click()
    assert "“Browser Song 1” could not be played; skipping" in _toast(page, "could not be played")
    _playing(page, "Browser Song 2")


def test_the_player_recovers_when_the_server_comes_back(page: Page, server: dict[str, Any]) -> None:
    _log_in(page, server["base"], PREMIUM)
    _open_album(page, server)
    # A short forward buffer (a whole 30 s tone would otherwise be fetched at once on loopback).
    page.evaluate("Object.assign(window.__tonearm.hlsConfig, {maxBufferLength: 2, maxMaxBufferLength: 2})")
    _start_queue(page, 0)
    assert page.evaluate("(b => b.end(b.length - 1))(window.__tonearm.audio.buffered)") < 20

    def away(route: Route) -> None:
        route.abort()

    patterns = ["**/hls/**", "**/stream/**", "**/v1/**"]
    for pattern in patterns:
        page.route(pattern, away)
    _at(page, 22)  # past what is buffered: the player needs the server now
    page.wait_for_function(
        "document.querySelector('#np-status').textContent.includes('Reconnecting')", timeout=60_000
    )
    page.wait_for_timeout(2000)  # (route handlers run while Playwright waits)
    for pattern in patterns:
        page.unroute(pattern, away)
    page.wait_for_function(
        "window.__tonearm.audio.currentTime > 23 && !window.__tonearm.audio.paused", timeout=60_000
    )
    assert page.inner_text("#np-title") == "Browser Song 0"  # the same track, where it was
    page.wait_for_function("document.querySelector('#np-status').hidden")

    # Away again when the next track is due: it starts once the server answers.
    for pattern in patterns:
        page.route(pattern, away)
    page.get_by_role("button", name="Next track", exact=True).click()
    page.wait_for_function(
        "document.querySelector('#np-status').textContent.includes('Reconnecting')", timeout=60_000
    )
    for pattern in patterns:
        page.unroute(pattern, away)
    _playing(page, "Browser Song 1")


# --- a free listener: ads (last: once an ad runs, free listeners hear it) ----------------------------
def _ad(server: dict[str, Any]) -> tuple[str, dict[str, str]]:
    base = server["base"]
    tok = httpx.post(
        f"{base}/api/token", data={"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]}
    ).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    src = make_tone(Path(server["tmp"]) / "ad.flac", seconds=3, freq=660, tags={"title": "Buy Now"})
    with src.open("rb") as fh:
        up = httpx.post(
            f"{base}/v1/me/uploads", headers=h, files={"file": ("ad.flac", fh, "audio/flac")}
        ).json()
    deadline = time.monotonic() + 90
    while (status := httpx.get(f"{base}/v1/me/uploads/{up['id']}", headers=h).json())["status"] != "ready":
        assert status["status"] != "failed" and time.monotonic() < deadline, status
        time.sleep(0.5)
    ad = httpx.post(
        f"{base}/v1/admin/ads",
        headers=h,
        json={"track_id": status["track"]["id"], "name": "Spring <Sale>", "advertiser": "Acme"},
    )
    assert ad.status_code == 201, ad.text
    return ad.json()["id"], h


def test_an_ad_plays_before_the_track_for_a_free_listener(page: Page, server: dict[str, Any]) -> None:
    ad_id, admin_headers = _ad(server)
    try:
        _log_in(page, server["base"], AD_LISTENER)
        _open_album(page, server)
        page.evaluate(PLAY_ALBUM, 0)
        page.wait_for_selector("#player[data-ad=true]", timeout=30_000)
        assert "Advertisement" in page.inner_text("#np-status")
        assert page.inner_text("#np-title") == "Spring <Sale>"
        assert page.get_by_role("button", name="Next track", exact=True).is_disabled()
        assert page.locator("#np-seek").is_disabled()
        page.wait_for_function(
            "window.__tonearm.audio.currentTime > 1 && document.querySelector('#player').dataset.ad"
        )
        page.keyboard.press("n")  # ads cannot be skipped
        _toast(page, "Ads can't be skipped")
        page.wait_for_selector("#player:not([data-ad])", timeout=60_000)
        _playing(page, "Browser Song 0")
        figures = httpx.get(f"{server['base']}/v1/admin/ads/{ad_id}", headers=admin_headers).json()
        assert figures["impressions"] == 1 and figures["completions"] == 1
    finally:
        httpx.patch(f"{server['base']}/v1/admin/ads/{ad_id}", headers=admin_headers, json={"active": False})
