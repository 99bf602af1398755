"""Users: getUser, getUsers, createUser, updateUser, deleteUser, changePassword.

A Subsonic username is the account's e-mail address (what apps sign in with). Roles map onto
Tonearm's: `adminRole` is the admin role; `downloadRole` is whether the listener's plan has
offline play; `maxBitRate` is what the plan streams (0, "no limit", when it includes lossless
originals); every listener may stream, upload, make playlists, share and rate. Tonearm has no
jukebox, podcasts, video, or per-user folders (everyone sees the one library, folder 1), and
tags and covers are changed by their uploader in the web app, not through these roles.

Passwords: Subsonic apps sign in with the app password, which the server makes (see
domains/accounts/credentials.py), never with one the user chose, and never with the account
password (it would travel in every URL). So `changePassword` is refused (50) with a pointer to the
web app, where the app password is reset. `createUser`'s `password` is the new account's password
for the web app; the new user then makes an app password or an API key there for their apps.
`updateUser` changes `adminRole` only; the other roles follow from the plan or are fixed, and an
attempt to change the e-mail address or the password through it is refused (code 0).
`deleteUser` (admins) deletes the account with all its data, exactly as its owner deleting it
in the web app would (PrivacyService), except that no password is asked; an admin cannot delete
themselves this way (they use the web app, with their password).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tonearm.domains.accounts.tables import users
from tonearm.subsonic.auth import HELP_PATH
from tonearm.subsonic.protocol import GENERIC, NOT_AUTHORIZED, Call, SubsonicError, method, not_found

MUSIC_FOLDER = 1  # the one library everyone sees


def _user_rows(call: Call, email: str | None = None) -> list[Any]:
    query = sa.select(users.c.id, users.c.email, users.c.role, users.c.updated_at).order_by(users.c.email)
    if email is not None:
        query = query.where(users.c.email == email.strip().lower())
    with call.c.db.read() as conn:
        return list(conn.execute(query).all())


def user_json(call: Call, row: Any) -> dict[str, Any]:
    plan = call.c.entitlements.for_user(row.id)
    quality = plan.quality
    return {
        "username": row.email,
        "email": row.email,
        "scrobblingEnabled": True,
        "maxBitRate": 0 if quality.lossless else quality.max_kbps,
        "adminRole": row.role == "admin",
        "settingsRole": True,
        "downloadRole": plan.offline,
        "uploadRole": True,
        "playlistRole": True,
        "coverArtRole": False,
        "commentRole": True,
        "podcastRole": False,
        "streamRole": True,
        "jukeboxRole": False,
        "shareRole": True,
        "videoConversionRole": False,
        "folder": [MUSIC_FOLDER],
    }


def _is_self(call: Call, username: str) -> bool:
    assert call.caller is not None
    return username.strip().lower() == call.caller.username.lower()


def _password(value: str) -> str:
    """Subsonic sends a password as it is or as `enc:` + hex of its UTF-8."""
    if not value.startswith("enc:"):
        return value
    try:
        return bytes.fromhex(value[4:]).decode("utf-8")
    except ValueError:
        raise SubsonicError(GENERIC, "password: enc: must be followed by hexadecimal UTF-8") from None


@method("getUser")
def get_user(call: Call) -> dict[str, Any]:
    username = call.params.req("username")
    if not _is_self(call, username):
        call.require_admin()
    rows = _user_rows(call, username)
    if not rows:
        raise not_found("User")
    return {"user": user_json(call, rows[0])}


@method("getUsers")
def get_users(call: Call) -> dict[str, Any]:
    call.require_admin()
    return {"users": {"user": [user_json(call, r) for r in _user_rows(call)]}}


@method("createUser")
def create_user(call: Call) -> None:
    call.require_admin()
    params = call.params
    username, email = params.req("username").strip().lower(), params.req("email").strip().lower()
    password = _password(params.req("password"))
    if username != email:
        raise SubsonicError(
            GENERIC,
            "Tonearm users sign in with their e-mail address: give the same address as username and email",
        )
    role = "admin" if params.bool("adminRole", False) else "listener"
    display_name = email.split("@")[0][:100] or email[:100]
    call.c.accounts.sign_up(email, password, display_name, None, role=role)


@method("updateUser")
def update_user(call: Call) -> None:
    call.require_admin()
    params = call.params
    username = params.req("username")
    rows = _user_rows(call, username)
    if not rows:
        raise not_found("User")
    row = rows[0]
    if params.opt("password"):
        raise SubsonicError(
            GENERIC, "Passwords are not changed through Subsonic: the user resets theirs in the web app"
        )
    email = params.opt("email")
    if email and email.strip().lower() != row.email:
        raise SubsonicError(GENERIC, "The e-mail address is the username: the user changes it in the web app")
    admin = params.opt("adminRole")
    if admin in (None, ""):
        return
    make_admin = params.bool("adminRole", False)
    if make_admin and row.role != "admin":
        call.c.accounts.set_role(row.id, "admin")
    elif not make_admin and row.role == "admin":
        if row.id == call.user_id:
            raise SubsonicError(GENERIC, "You cannot take away your own admin role: ask another admin")
        call.c.accounts.set_role(row.id, "listener")


@method("deleteUser")
def delete_user(call: Call) -> None:
    call.require_admin()
    rows = _user_rows(call, call.params.req("username"))
    if not rows:
        raise not_found("User")
    if rows[0].id == call.user_id:
        raise SubsonicError(GENERIC, "Delete your own account in the web app (it asks for your password)")
    call.c.privacy.erase_account(rows[0].id)


@method("changePassword")
def change_password(call: Call) -> None:
    username = call.params.req("username")
    call.params.req("password")
    if not _is_self(call, username):
        call.require_admin()
    raise SubsonicError(
        NOT_AUTHORIZED,
        "Subsonic apps sign in with an app password the server makes, not one you choose: reset it "
        "(or make an API key) in the web app",
        help_url=call.c.settings.public_url.rstrip("/") + HELP_PATH,
    )
