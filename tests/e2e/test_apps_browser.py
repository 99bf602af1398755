"""The "Apps & API keys" page in Debian's Chromium: an API key made in the page works for a Subsonic
ping and stops working once revoked there; an app password made there signs a token ping.

The key and the password are read off the page, as a listener would copy them into an app. The
page with a fresh key and a revealed app password passes axe and fits a 375 px phone."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_a11y_browser import AXE, _check, _verdict
from tests.e2e.webapp import log_in, serve_demo

pytestmark = pytest.mark.slow

EMAIL = "b@example.com"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_demo(tmp_path_factory.mktemp("apps"), tracks=1, seconds=2) as url:
        yield url


def _ping(base: str, **auth: str) -> dict[str, object]:
    r = httpx.get(f"{base}/rest/ping", params={"f": "json", "v": "1.16.1", "c": "apps-test", **auth})
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()["subsonic-response"]
    return answer


def _open_apps_page(page: Page, base: str) -> None:
    log_in(page, base)
    page.wait_for_selector("#nav a[href='#/account']")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/#/account")
    page.get_by_role("link", name="Apps & API keys").first.click()
    expect(page.get_by_role("heading", name="Apps & API keys", level=1)).to_be_visible()


def test_api_key_made_in_the_page_works_until_revoked(page: Page, base: str) -> None:
    _open_apps_page(page, base)
    assert page.get_by_label("Server address", exact=True).input_value() == base
    expect(page.locator("#no-keys")).to_be_visible()

    page.get_by_label("Name of the new key").fill("Symfonium <on> my phone")
    page.get_by_role("button", name="Create API key").click()
    key_field = page.locator("#new-key").get_by_label("API key", exact=True)
    expect(key_field).to_be_focused()
    key = key_field.input_value()
    assert len(key) == 40 and key.isalnum()
    row = page.locator(".api-keys li")
    expect(row).to_have_count(1)
    # The name is text, not markup; only the first characters of the key are listed.
    expect(row.locator(".key-name")).to_have_text("Symfonium <on> my phone")
    expect(row.locator(".key-prefix")).to_have_text(key[:6] + "…")
    expect(row).to_contain_text("last used never")

    ok = _ping(base, apiKey=key)
    assert ok["status"] == "ok" and ok["openSubsonic"] is True

    # Shown once: after a reload the key itself is gone from the page, its prefix stays.
    page.reload()
    expect(page.locator(".api-keys li .key-prefix")).to_have_text(key[:6] + "…")
    assert page.locator("#new-key").count() == 0
    assert key not in page.content()
    expect(page.locator(".api-keys li")).not_to_contain_text("last used never")  # the ping used it

    # Cancelling the confirmation keeps the key; confirming revokes it.
    page.get_by_role("button", name="Revoke the key Symfonium <on> my phone").click()
    page.locator("dialog.confirm").get_by_role("button", name="Cancel").click()
    assert _ping(base, apiKey=key)["status"] == "ok"
    page.get_by_role("button", name="Revoke the key Symfonium <on> my phone").click()
    page.locator("dialog.confirm").get_by_role("button", name="Revoke key").click()
    expect(page.locator("#no-keys")).to_be_visible()

    refused = _ping(base, apiKey=key)
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == 44  # type: ignore[index]
    assert str(refused["error"]["helpUrl"]).endswith("/#/account/apps")  # type: ignore[index]


def test_app_password_made_in_the_page_signs_a_token_ping(page: Page, base: str) -> None:
    _open_apps_page(page, base)
    assert page.get_by_label("Username", exact=True).input_value() == EMAIL
    expect(page.locator("#no-app-password")).to_be_visible()

    page.get_by_role("button", name="Create an app password").click()
    field = page.locator("#app-password").get_by_label("App password", exact=True)
    expect(field).to_be_focused()
    expect(field).to_have_attribute("type", "text")  # revealed right after it is made
    first = field.input_value()
    assert len(first) == 24

    def token_ping(password: str) -> dict[str, object]:
        salt = secrets.token_hex(6)
        token = hashlib.md5((password + salt).encode(), usedforsecurity=False).hexdigest()
        return _ping(base, u=EMAIL, t=token, s=salt)

    assert token_ping(first)["status"] == "ok"

    # Hidden on a fresh visit; Show reveals it and says so.
    page.reload()
    field = page.locator("#app-password").get_by_label("App password", exact=True)
    expect(field).to_have_attribute("type", "password")
    reveal = page.get_by_role("button", name="Show")
    reveal.click()
    expect(field).to_have_attribute("type", "text")
    expect(page.get_by_role("button", name="Hide")).to_have_attribute("aria-pressed", "true")

    # A new one needs a confirmation, and the old one stops working.
    page.get_by_role("button", name="Make a new one").click()
    page.locator("dialog.confirm").get_by_role("button", name="Make a new one").click()
    expect(field).not_to_have_value(first)
    second = field.input_value()
    assert token_ping(second)["status"] == "ok"
    old = token_ping(first)
    assert old["status"] == "failed" and old["error"]["code"] == 40  # type: ignore[index]

    page.get_by_role("button", name="Remove").click()
    page.locator("dialog.confirm").get_by_role("button", name="Remove").click()
    expect(page.locator("#no-app-password")).to_be_visible()
    gone = token_ping(second)
    assert gone["status"] == "failed" and gone["error"]["code"] == 40  # type: ignore[index]


def test_the_page_is_accessible_and_fits_a_phone(page: Page, base: str) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make setup` (npm ci) installs it into node_modules/")
    _open_apps_page(page, base)
    page.get_by_label("Name of the new key").fill("A rather long name for a key: Feishin on the desktop")
    page.get_by_role("button", name="Create API key").click()
    page.wait_for_selector("#new-key")
    if page.locator("#no-app-password").count():  # (the test before removes the one it made)
        page.get_by_role("button", name="Create an app password").click()
    page.wait_for_selector("#app-password .secret")
    # The new key stays on the page until the listener leaves it, whatever else they do there.
    expect(page.locator("#new-key")).to_be_visible()
    _verdict(_check(page, "apps", "#app-password .secret"))
