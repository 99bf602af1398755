"""Offline playback in Debian's Chromium: a Premium listener downloads tracks (this browser becomes one
of their devices), the app starts again without a network from its Service Worker, and a downloaded
track plays from IndexedDB; a free listener is told downloads are Premium; an expired or edited
licence does not play; the app is installable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.e2e.webapp import ARGS, CHROMIUM, log_in, serve_demo, tonearm_cli

pytestmark = pytest.mark.slow

# Downloads the first album's tracks through offline.js (what the album page's Download button does).
DOWNLOAD_ALBUM = """async () => {
  const core = await import('/static/core.js');
  const releases = await core.api('/v1/browse/new-releases?limit=1');
  const album = await core.api('/v1/albums/' + releases.albums.items[0].id);
  const offline = await import('/static/offline.js');
  const result = await offline.download(album.tracks.items);
  return { result, ids: album.tracks.items.map((t) => t.id) };
}"""

# Plays offlineSource's blob: URL in a fresh <audio> until its time advances.
PLAY_SOURCE = """async (id) => {
  const offline = await import('/static/offline.js');
  const src = await offline.offlineSource(id);
  if (!src) return null;
  const a = new Audio(src.url);
  a.muted = true;
  await a.play();
  await new Promise((resolve) => {
    const t = () => (a.currentTime > 0.5 ? resolve() : setTimeout(t, 50));
    t();
  });
  a.pause();
  return { url: src.url, name: src.track.name, played: a.currentTime, gain_db: src.gain_db };
}"""

# Edits the stored download's expiry (both the record and its licence), as a client that cheats would.
SET_EXPIRY = """async ([id, delta]) => {
  const req = (r) => new Promise((ok, ko) => { r.onsuccess = () => ok(r.result); r.onerror = ko; });
  const db = await req(indexedDB.open('tonearm-offline'));
  const me = JSON.parse(localStorage.getItem('tonearm.offline.me'));
  const store = (mode) => db.transaction('downloads', mode).objectStore('downloads');
  const rec = await req(store('readonly').get([me.id, id]));
  const was = rec.licence.expires_at;
  rec.licence.expires_at = rec.expires_at = Math.floor(Date.now() / 1000) + delta;
  await req(store('readwrite').put(rec));
  return was;
}"""


# Polls `predicate` (source of an async function of offline.js's module `m` and `arg`) until it holds.
UNTIL = """async ([predicate, arg]) => {
  const m = await import('/static/offline.js');
  const holds = new Function('m', `return ${predicate}`)(m);
  for (let i = 0; i < 300; i++) {
    if (await holds(arg)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("offline")
    with serve_demo(tmp, tracks=3, seconds=8) as base:
        tonearm_cli(
            tmp / "data", "user", "premium", "--email", "b@example.com", "--plan", "premium_individual"
        )
        yield {"base": base, "tmp": tmp}


def _token(page: Page) -> str:
    return str(page.evaluate("localStorage.getItem('tonearm.access')"))


def _premium_login(page: Page, base: str) -> None:
    log_in(page, base)
    page.wait_for_selector("#nav .badge:text('premium')")


def test_download_then_start_offline_and_play(server: dict[str, Any]) -> None:
    base = server["base"]
    with sync_playwright() as p:
        # A persistent profile: installability is not judged in incognito-like contexts.
        context = p.chromium.launch_persistent_context(
            str(server["tmp"] / "profile"), executable_path=CHROMIUM, args=ARGS, bypass_csp=True
        )
        page = context.pages[0] if context.pages else context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _premium_login(page, base)

        # The album page's Download button (shown to Premium listeners).
        page.click(".grid a.card[href^='#/album/'] >> nth=0")
        page.wait_for_selector("table.tracks tr.track >> nth=2")
        ids = page.eval_on_selector_all("table.tracks tr.track", "(rows) => rows.map((r) => r.dataset.id)")
        page.get_by_role("button", name="Download Chromium Nights").click()
        page.wait_for_selector("#toast:has-text('3 tracks downloaded')")
        assert page.evaluate("(id) => import('/static/offline.js').then((m) => m.isDownloaded(id))", ids[0])

        # The browser is one of the listener's devices, holding the three downloads.
        devices = httpx.get(
            f"{base}/v1/me/devices", headers={"Authorization": f"Bearer {_token(page)}"}
        ).json()["devices"]
        assert [(d["kind"], d["downloads"]) for d in devices] == [("browser", 3)]
        assert "Chromium" in devices[0]["name"]

        # Installable: a manifest with icons, a Service Worker controlling the page.
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        manifest = httpx.get(f"{base}/manifest.webmanifest")
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        assert {i["sizes"] for i in manifest.json()["icons"]} >= {"192x192", "512x512"}
        cdp = context.new_cdp_session(page)
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []

        # Its cache holds the app shell and nothing else (no API answers, no media).
        cached = page.evaluate(
            "caches.keys().then((names) => Promise.all(names.map((n) => caches.open(n)"
            ".then((c) => c.keys())))).then((all) => all.flat().map((r) => new URL(r.url).pathname))"
        )
        assert {"/", "/static/app.js", "/static/offline.js", "/static/vendor/hls.light.min.js"} <= set(cached)
        assert all(u == "/" or u == "/manifest.webmanifest" or u.startswith("/static/") for u in cached), (
            cached
        )

        # Offline: the page comes back from the Service Worker's cache and opens the downloads.
        page.goto(f"{base}/#/")
        context.set_offline(True)
        response = page.reload()  # (started offline at home, the app opens the downloads)
        assert response is not None and response.from_service_worker
        page.wait_for_selector("h1:text('Downloads')")
        assert page.url.endswith("#/downloads")
        # (really offline: a shell file the cache lacks cannot be fetched)
        assert (
            page.evaluate("fetch('/static/not-cached.js').then(() => 'fetched', () => 'failed')") == "failed"
        )
        rows = page.locator("table.downloads tr.dl")
        assert rows.count() == 3
        assert "Browser Song 0" in rows.nth(0).inner_text()
        assert page.locator("table.downloads img[src^='blob:']").count() == 3  # cover art, kept offline

        # The decrypted download plays (from a blob: URL), with the gain from the grant.
        played = page.evaluate(PLAY_SOURCE, ids[0])
        assert played is not None and played["url"].startswith("blob:") and played["played"] > 0.5
        assert played["name"] == "Browser Song 0"
        assert isinstance(played["gain_db"], (int, float))

        # The player plays it, from this browser: the Play button of the downloads page.
        page.get_by_role("button", name="Play Browser Song 1").click()
        page.wait_for_function("document.querySelector('#audio').currentTime > 1")
        assert page.inner_text("#np-title") == "Browser Song 1"
        assert page.evaluate("document.querySelector('#audio').currentSrc").startswith("blob:")
        assert errors == []
        context.close()


def test_an_expired_or_edited_licence_does_not_play(server: dict[str, Any]) -> None:
    base = server["base"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(bypass_csp=True)
        _premium_login(page, base)
        got = page.evaluate(DOWNLOAD_ALBUM)
        assert got["result"]["downloaded"] == 3, got
        track = got["ids"][2]
        assert page.evaluate(PLAY_SOURCE, track) is not None

        # Pushing the expiry back breaks the licence (its key is bound to the expiry): not played.
        was = page.evaluate(SET_EXPIRY, [track, 400 * 86400])
        assert page.evaluate(PLAY_SOURCE, track) is None
        # Past its expiry by this device's clock: not played, and the page says why.
        page.evaluate(SET_EXPIRY, [track, -60])
        assert page.evaluate(PLAY_SOURCE, track) is None
        page.goto(f"{base}/#/downloads")
        row = page.locator("table.downloads tr.dl", has_text="Browser Song 2")
        row.wait_for()
        assert "Expired" in row.inner_text()
        assert row.get_by_role("button", name="Play Browser Song 2").is_disabled()
        # The other downloads still play.
        assert page.evaluate(PLAY_SOURCE, got["ids"][0]) is not None

        # Removing a download deletes it here and on the server.
        page.get_by_role("button", name="Remove Browser Song 2 from downloads").click()
        page.wait_for_function("document.querySelectorAll('table.downloads tr.dl').length === 2")
        assert not page.evaluate(
            "(id) => import('/static/offline.js').then((m) => m.isDownloaded(id))", track
        )
        tok = {"Authorization": f"Bearer {_token(page)}"}
        device = next(
            d
            for d in httpx.get(f"{base}/v1/me/devices", headers=tok).json()["devices"]
            if d["downloads"] == 2
        )
        active = httpx.get(f"{base}/v1/me/devices/{device['id']}/downloads?state=active", headers=tok).json()
        assert sorted(i["track_id"] for i in active["items"]) == sorted(got["ids"][:2])
        assert was > 0
        browser.close()


def test_a_free_listener_is_told_downloads_are_premium(server: dict[str, Any]) -> None:
    base = server["base"]
    user = {"email": "free@example.com", "password": "free pw 123", "display_name": "Free"}
    r = httpx.post(f"{base}/v1/users", json={**user, "birth_date": "1990-01-01"})
    assert r.status_code in (200, 201), r.text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(bypass_csp=True)
        log_in(page, base, user["email"], user["password"])
        page.wait_for_selector("#nav .badge:text('free')")
        got = page.evaluate(DOWNLOAD_ALBUM)
        assert got["result"]["error"] == "Offline downloads are a Premium feature"
        assert page.inner_text("#toast") == "Offline downloads are a Premium feature"
        # The server says so too, in the same words, when a client does not know the plan.
        page.evaluate("import('/static/core.js').then((c) => { c.state.me.product = 'premium'; })")
        page.evaluate("document.querySelector('#toast').textContent = ''")
        got = page.evaluate(DOWNLOAD_ALBUM)
        assert got["result"]["error"] == "Offline downloads are a Premium feature"
        assert page.inner_text("#toast") == "Offline downloads are a Premium feature"
        page.goto(f"{base}/#/downloads")
        page.reload()  # the plan as the server knows it
        page.wait_for_selector("h1:text('Downloads')")
        assert "Offline downloads are a Premium feature" in page.inner_text("#view")
        browser.close()


def test_licences_renew_online_and_revoked_downloads_are_deleted(server: dict[str, Any]) -> None:
    """On start, online: a licence expiring within 7 days is renewed, and a download the server
    revoked (removed from another place) is deleted here."""
    base = server["base"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(bypass_csp=True)
        _premium_login(page, base)
        got = page.evaluate(DOWNLOAD_ALBUM)
        assert got["result"]["downloaded"] == 3, got
        first, second = got["ids"][:2]
        page.evaluate(SET_EXPIRY, [first, 2 * 86400])  # due for renewal (and no longer opening)
        assert page.evaluate(PLAY_SOURCE, first) is None
        tok = {"Authorization": f"Bearer {_token(page)}"}
        device_id = page.evaluate(
            "new Promise((ok) => { const r = indexedDB.open('tonearm-offline'); r.onsuccess = () => {"
            " const g = r.result.transaction('devices').objectStore('devices').getAll();"
            " g.onsuccess = () => ok(g.result[0].id); }; })"
        )
        removed = httpx.request(
            "DELETE", f"{base}/v1/me/devices/{device_id}/downloads", headers=tok, json={"ids": [second]}
        )
        assert removed.json() == {"removed": 1}

        page.reload()  # the app starts again, online
        # (the app's own start-up work; wait_for_function does not wait for promises)
        assert page.evaluate(UNTIL, ["(id) => m.isDownloaded(id).then((d) => !d)", second])
        renewed_to = (
            "(id) => m.offlineSource(id).then((s) => s && s.expires_at > Date.now() / 1000 + 20 * 86400)"
        )
        assert page.evaluate(UNTIL, [renewed_to, first])  # a fresh licence, valid 30 days: it opens again
        played = page.evaluate(PLAY_SOURCE, first)
        assert played is not None and played["name"] == "Browser Song 0"
        renewed = httpx.get(f"{base}/v1/me/devices", headers=tok).json()["devices"]
        assert next(d for d in renewed if d["id"] == device_id)["licences_renewed_at"] is not None
        page.goto(f"{base}/#/downloads")
        page.wait_for_selector("table.downloads tr.dl >> nth=1")
        assert page.locator("table.downloads tr.dl").count() == 2
        assert page.locator("table.downloads", has_text="Browser Song 1").count() == 0
        browser.close()
