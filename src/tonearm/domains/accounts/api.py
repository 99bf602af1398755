"""Sign-up, the OAuth2-style token endpoint, and the current user (`/v1/me`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import BaseModel, Field

from tonearm.bootstrap import Container
from tonearm.domains.accounts.schemas import PasswordChange, SignUp
from tonearm.domains.accounts.service import AuthError, Principal
from tonearm.http.auth import container, current_user
from tonearm.kernel.clock import iso
from tonearm.kernel.errors import BadRequest, NotFound
from tonearm.kernel.ids import is_valid_id, uri

router = APIRouter()


def public_user(c: Container, row: Any) -> dict[str, Any]:
    """Spotify's public user object: what anyone may see of a listener."""
    base = c.settings.public_url.rstrip("/")
    images: list[dict[str, Any]] = []
    if row.avatar_image_id:
        images = [{"url": f"{base}/images/{row.avatar_image_id}/300", "height": 300, "width": 300}]
    return {
        "display_name": row.display_name,
        "external_urls": {"tonearm": f"{base}/user/{row.id}"},
        "followers": {"href": None, "total": 0},
        "href": f"{base}/v1/users/{row.id}",
        "id": row.id,
        "images": images,
        "type": "user",
        "uri": uri("user", row.id),
    }


def private_user(c: Container, user_id: str) -> dict[str, Any]:
    """Spotify's private user object: the public one plus what only its owner sees."""
    row = c.accounts.get_user(user_id)
    assert row is not None
    return public_user(c, row) | {
        "country": row.country,
        "email": row.email,
        "explicit_content": {"filter_enabled": False, "filter_locked": False},
        "product": row.product,
        "birthdate": row.birth_date.isoformat() if row.birth_date else None,
        "role": row.role,
        "created_at": iso(row.created_at),
    }


@router.post("/v1/users", status_code=201, tags=["accounts"])
def sign_up(body: SignUp, c: Container = Depends(container)) -> dict[str, Any]:
    user_id = c.accounts.sign_up(
        body.email, body.password, body.display_name, body.birth_date, country=body.country
    )
    return private_user(c, user_id)


@router.post("/api/token", tags=["accounts"])
def token(
    request: Request,
    response: Response,
    grant_type: str = Form(...),
    username: str | None = Form(None),
    password: str | None = Form(None),
    refresh_token: str | None = Form(None),
    c: Container = Depends(container),
) -> dict[str, Any]:
    """OAuth2 token endpoint: `password` and `refresh_token` grants (RFC 6749 §4.3, §6)."""
    response.headers["Cache-Control"] = "no-store"
    if grant_type == "password":
        if not username or not password:
            raise AuthError("invalid_request", "username and password are required")
        ip = request.client.host if request.client else "unknown"
        pair = c.accounts.login(
            username, password, client_ip=ip, user_agent=request.headers.get("user-agent")
        )
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise AuthError("invalid_request", "refresh_token is required")
        pair = c.accounts.refresh(refresh_token)
    else:
        raise AuthError("unsupported_grant_type", f"grant_type {grant_type[:40]!r} is not supported")
    return {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "scope": "",
    }


@router.post("/api/token/revoke", status_code=200, tags=["accounts"])
def revoke(token: str = Form(...), c: Container = Depends(container)) -> dict[str, Any]:
    """Logout (RFC 7009): revokes the refresh token's session and every access token it issued."""
    c.accounts.revoke(token)
    return {}


@router.get("/v1/me", tags=["accounts"])
def me(user: Principal = Depends(current_user), c: Container = Depends(container)) -> dict[str, Any]:
    return private_user(c, user.user_id)


@router.get("/v1/users/{user_id}", tags=["accounts"])
def user_profile(
    user_id: str, _user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """Another listener's public profile (Spotify's public user object)."""
    if not is_valid_id(user_id):
        raise BadRequest(f"invalid user id {user_id[:40]!r}: ids are 22 base-62 characters")
    row = c.accounts.get_user(user_id)
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return public_user(c, row)


@router.put("/v1/me/password", status_code=204, tags=["accounts"])
def change_password(
    body: PasswordChange, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.accounts.change_password(user.user_id, body.current_password, body.new_password)
    return Response(status_code=204)


# Credentials for other apps (domains/accounts/credentials.py) ---------------------------------


class ApiKeyCreate(BaseModel):
    name: str = Field(..., description="What the key is for, e.g. 'Symfonium on my phone'.")


@router.get("/v1/me/api-keys", tags=["accounts"], summary="Your API keys (Subsonic apps, scrobblers)")
def list_api_keys(
    user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """Each key's name, first characters, creation and last use; never the key itself."""
    return {"items": c.credentials.keys(user.user_id)}


@router.post("/v1/me/api-keys", status_code=201, tags=["accounts"], summary="Create an API key")
def create_api_key(
    body: ApiKeyCreate, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """The response carries `key`, shown this once: Subsonic apps send it as `apiKey`,
    ListenBrainz scrobblers as `Authorization: Token <key>`."""
    return c.credentials.create_key(user.user_id, body.name)


@router.delete("/v1/me/api-keys/{key_id}", status_code=204, tags=["accounts"], summary="Revoke an API key")
def revoke_api_key(
    key_id: str, user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    if not is_valid_id(key_id):
        raise NotFound("no such API key")
    c.credentials.revoke_key(user.user_id, key_id)
    return Response(status_code=204)


@router.get("/v1/me/app-password", tags=["accounts"], summary="Your Subsonic app password")
def get_app_password(
    user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """For Subsonic apps that only know the token scheme (never your account password), with the
    username to type beside it; `app_password` is null until you create one."""
    row = c.accounts.get_user(user.user_id)
    if row is None:
        raise NotFound("no such user")
    return {"username": row.email, **c.credentials.app_password(user.user_id)}


@router.post("/v1/me/app-password", status_code=201, tags=["accounts"], summary="Make a new app password")
def reset_app_password(
    user: Principal = Depends(current_user), c: Container = Depends(container)
) -> dict[str, Any]:
    """A new one replaces the old at once: apps using the old one must be given the new one."""
    c.credentials.reset_app_password(user.user_id)
    return get_app_password(user, c)


@router.delete("/v1/me/app-password", status_code=204, tags=["accounts"], summary="Remove the app password")
def delete_app_password(
    user: Principal = Depends(current_user), c: Container = Depends(container)
) -> Response:
    c.credentials.delete_app_password(user.user_id)
    return Response(status_code=204)
