"""Credentials for the apps people already use: API keys and the Subsonic app password.

Subsonic clients and ListenBrainz scrobblers cannot do OAuth. They get:

- **API keys** (OpenSubsonic's `apiKeyAuthentication`, ListenBrainz's `Token`): random secrets
  shown once at creation; only their SHA-256 is stored. Each has a name, is listed with the first
  characters and its last use, and is revoked by deleting it.
- **An app password** for clients that only know Subsonic's token scheme (`t = md5(password +
  salt)`), which needs the password itself on the server. It is never the account password: the
  server generates it, stores it AES-GCM encrypted under a key derived from the server's secret,
  and shows it to its user on request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tonearm.domains.accounts.tables import api_keys, app_passwords, users
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Conflict, NotFound
from tonearm.kernel.ids import new_id

_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 40  # base 62: ~238 bits
APP_PASSWORD_LENGTH = 24  # base 62: ~143 bits; typed once into an app, so not too long
MAX_KEYS_PER_USER = 50
LAST_USED_EVERY_S = 60  # `last_used_at` is written at most this often per key
# Wrong keys or app passwords from one address in a minute (Subsonic apps and scrobblers alike)
# before it must wait: guessing is slow, a mistyped key in one app locks out nobody else.
FAILURES_PER_MINUTE = 30


def failures_key(client_ip: str) -> str:
    """The rate limiter's key for failed app sign-ins from one address."""
    return f"app-auth:{client_ip}"


@dataclass(frozen=True, slots=True)
class Caller:
    """A user as an app authenticated them: enough to authorize without another query."""

    user_id: str
    username: str  # the login name Subsonic apps show: the account's e-mail address
    display_name: str
    role: str
    key_id: str | None = None  # set when the app used an API key


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


