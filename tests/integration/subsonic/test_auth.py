"""Who may call /rest/*: API keys, token + salt against the app password, legacy `p=` only when
the admin enables it, and the error codes the specification gives each failure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.subsonic.conftest import World
from tests.subsonic import check, error_code, token_params


def ping(world: World, fmt: str, **params: Any) -> int | None:
    r = world.client.get("/rest/ping.view", params={**params, "f": fmt})
    return error_code(check("ping", r))


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_each_mechanism_and_its_errors(world: World, fmt: str) -> None:
    me = world.me
    assert ping(world, fmt, apiKey=me.api_key) is None
    assert ping(world, fmt, **token_params(me.email, me.app_password)) is None
    assert ping(world, fmt, **token_params(me.email.upper(), me.app_password)) is None  # e-mail: any case
    # Wrong key: 44. `u` beside apiKey: 43, even with the right key.
    assert ping(world, fmt, apiKey=me.api_key + "x") == 44
    assert ping(world, fmt, apiKey=me.api_key, u=me.email) == 43
    assert ping(world, fmt, u=me.email, t="0" * 32, s="abcdef", p="x") == 43
    # Missing parameters: 10.
    assert ping(world, fmt) == 10
    assert ping(world, fmt, u=me.email) == 10
    assert ping(world, fmt, u=me.email, t="0" * 32) == 10  # no salt
    # A wrong token, an unknown user, and an unknown user with an empty password: 40.
    assert ping(world, fmt, **token_params(me.email, "not it")) == 40
    assert ping(world, fmt, **token_params("nobody@example.com", "")) == 40
    # The account password is never a Subsonic password.
    assert ping(world, fmt, **token_params(me.email, "a long password")) == 40
    # Legacy p= is off unless the admin turns it on: 42, whatever the password.
    assert ping(world, fmt, u=me.email, p=me.app_password) == 42


def test_a_user_without_an_app_password_cannot_use_tokens(world: World) -> None:
    someone = world.new_listener()
    world.c.credentials.delete_app_password(someone.user_id)
    assert ping(world, "json", **token_params(someone.email, "")) == 40
    assert ping(world, "json", apiKey=someone.api_key) is None


def test_revoked_keys_and_reset_app_passwords_stop_working(world: World) -> None:
    someone = world.new_listener()
    keys = world.c.credentials.keys(someone.user_id)
    assert [k["prefix"] for k in keys] == [someone.api_key[:6]] and "key" not in keys[0]
    world.c.credentials.revoke_key(someone.user_id, keys[0]["id"])
    assert ping(world, "json", apiKey=someone.api_key) == 44
    new_password = world.c.credentials.reset_app_password(someone.user_id)
    assert ping(world, "json", **token_params(someone.email, someone.app_password)) == 40
    assert ping(world, "json", **token_params(someone.email, new_password)) is None


def test_legacy_password_when_enabled(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    me = world.me
    monkeypatch.setattr(world.c.settings, "subsonic_legacy_auth", True)
    assert ping(world, "json", u=me.email, p=me.app_password) is None
    assert ping(world, "json", u=me.email, p="enc:" + me.app_password.encode().hex()) is None
    assert ping(world, "json", u=me.email, p="enc:zz") == 40
    assert ping(world, "json", u="nobody@example.com", p="") == 40
    assert ping(world, "json", u=me.email, p="a long password") == 40  # the account password: no


def test_form_post_and_jsonp(world: World) -> None:
    r = world.client.post(
        "/rest/ping", data={"apiKey": world.me.api_key, "f": "json", "c": "t", "v": "1.16.1"}
    )
    assert error_code(check("ping", r)) is None
    r = world.client.get("/rest/ping", params={"apiKey": world.me.api_key, "f": "jsonp", "callback": "got"})
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.text.startswith('got({"subsonic-response":') and r.text.endswith(");")
    # A callback that is not a plain JavaScript name is not echoed (no script injection).
    r = world.client.get(
        "/rest/ping", params={"apiKey": world.me.api_key, "f": "jsonp", "callback": "x;alert(1)//"}
    )
    assert r.text.startswith("callback(")


def test_no_auth_for_extensions_and_unknown_methods(world: World) -> None:
    answer = check("getOpenSubsonicExtensions", world.client.get("/rest/getOpenSubsonicExtensions?f=json"))
    names = {e["name"] for e in answer["openSubsonicExtensions"]}
    assert {"apiKeyAuthentication", "formPost"} <= names
    r = world.client.get("/rest/noSuchMethod.view", params=world.me.auth)
    assert r.status_code == 404 and 'status="failed"' in r.text
    info = world.rest("tokenInfo", fmt="json")
    assert info["tokenInfo"]["username"] == world.me.email


def test_failed_sign_ins_are_rate_limited(world: World) -> None:
    """After 30 wrong keys from one address in a minute, even a right one waits (code 0)."""
    world.c.limiter.reset("app-auth:testclient")
    for _ in range(30):
        assert ping(world, "json", apiKey="wrong") == 44
    assert ping(world, "json", apiKey=world.me.api_key) == 0
    world.c.limiter.reset("app-auth:testclient")
    assert ping(world, "json", apiKey=world.me.api_key) is None
