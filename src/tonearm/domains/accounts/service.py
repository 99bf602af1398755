"""Sign-up, login, token rotation and revocation.

Access tokens are short-lived JWTs (HS256) naming the user, the session and the user's token
version; every request checks that the session is live and the version current, so logout and
password changes take effect at once. Refresh tokens rotate on every use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tonearm.domains.accounts.tables import sessions, users
from tonearm.kernel.cache import TTLCache
from tonearm.kernel.clock import Clock
from tonearm.kernel.db import Database
from tonearm.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from tonearm.kernel.ids import new_id
from tonearm.kernel.ratelimit import RateLimiter

_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
ROLES = ("listener", "artist", "admin")
CLOCK_SKEW_S = 30  # tolerated between the server that minted a token and the one checking it


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user row's essentials, loaded once per request."""

    user_id: str
    session_id: str
    role: str
    product: str
    display_name: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class AuthError(Exception):
    """OAuth2 token endpoint errors (RFC 6749 §5.2 shape, which Spotify's accounts service uses)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class AccountService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        secret_key: str,
        limiter: RateLimiter,
        *,
        access_ttl_s: int = 3600,
        refresh_ttl_s: int = 60 * 86400,
        login_attempts_per_minute: int = 10,
        session_cache_ttl_s: float = 5.0,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self._key = secret_key
        self.limiter = limiter
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.login_limit = login_attempts_per_minute
        # argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
        self.hasher = hasher or PasswordHasher()
        # Live sessions seen in the last few seconds, so a busy client does not cost a query per
        # request. Revocation in this process evicts at once; other processes within the TTL.
        self._live: TTLCache[str, Principal] = TTLCache(50_000, session_cache_ttl_s)

    # Sign-up ----------------------------------------------------------------------------------
    def sign_up(
        self,
        email: str,
        password: str,
        display_name: str,
        birth_date: dt.date | None,
        *,
        role: str = "listener",
        country: str | None = None,
    ) -> str:
        email = email.strip().lower()
        if not _EMAIL_RE.match(email):
            raise BadRequest("email: not a valid e-mail address")
        if len(password) < 8:
            raise BadRequest("password: must be at least 8 characters")
        if len(password) > 1024:
            raise BadRequest("password: must be at most 1024 characters")
        display_name = " ".join(display_name.split())
        if not 1 <= len(display_name) <= 100:
            raise BadRequest("display_name: must be 1 to 100 characters")
        if role not in ROLES:
            raise BadRequest(f"role: must be one of {', '.join(ROLES)}")
        if birth_date is not None:
            today = self.clock.now().date()
            if birth_date > today or birth_date.year < 1900:
                raise BadRequest("birth_date: must be a real date in the past")
            age = (
                today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
            )
            if age < 13:
                raise BadRequest("birth_date: you must be at least 13 years old to sign up")
        now = self.clock.now()
        user_id = new_id()
        pw_hash = self.hasher.hash(password)
        try:
            with self.db.write() as conn:
                conn.execute(
                    sa.insert(users).values(
                        id=user_id,
                        email=email,
                        display_name=display_name,
                        password_hash=pw_hash,
                        birth_date=birth_date,
                        country=country,
                        role=role,
                        product="free",
                        token_version=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise Conflict("email: an account with this e-mail address already exists") from exc
        return user_id

    # Tokens -----------------------------------------------------------------------------------
    def login(self, email: str, password: str, *, client_ip: str, user_agent: str | None = None) -> TokenPair:
        email = email.strip().lower()
        key = f"login:{client_ip}:{email}"
        wait = self.limiter.retry_after(key, self.login_limit, 60)
        if wait > 0:
            raise TooManyRequests(f"too many failed logins; try again in {int(wait) + 1} s", int(wait) + 1)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users.c.id, users.c.password_hash, users.c.token_version).where(
                    users.c.email == email
                )
            ).first()
        ok = False
        if row is not None:
            try:
                ok = self.hasher.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                ok = False
        else:
            # Spend the same time as a real check so response time does not reveal which e-mails exist.
            self._dummy_verify(password)
        if not ok or row is None:
            self.limiter.hit(key)
            raise AuthError("invalid_grant", "Invalid username or password")
        self.limiter.reset(key)
        if self.hasher.check_needs_rehash(row.password_hash):
            with self.db.write() as conn:
                conn.execute(
                    sa.update(users)
                    .where(users.c.id == row.id)
                    .values(password_hash=self.hasher.hash(password))
                )
        return self._open_session(row.id, row.token_version, user_agent)

    _dummy_hash: str | None = None

    def _dummy_verify(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        with contextlib.suppress(VerificationError):
            self.hasher.verify(self._dummy_hash, password)

    def _open_session(self, user_id: str, token_version: int, user_agent: str | None) -> TokenPair:
        now = self.clock.now()
        session_id, secret = new_id(), secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(
                sa.insert(sessions).values(
                    id=session_id,
                    user_id=user_id,
                    refresh_hash=_sha256(secret),
                    user_agent=(user_agent or "")[:200] or None,
                    created_at=now,
                    last_used_at=now,
                    expires_at=now + dt.timedelta(seconds=self.refresh_ttl_s),
                )
            )
        return TokenPair(
            self._access_token(user_id, session_id, token_version),
            f"{session_id}.{secret}",
            self.access_ttl_s,
        )

    def _access_token(self, user_id: str, session_id: str, token_version: int) -> str:
        now = self.clock.now()
        claims = {
            "sub": user_id,
            "sid": session_id,
            "ver": token_version,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + self.access_ttl_s,
            "typ": "access",
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def refresh(self, refresh_token: str) -> TokenPair:
        session_id, _, secret = refresh_token.partition(".")
        if not session_id or not secret:
            raise AuthError("invalid_grant", "Invalid refresh token")
        now = self.clock.now()
        new_secret = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(sessions, users.c.token_version)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id == session_id)
            ).first()
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                raise AuthError("invalid_grant", "Refresh token revoked or expired")
            presented = _sha256(secret)
            reused = bool(row.previous_hash) and hmac.compare_digest(presented, row.previous_hash)
            if reused:
                # An old token came back: someone else holds a copy. Revoke the session for both
                # (committed here; the error is raised after the transaction ends).
                conn.execute(sa.update(sessions).where(sessions.c.id == session_id).values(revoked_at=now))
            elif not hmac.compare_digest(presented, row.refresh_hash):
                raise AuthError("invalid_grant", "Invalid refresh token")
            else:
                conn.execute(
                    sa.update(sessions)
                    .where(sessions.c.id == session_id)
                    .values(refresh_hash=_sha256(new_secret), previous_hash=presented, last_used_at=now)
                )
        if reused:
            self._live.clear()
            raise AuthError("invalid_grant", "Refresh token reused; the session has been revoked")
        return TokenPair(
            self._access_token(row.user_id, session_id, row.token_version),
            f"{session_id}.{new_secret}",
            self.access_ttl_s,
        )

    def revoke(self, refresh_token: str) -> None:
        """Logout (RFC 7009): revokes the session; unknown tokens are ignored as the RFC says."""
        session_id, _, secret = refresh_token.partition(".")
        with self.db.write() as conn:
            row = conn.execute(sa.select(sessions.c.refresh_hash).where(sessions.c.id == session_id)).first()
            if row is not None and hmac.compare_digest(_sha256(secret), row.refresh_hash):
                conn.execute(
                    sa.update(sessions).where(sessions.c.id == session_id).values(revoked_at=self.clock.now())
                )
        self._live.clear()  # revocations are rare: dropping every cached session is simplest

    def authenticate(self, access_token: str) -> Principal:
        """Checks signature, expiry, session liveness and token version (one indexed query, cached
        for a few seconds per session)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                access_token,
                self._key,
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "sid"]},
                # Servers' clocks differ a little: a token minted by one a second ahead of another
                # must not be "not yet valid" there (PyJWT checks `iat` against this machine's now).
                leeway=CLOCK_SKEW_S,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("Invalid access token") from exc
        if claims.get("typ") != "access":
            raise Unauthorized("Invalid access token")
        cache_key = f"{claims['sid']}:{claims.get('ver')}"
        cached = self._live.get(cache_key)
        if cached is not None and cached.user_id == claims["sub"]:
            return cached
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users.c.role, users.c.product, users.c.display_name, users.c.token_version)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(
                    sessions.c.id == claims["sid"],
                    sessions.c.revoked_at.is_(None),
                    users.c.id == claims["sub"],
                )
            ).first()
        if row is None or row.token_version != claims.get("ver"):
            raise Unauthorized("The access token has been revoked")
        principal = Principal(claims["sub"], claims["sid"], row.role, row.product, row.display_name)
        self._live.put(cache_key, principal)
        return principal

    def change_password(self, user_id: str, current: str, new: str) -> None:
        if len(new) < 8:
            raise BadRequest("new_password: must be at least 8 characters")
        with self.db.write() as conn:
            row = conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).one()
            try:
                self.hasher.verify(row.password_hash, current)
            except VerificationError as exc:
                raise BadRequest("current_password: incorrect") from exc
            now = self.clock.now()
            conn.execute(
                sa.update(users)
                .where(users.c.id == user_id)
                .values(
                    password_hash=self.hasher.hash(new),
                    token_version=users.c.token_version + 1,
                    updated_at=now,
                )
            )
            conn.execute(
                sa.update(sessions)
                .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        self._live.clear()

    def reauthenticate(self, user_id: str, password: str) -> None:
        """Asks the signed-in user for their password again before something irreversible
        (deleting the account). A stolen access token is not enough; wrong guesses are limited
        per user as failed logins are (per address and e-mail)."""
        key = f"reauth:{user_id}"
        wait = self.limiter.retry_after(key, self.login_limit, 60)
        if wait > 0:
            raise TooManyRequests(f"too many wrong passwords; try again in {int(wait) + 1} s", int(wait) + 1)
        with self.db.read() as conn:
            row = conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).first()
        ok = False
        if row is not None:
            try:
                ok = self.hasher.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                ok = False
        if not ok:
            self.limiter.hit(key)
            raise Forbidden("password: incorrect")
        self.limiter.reset(key)

    def delete_user(self, conn: sa.Connection, user_id: str) -> None:
        """Deletes the user row in the caller's transaction; what refers to it by a cascading
        foreign key goes with it. Call `forget_sessions()` once the transaction has committed."""
        conn.execute(sa.delete(users).where(users.c.id == user_id))

    def forget_sessions(self) -> None:
        """Drops this process's cache of live sessions (other processes' within its TTL), after
        sessions were revoked or deleted outside this service."""
        self._live.clear()

    def set_role(self, user_id: str, role: str) -> None:
        """An admin's change of someone's role (Subsonic's updateUser adminRole). Takes effect on
        the user's next request (cached sessions are dropped)."""
        if role not in ROLES:
            raise BadRequest(f"role: must be one of {', '.join(ROLES)}")
        with self.db.write() as conn:
            done = conn.execute(
                sa.update(users).where(users.c.id == user_id).values(role=role, updated_at=self.clock.now())
            ).rowcount
        if not done:
            raise NotFound(f"user {user_id} not found")
        self._live.clear()

    def get_user(self, user_id: str) -> sa.Row[Any] | None:
        with self.db.read() as conn:
            return conn.execute(sa.select(users).where(users.c.id == user_id)).first()
