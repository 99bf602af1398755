"""The account side of the web app in Debian's Chromium: sign up, subscribe with the sandbox's
test cards (a decline changes nothing; ads stop), Family invitations, devices, invoices, history
and yearly stats, profiles, and the share dialog.

One server for the module; every test makes its own listener, so none depends on another's state."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.webapp import log_in, serve_demo, tonearm_cli
from tests.helpers import make_tone

pytestmark = pytest.mark.slow

ADS_EVERY = 2
PASSWORD = "account pw"
_seq = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("account")
    with serve_demo(tmp, tracks=4, seconds=4, TONEARM_ADS_EVERY_TRACKS=str(ADS_EVERY)) as base:
        yield {"base": base, "tmp": tmp}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(base: str, email: str, password: str = PASSWORD) -> str:
    r = httpx.post(
        f"{base}/api/token", data={"grant_type": "password", "username": email, "password": password}
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _listener(base: str, name: str = "Listener") -> tuple[str, str]:
    """A new free listener: (e-mail, access token)."""
    email = f"acct{next(_seq)}-{time.monotonic_ns()}@example.com"
    r = httpx.post(
        f"{base}/v1/users",
        json={"email": email, "password": PASSWORD, "display_name": name, "birth_date": "1990-01-01"},
    )
    assert r.status_code == 201, r.text
    return email, _token(base, email)


def _log_in(page: Page, base: str, email: str) -> None:
    log_in(page, base, email, PASSWORD)
    page.wait_for_selector("#nav a[href='#/account']")
    # The home page loads after logging in: let it finish, or it could draw over the next page.
    page.wait_for_load_state("networkidle")


def _album(base: str, token: str) -> dict[str, Any]:
    """The demo album "Chromium Nights", with its tracks."""
    albums = httpx.get(f"{base}/v1/browse/new-releases?limit=50", headers=_auth(token)).json()["albums"]
    album = next(a for a in albums["items"] if a["name"] == "Chromium Nights")
    found: dict[str, Any] = httpx.get(f"{base}/v1/albums/{album['id']}", headers=_auth(token)).json()
    return found


def _badge(page: Page) -> str:
    return page.inner_text("#nav a[href='#/account']").strip().lower()


def _subscribe(page: Page, base: str, plan: str, card: str) -> None:
    """On #/account: choose `plan` and pay with the test card `card` ("4242 4242 4242 4242")."""
    page.goto(f"{base}/#/account")
    page.get_by_role("button", name=f"Choose {plan}").click()
    page.get_by_role("button", name=f"Use card {card}").click()
    page.click("#checkout button.pay")


