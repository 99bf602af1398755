"""Bearer-token dependencies. Authorization of each object happens in the services."""

from __future__ import annotations

from fastapi import Request

from tonearm.bootstrap import Container
from tonearm.domains.accounts.service import Principal
from tonearm.kernel.errors import Unauthorized


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <access token>'")
    return token.strip()


def optional_user(request: Request) -> Principal | None:
    token = _bearer(request)
    if token is None:
        return None
    return container(request).accounts.authenticate(token)


def current_user(request: Request) -> Principal:
    token = _bearer(request)
    if token is None:
        raise Unauthorized("No token provided")
    return container(request).accounts.authenticate(token)
