"""Who is calling: an API key (`apiKey`), Subsonic's token (`u`, `t`, `s`) checked against the
user's app password, or (only if the admin turns it on) the legacy `p` parameter.

The account password is never accepted here: Subsonic sends credentials in every URL, and its
token scheme needs the password in clear on the server. See domains/accounts/credentials.py.
"""

from __future__ import annotations

from tonearm.bootstrap import Container
from tonearm.domains.accounts.credentials import FAILURES_PER_MINUTE, Caller, failures_key
from tonearm.subsonic.protocol import (
    CONFLICTING_MECHANISMS,
    GENERIC,
    INVALID_API_KEY,
    MECHANISM_NOT_SUPPORTED,
    WRONG_CREDENTIALS,
    Params,
    SubsonicError,
    missing,
)

HELP_PATH = "/#/account/apps"  # the web app's page for API keys and the app password


def authenticate(c: Container, params: Params, client_ip: str) -> Caller:
    api_key = params.opt("apiKey")
    username = params.opt("u")
    token, salt, password = params.opt("t"), params.opt("s"), params.opt("p")
    help_url = c.settings.public_url.rstrip("/") + HELP_PATH
    if api_key is not None:
        if username is not None or token is not None or password is not None:
            raise SubsonicError(
                CONFLICTING_MECHANISMS,
                "Multiple conflicting authentication mechanisms provided: send apiKey without u, p, t or s",
            )
        _check_rate(c, client_ip)
        caller = c.credentials.authenticate_key(api_key)
        if caller is None:
            _failed(c, client_ip)
            raise SubsonicError(INVALID_API_KEY, "Invalid API key", help_url=help_url)
        return caller
    if username is None:
        raise missing("u (or apiKey)")
    if token is not None and password is not None:
        raise SubsonicError(
            CONFLICTING_MECHANISMS, "Multiple conflicting authentication mechanisms provided: both t and p"
        )
    if token is None and password is None:
        raise missing("t and s (or apiKey)")
    if token is not None and not salt:
        raise missing("s")
    if password is not None and not c.settings.subsonic_legacy_auth:
        raise SubsonicError(
            MECHANISM_NOT_SUPPORTED,
            "Provided authentication mechanism not supported: use an API key, or a token made from "
            "your app password",
            help_url=help_url,
        )
    _check_rate(c, client_ip)
    found = c.credentials.user_by_name(username)
    app_password = found[1] if found else None
    ok = False
    if app_password:  # a user without one (or no such user) never matches, whatever was sent
        if token is not None:
            ok = c.credentials.token_matches(app_password, token, salt or "")
        elif password is not None:
            ok = c.credentials.password_matches(app_password, _decode_password(password))
    if not ok or found is None:
        _failed(c, client_ip)
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password", help_url=help_url)
    return found[0]


def _decode_password(value: str) -> str:
    if not value.startswith("enc:"):
        return value
    try:
        return bytes.fromhex(value[4:]).decode("utf-8")
    except ValueError:
        return "\0"  # never equal to a generated password


def _check_rate(c: Container, client_ip: str) -> None:
    wait = c.limiter.retry_after(failures_key(client_ip), FAILURES_PER_MINUTE, 60)
    if wait > 0:
        raise SubsonicError(
            GENERIC, f"Too many failed sign-ins from this address; try again in {int(wait) + 1} s"
        )


def _failed(c: Container, client_ip: str) -> None:
    c.limiter.hit(failures_key(client_ip))
