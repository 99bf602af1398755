"""/v1/me/api-keys and /v1/me/app-password: the credentials other apps use (Subsonic apps,
ListenBrainz scrobblers), on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.subsonic import check, error_code, token_params
from tonearm.bootstrap import Container
from tonearm.domains.accounts.tables import api_keys, app_passwords

from .conftest import sign_up_and_login


def _ping(client: TestClient, **params: str) -> int | None:
    return error_code(check("ping", client.get("/rest/ping", params={**params, "f": "json"})))


def test_keys_are_shown_once_listed_by_prefix_and_revocable(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    assert client.get("/v1/me/api-keys", headers=h).json() == {"items": []}
    r = client.post("/v1/me/api-keys", json={"name": "Symfonium on my phone"}, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert len(key) == 40 and key.isalnum() and created["prefix"] == key[:6]
    listed = client.get("/v1/me/api-keys", headers=h).json()["items"]
    assert [k["name"] for k in listed] == ["Symfonium on my phone"]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None
    # Only a hash is stored.
    with container.db.read() as conn:
        stored = conn.execute(sa.select(api_keys.c.key_hash)).scalar_one()
    assert key not in stored and len(stored) == 64

    assert _ping(client, apiKey=key) is None
    assert client.get("/v1/me/api-keys", headers=h).json()["items"][0]["last_used_at"] is not None

    # Another listener can neither see nor revoke it (404, not 403: ids are not probeable).
    bob = sign_up_and_login(client, "bob@example.com")
    assert client.get("/v1/me/api-keys", headers=bob["headers"]).json() == {"items": []}
    assert client.delete(f"/v1/me/api-keys/{created['id']}", headers=bob["headers"]).status_code == 404
    assert _ping(client, apiKey=key) is None

    assert client.delete(f"/v1/me/api-keys/{created['id']}", headers=h).status_code == 204
    assert client.get("/v1/me/api-keys", headers=h).json() == {"items": []}
    assert _ping(client, apiKey=key) == 44
    assert client.delete(f"/v1/me/api-keys/{created['id']}", headers=h).status_code == 404


def test_bad_key_requests(client: TestClient) -> None:
    h = sign_up_and_login(client)["headers"]
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}):
        r = client.post("/v1/me/api-keys", json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["status"] == 400
    assert client.get("/v1/me/api-keys").status_code == 401
    assert client.delete("/v1/me/api-keys/../../x", headers=h).status_code == 404


def test_app_password_is_encrypted_and_replaceable(client: TestClient, container: Container) -> None:
    ada = sign_up_and_login(client)
    h = ada["headers"]
    assert client.get("/v1/me/app-password", headers=h).json() == {
        "username": "ada@example.com",
        "app_password": None,
        "created_at": None,
    }
    first = client.post("/v1/me/app-password", headers=h).json()["app_password"]
    assert len(first) == 24
    with container.db.read() as conn:
        sealed = conn.execute(sa.select(app_passwords.c.ciphertext)).scalar_one()
    assert first not in sealed
    assert client.get("/v1/me/app-password", headers=h).json()["app_password"] == first
    assert _ping(client, **token_params("ada@example.com", first)) is None

    second = client.post("/v1/me/app-password", headers=h).json()["app_password"]
    assert second != first
    assert _ping(client, **token_params("ada@example.com", first)) == 40
    assert _ping(client, **token_params("ada@example.com", second)) is None

    assert client.delete("/v1/me/app-password", headers=h).status_code == 204
    assert _ping(client, **token_params("ada@example.com", second)) == 40
    # The account password never works as a Subsonic password.
    assert _ping(client, **token_params("ada@example.com", "correct horse")) == 40
