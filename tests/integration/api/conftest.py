from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tonearm.bootstrap import Container
from tonearm.http.app import create_app


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, start_workers=False)) as tc:
        yield tc


def sign_up_and_login(
    client: TestClient,
    email: str = "ada@example.com",
    password: str = "correct horse",  # noqa: S107 (a test password)
) -> dict[str, Any]:
    r = client.post(
        "/v1/users",
        json={"email": email, "password": password, "display_name": "Ada", "birth_date": "1990-05-01"},
    )
    assert r.status_code == 201, r.text
    t = client.post("/api/token", data={"grant_type": "password", "username": email, "password": password})
    assert t.status_code == 200, t.text
    body: dict[str, Any] = t.json()
    body["user_id"] = r.json()["id"]
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    return body