def test_sign_up_through_the_web_app(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    page.goto(f"{base}/#/signup")
    page.fill("input[name=email]", "newcomer@example.com")
    page.fill("input[name=display_name]", "Newcomer")
    page.fill("input[name=birth_date]", "1995-05-05")
    page.fill("input[name=password]", "newcomer pw")
    page.click("button.primary")
    page.wait_for_selector("#nav a[href='#/account']")
    assert _badge(page) == "free"
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/#/account")
    page.wait_for_selector("#plan .plan-name")
    assert "Free" in page.inner_text("#plan")
    assert "newcomer@example.com" in page.inner_text("#view")


def test_a_declined_card_changes_nothing_then_a_good_one_subscribes(
    server: dict[str, Any], page: Page
) -> None:
    base = server["base"]
    email, token = _listener(base)
    _log_in(page, base, email)
    _subscribe(page, base, "Premium Individual", "4000 0000 0000 0002")
    page.wait_for_function("document.querySelector('#checkout-error').textContent.length > 0")
    error = page.inner_text("#checkout-error")
    assert "declined" in error.lower() and "Nothing was charged" in error
    assert page.get_by_role("alert").filter(has_text="declined").count() == 1
    assert _badge(page) == "free"
    assert httpx.get(f"{base}/v1/me/subscription", headers=_auth(token)).status_code == 404

    # Insufficient funds: the gateway's words too.
    page.get_by_role("button", name="Use card 4000 0000 0000 9995").click()
    page.click("#checkout button.pay")
    page.wait_for_function("document.querySelector('#checkout-error').textContent.includes('insufficient')")

    # A card number with a typo: said plainly, before any charge.
    page.fill("#checkout input[name=number]", "4242 4242 4242 4241")
    page.click("#checkout button.pay")
    page.wait_for_function("document.querySelector('#checkout-error').textContent.includes('Luhn')")
    assert not page.inner_text("#checkout-error").startswith("number:")

    page.get_by_role("button", name="Use card 4242 4242 4242 4242").click()
    page.click("#checkout button.pay")
    page.wait_for_function(
        "document.querySelector('#nav a[href=\"#/account\"]').textContent.trim() === 'premium'"
    )
    page.wait_for_selector("#plan .plan-name:has-text('Premium Individual')")
    plan = page.inner_text("#plan")
    assert (
        "Renews on" in plan and "No ads" in plan and "Unlimited skips" in plan and "visa ending 4242" in plan
    )
    assert page.locator(".plan-card.is-current").get_attribute("data-plan") == "premium_individual"

    # The invoice is there, paid, and opens to its lines.
    page.wait_for_selector("table.invoices tbody tr")
    row = page.inner_text("table.invoices tbody tr >> nth=0")
    assert "$11.99" in row and "paid" in row
    page.click("table.invoices button.invoice >> nth=0")
    page.wait_for_selector(".invoice-detail")
    assert "Premium Individual" in page.inner_text(".invoice-detail")
    assert page.get_attribute("table.invoices button.invoice >> nth=0", "aria-expanded") == "true"

    # Cancel, with a confirmation: Premium stays to the period's end.
    page.click("#cancel-sub")
    dialog = page.get_by_role("dialog", name="Confirm")
    assert "keep Premium until" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel subscription").click()
    page.wait_for_selector("#plan .plan-status:has-text('Cancelled')")
    assert (
        httpx.get(f"{base}/v1/me/subscription", headers=_auth(token)).json()["cancel_at_period_end"] is True
    )
    assert _badge(page) == "premium"
    page.click("#resume")
    page.wait_for_selector("#plan .plan-status:has-text('Renews on')")


def test_a_family_manager_gets_an_invitation_link(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    email, token = _listener(base, "Family Manager")
    _log_in(page, base, email)
    _subscribe(page, base, "Premium Family", "5555 5555 5555 4444")
    page.wait_for_selector("#members")
    assert "Family Manager" in page.inner_text("#members .members")
    page.get_by_role("button", name="Create invitation link").click()
    page.wait_for_selector("#invite-result input")
    link = page.input_value("#invite-result input")
    assert link.startswith(f"{base}/join/")
    page.get_by_role("button", name="Copy invitation link").click()
    page.wait_for_selector("#toast:not([hidden])")
    assert len(page.locator("#members .invites li").all()) == 1
    assert httpx.get(f"{base}/v1/invitations/{link.rsplit('/', 1)[1]}").json()["status"] == "valid"
    # The link is shown once; the pending invitation can be revoked.
    page.get_by_role("button", name="Revoke the invitation", exact=False).click()
    page.get_by_role("dialog", name="Confirm").get_by_role("button", name="Revoke").click()
    page.wait_for_selector("#members p.muted:has-text('No pending invitations')")
    assert httpx.get(f"{base}/v1/me/subscription/invitations", headers=_auth(token)).json()["items"] == []


def test_devices_list_rename_remove(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    email, token = _listener(base)
    for name in ("Old laptop", "Phone <b>bold</b>"):
        r = httpx.post(f"{base}/v1/me/devices", headers=_auth(token), json={"name": name, "kind": "browser"})
        assert r.status_code == 201, r.text
    _log_in(page, base, email)
    page.goto(f"{base}/#/account")
    page.wait_for_selector("#devices li")
    assert page.locator("#devices .dev-name").all_inner_texts() == ["Old laptop", "Phone <b>bold</b>"]
    assert page.locator("#devices b").count() == 0  # HTML in a name is text

    page.get_by_role("button", name="Rename Old laptop").click()
    page.get_by_label("New name for Old laptop").fill("Kitchen speaker")
    page.click("#devices .rename-form button.primary")
    page.wait_for_selector("#devices .dev-name:text('Kitchen speaker')")

    page.get_by_role("button", name="Remove Kitchen speaker").click()
    dialog = page.get_by_role("dialog", name="Confirm")
    dialog.get_by_role("button", name="Cancel").click()  # thought better of it
    assert page.locator("#devices li").count() == 2
    page.get_by_role("button", name="Remove Kitchen speaker").click()
    page.get_by_role("dialog", name="Confirm").get_by_role("button", name="Remove device").click()
    page.wait_for_function("document.querySelectorAll('#devices li').length === 1")
    names = [d["name"] for d in httpx.get(f"{base}/v1/me/devices", headers=_auth(token)).json()["devices"]]
    assert names == ["Phone <b>bold</b>"]


def test_history_and_stats_after_playing(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    email, token = _listener(base)
    album = _album(base, token)
    _log_in(page, base, email)
    page.goto(f"{base}/#/album/{album['id']}")
    page.wait_for_selector("tr.track")
    page.click("tr.track >> nth=0 >> td.dur")  # (not a link)
    # The 4-second tone plays to its end; the player reports it (the end is sent at once).
    page.wait_for_function("window.__tonearm.events.sent.some(e => e.type === 'end')", timeout=60_000)
    page.goto(f"{base}/#/history")
    page.wait_for_selector("#recent tr.track")
    assert "Browser Song 0" in page.inner_text("#recent")
    page.wait_for_selector("#top-lists table.tracks")
    assert "Browser Song 0" in page.inner_text("#top-lists")
    assert "Headless" in page.inner_text("#top-lists .grid")

    year = page.evaluate("new Date().getFullYear()")
    page.click(f"a[href='#/stats/{year}']")
    page.wait_for_selector("svg.chart[role=img]")
    label = page.get_attribute("#chart-months svg", "aria-label") or ""
    assert label.startswith(f"Minutes listened per month in {year}")
    assert page.locator("#chart-months svg rect").count() == 12
    artists = page.get_attribute("#chart-artists svg", "aria-label") or ""
    assert "Headless (1)" in artists
    assert "Headless" in page.inner_text("#chart-artists table")  # the numbers, as a table
    assert page.locator("nav.years a").count() >= 4
    page.click(f"nav.years a[href='#/stats/{year - 1}']")
    page.wait_for_selector(f"h1:text('Your {year - 1} in music')")
    assert "No plays in" in page.inner_text("#view")


def test_profile_page_shows_public_playlists_as_text(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    _, owner_token = _listener(base, "<i>Eve</i>")
    owner = httpx.get(f"{base}/v1/me", headers=_auth(owner_token)).json()
    for name, public in (("<b>Bold</b> mix", True), ("Secret", False)):
        r = httpx.post(
            f"{base}/v1/me/playlists", headers=_auth(owner_token), json={"name": name, "public": public}
        )
        assert r.status_code == 201, r.text
    email, _ = _listener(base)
    _log_in(page, base, email)
    page.goto(f"{base}/#/user/{owner['id']}")
    page.wait_for_selector(".profile-head h1")
    assert page.inner_text(".profile-head h1") == "<i>Eve</i>"
    assert page.locator(".profile-head .avatar").count() == 1  # no picture: initials
    assert page.locator(".grid .card").all_inner_texts()[0].startswith("<b>Bold</b> mix")
    assert page.locator(".grid .card").count() == 1  # the private one is not shown
    assert page.locator("#view b, #view i").count() == 0
    assert page.locator(".grid .card img").count() == 1


def test_share_a_track_and_open_its_public_page(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    email, token = _listener(base)
    track = _album(base, token)["tracks"]["items"][1]
    _log_in(page, base, email)
    page.evaluate(f"import('/static/share.js').then(m => {{ m.openShare('track', '{track['id']}'); }})")
    dialog = page.get_by_role("dialog", name="Share")
    dialog.wait_for()
    page.wait_for_function(
        "document.querySelector('dialog.share [data-field=link] input').value.startsWith('http')"
    )
    assert page.evaluate("document.activeElement.closest('dialog') !== null")  # focus went in
    link = page.input_value("dialog.share [data-field=link] input")
    assert link.startswith(f"{base}/s/")
    assert page.input_value("dialog.share [data-field=uri] input") == f"tonearm:track:{track['id']}"
    page.wait_for_function("document.querySelector('dialog.share textarea').value.includes('<iframe')")
    embed = page.input_value("dialog.share textarea")
    assert f"{base}/embed/track/{track['id']}" in embed and 'height="152"' in embed
    dialog.get_by_role("button", name="Copy the link").click()
    page.wait_for_function("document.querySelector('dialog.share .share-status').textContent.length > 0")
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog.share", state="detached")

    page.goto(link)
    assert page.url.startswith(f"{base}/track/{track['id']}")
    assert "Browser Song 1" in page.title() + page.inner_text("body")


def _make_ad(server: dict[str, Any]) -> None:
    base, tmp = server["base"], server["tmp"]
    admin = {"email": f"ads{next(_seq)}-{time.monotonic_ns()}@example.com", "password": "admin pw!"}
    tonearm_cli(
        tmp / "data",
        "user",
        "create",
        "--email",
        admin["email"],
        "--name",
        "Ads",
        "--role",
        "admin",
        "--password",
        admin["password"],
    )
    token = _token(base, admin["email"], admin["password"])
    src = make_tone(tmp / "ad.flac", seconds=2, freq=880, tags={"title": "An Ad", "artist": "Sponsor"})
    with src.open("rb") as fh:
        r = httpx.post(
            f"{base}/v1/me/uploads",
            headers=_auth(token),
            files={"file": ("ad.flac", fh)},
            data={"visibility": "private"},
            timeout=30,
        )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 90
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/v1/me/uploads/{r.json()['id']}", headers=_auth(token)).json()
        if status["status"] in ("ready", "failed"):
            break
        time.sleep(0.3)
    assert status["status"] == "ready", status
    ad = httpx.post(
        f"{base}/v1/admin/ads",
        headers=_auth(token),
        json={"track_id": status["track"]["id"], "name": "Test ad", "advertiser": "Sponsor"},
    )
    assert ad.status_code == 201, ad.text


def _play_row(page: Page, i: int) -> None:
    """Plays the album's i-th track and waits until it is heard."""
    page.click(f"tr.track >> nth={i}")
    page.wait_for_function(
        f"document.querySelector('#np-title').textContent === 'Browser Song {i}'"
        " && document.querySelector('#player').dataset.ad !== 'true'"
        " && document.querySelector('#audio').currentTime > 0.2",
        timeout=60_000,
    )


def test_subscribe_and_see_ads_disappear(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    _make_ad(server)
    email, token = _listener(base)
    album_id = _album(base, token)["id"]
    _log_in(page, base, email)
    page.goto(f"{base}/#/album/{album_id}")
    page.wait_for_selector("tr.track")
    # As a free listener: the ad comes before the ADS_EVERY-th track.
    page.click("tr.track >> nth=0 >> td.dur")  # (not a link)
    page.wait_for_function("document.querySelector('#audio').currentTime > 0.2", timeout=60_000)
    page.click("tr.track >> nth=1 >> td.dur")  # (not a link)
    page.wait_for_selector("#player[data-ad=true]", timeout=60_000)
    page.wait_for_selector("#player[data-ad=true]", state="detached", timeout=60_000)  # it played out

    _subscribe(page, base, "Premium Individual", "4242 4242 4242 4242")
    page.wait_for_function(
        "document.querySelector('#nav a[href=\"#/account\"]').textContent.trim() === 'premium'"
    )
    page.wait_for_selector("#plan .plan-name:has-text('Premium Individual')")
    assert "No ads" in page.inner_text("#plan")
    assert httpx.get(f"{base}/v1/me/entitlements", headers=_auth(token)).json()["ads"] is None

    # From now on, no ad: watch #player for one while playing more tracks than the ad interval.
    page.evaluate(
        """() => {
          window.__adSeen = false;
          const p = document.querySelector('#player');
          new MutationObserver(() => { if (p.dataset.ad === 'true') window.__adSeen = true; })
            .observe(p, { attributes: true, attributeFilter: ['data-ad'] });
        }"""
    )
    page.goto(f"{base}/#/album/{album_id}")
    page.wait_for_selector("tr.track")
    for i in range(ADS_EVERY * 2):
        _play_row(page, i % 4)
    assert page.evaluate("window.__adSeen") is False
    assert page.locator("#player[data-ad=true]").count() == 0


def test_stats_charts_follow_the_year_in_the_url(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    email, _ = _listener(base)
    _log_in(page, base, email)
    page.goto(f"{base}/#/stats/2020")
    page.wait_for_selector("h1:text('Your 2020 in music')")
    assert page.locator("svg.chart[role=img][aria-label]").count() == 2  # months and hours
    assert (
        page.get_attribute("#chart-months svg", "aria-label")
        == "Minutes listened per month in 2020: 0 in all"
    )
    assert page.locator("#chart-months table.visually-hidden tbody tr").count() == 12


def test_change_password_and_export_data(server: dict[str, Any], page: Page) -> None:
    base = server["base"]
    email, _ = _listener(base)
    _log_in(page, base, email)
    page.goto(f"{base}/#/account")
    page.wait_for_selector("#password-form")
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password (8 characters or more)").fill("a new password")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_selector("#password-error:text('Your current password is not right.')")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_selector("#toast:has-text('Your password was changed')")
    assert page.inner_text("#password-error") == ""
    assert _token(base, email, "a new password")

    page.get_by_role("button", name="Request a copy of my data").click()
    link = page.get_by_role("link", name="download your data")
    link.wait_for(timeout=60_000)
    href = link.get_attribute("href") or ""
    r = httpx.get(href if href.startswith("http") else base + href)
    assert r.status_code == 200 and r.content[:2] == b"PK"  # a ZIP