class CredentialService:
    def __init__(self, db: Database, clock: Clock, secret_key: str, *, cache_ttl_s: float = 5.0) -> None:
        self.db = db
        self.clock = clock
        # A key of its own (not the token-signing key itself), so the two uses never mix.
        self._aead = AESGCM(hashlib.sha256(b"tonearm app passwords\0" + secret_key.encode()).digest())
        # Keys and app passwords seen in the last seconds: a Subsonic app authenticates every
        # request, and a lookup must not cost a query each time. Revoking in this process evicts
        # at once; other processes within the TTL.
        self._keys: TTLCache[str, Caller] = TTLCache(50_000, cache_ttl_s)
        self._passwords: TTLCache[str, tuple[Caller, str | None]] = TTLCache(50_000, cache_ttl_s)
        self._touched: TTLCache[str, bool] = TTLCache(50_000, LAST_USED_EVERY_S)

    # API keys ---------------------------------------------------------------------------------

    def create_key(self, user_id: str, name: str | None) -> dict[str, Any]:
        """A new key; the response is the only time the key itself is shown."""
        name = (name or "").strip()
        if not name:
            raise BadRequest("name: give the key a name, e.g. the app and device it is for")
        if len(name) > 100:
            raise BadRequest("name: at most 100 characters")
        key = _random(KEY_LENGTH)
        now = self.clock.now()
        key_id = new_id()
        with self.db.write() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.user_id == user_id)
            ).scalar_one()
            if count >= MAX_KEYS_PER_USER:
                raise Conflict(f"you have {MAX_KEYS_PER_USER} API keys already; revoke one first")
            conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    user_id=user_id,
                    name=name,
                    key_hash=_sha256(key),
                    prefix=key[:6],
                    created_at=now,
                )
            )
        return {**self._key_json(key_id, name, key[:6], now, None), "key": key}

    def keys(self, user_id: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.user_id == user_id)
                .order_by(api_keys.c.created_at.desc(), api_keys.c.id)
            ).all()
        return [self._key_json(r.id, r.name, r.prefix, r.created_at, r.last_used_at) for r in rows]

    def revoke_key(self, user_id: str, key_id: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(
                api_keys.delete().where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
            ).rowcount
        if not gone:
            raise NotFound("no such API key")
        self._keys.clear()  # rare: dropping every cached key is simplest

    def authenticate_key(self, key: str) -> Caller | None:
        """The key's owner, or None for a key that does not exist (or was revoked)."""
        if not key or len(key) > 200:
            return None
        digest = _sha256(key)
        caller = self._keys.get(digest)
        if caller is None:
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(api_keys.c.id, users.c.id.label("user_id"), users.c.email)
                    .add_columns(users.c.display_name, users.c.role)
                    .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
                    .where(api_keys.c.key_hash == digest)
                ).first()
            if row is None:
                return None
            caller = Caller(row.user_id, row.email, row.display_name, row.role, key_id=row.id)
            self._keys.put(digest, caller)
        if caller.key_id and self._touched.get(caller.key_id) is None:
            self._touched.put(caller.key_id, True)
            with self.db.write() as conn:
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == caller.key_id)
                    .values(last_used_at=self.clock.now())
                )
        return caller

    @staticmethod
    def _key_json(
        key_id: str, name: str, prefix: str, created: dt.datetime, used: dt.datetime | None
    ) -> dict[str, Any]:
        return {
            "id": key_id,
            "name": name,
            "prefix": prefix,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "last_used_at": used.isoformat().replace("+00:00", "Z") if used else None,
        }

    def before_account_deleted(self, conn: sa.Connection, user_id: str) -> Callable[[], None]:
        """PrivacyService's hook: the keys and app password go with the account (the cascade);
        once that commits, nothing cached here may still let them in."""

        def forget() -> None:
            self._keys.clear()
            self._passwords.clear()

        return forget

    # The app password -------------------------------------------------------------------------

    def reset_app_password(self, user_id: str) -> str:
        """A new app password (the old one stops working at once); returned to show its user."""
        password = _random(APP_PASSWORD_LENGTH)
        nonce = secrets.token_bytes(12)
        sealed = base64.b64encode(nonce + self._aead.encrypt(nonce, password.encode(), user_id.encode()))
        now = self.clock.now()
        with self.db.write() as conn:
            done = conn.execute(
                app_passwords.update()
                .where(app_passwords.c.user_id == user_id)
                .values(ciphertext=sealed.decode(), created_at=now)
            ).rowcount
            if not done:
                conn.execute(
                    app_passwords.insert().values(user_id=user_id, ciphertext=sealed.decode(), created_at=now)
                )
        self._passwords.clear()
        return password

    def app_password(self, user_id: str) -> dict[str, Any]:
        """The app password and when it was made, for its user to copy into an app."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(app_passwords).where(app_passwords.c.user_id == user_id)).first()
        if row is None:
            return {"app_password": None, "created_at": None}
        return {
            "app_password": self._open(user_id, row.ciphertext),
            "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        }

    def delete_app_password(self, user_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(app_passwords.delete().where(app_passwords.c.user_id == user_id))
        self._passwords.clear()

    def _open(self, user_id: str, ciphertext: str) -> str:
        raw = base64.b64decode(ciphertext)
        return self._aead.decrypt(raw[:12], raw[12:], user_id.encode()).decode()

    def user_by_name(self, username: str) -> tuple[Caller, str | None] | None:
        """The user a Subsonic `u` names (their e-mail address, any case) and their app password
        (None if they have none); None if no such user."""
        name = username.strip().lower()
        if not name or len(name) > 254:
            return None
        hit = self._passwords.get(name)
        if hit is not None:
            return hit
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users.c.id, users.c.email, users.c.display_name, users.c.role)
                .add_columns(app_passwords.c.ciphertext)
                .select_from(users.outerjoin(app_passwords, app_passwords.c.user_id == users.c.id))
                .where(users.c.email == name)
            ).first()
        if row is None:
            return None
        password = self._open(row.id, row.ciphertext) if row.ciphertext else None
        hit = (Caller(row.id, row.email, row.display_name, row.role), password)
        self._passwords.put(name, hit)
        return hit

    @staticmethod
    def token_matches(password: str, token: str, salt: str) -> bool:
        """Subsonic's token check: t == md5(password + salt), compared in constant time."""
        expected = hashlib.md5((password + salt).encode(), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(expected, token.lower())

    @staticmethod
    def password_matches(password: str, given: str) -> bool:
        return hmac.compare_digest(password.encode(), given.encode())
