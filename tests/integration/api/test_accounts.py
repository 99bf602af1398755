"""Accounts over HTTP on SQLite and PostgreSQL: sign-up, tokens, rotation, revocation, rate limits."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tonearm.bootstrap import Container
from tonearm.domains.accounts.tables import users
from tonearm.kernel.ids import is_valid_id

from .conftest import sign_up_and_login


def test_sign_up_returns_private_user_and_stores_argon2id(client: TestClient, container: Container) -> None:
    tok = sign_up_and_login(client)
    me = client.get("/v1/me", headers=tok["headers"])
    assert me.status_code == 200
    body = me.json()
    assert body["product"] == "free" and body["type"] == "user" and is_valid_id(body["id"])
    assert body["uri"] == f"tonearm:user:{body['id']}" and body["email"] == "ada@example.com"
    with container.db.read() as conn:
        pw_hash = conn.execute(users.select()).one().password_hash
    assert pw_hash.startswith("$argon2id$")


def test_sign_up_validation_errors_are_precise(client: TestClient) -> None:
    bad = [
        ({"email": "nope", "password": "12345678", "display_name": "x"}, "email"),
        ({"email": "a@b.co", "password": "short", "display_name": "x"}, "password"),
        ({"email": "a@b.co", "password": "12345678", "display_name": "x", "birth_date": "2020-01-01"}, "13"),
        (
            {"email": "a@b.co", "password": "12345678", "display_name": "x", "birth_date": "not-a-date"},
            "birth_date",
        ),
        ({"email": "a@b.co", "password": "12345678", "display_name": "   "}, "display_name"),
    ]
    for payload, word in bad:
        r = client.post("/v1/users", json=payload)
        assert r.status_code == 400, r.text
        assert word in r.json()["error"]["message"]
        assert r.json()["error"]["status"] == 400
    ok = {"email": "Dup@Example.com", "password": "12345678", "display_name": "x"}
    assert client.post("/v1/users", json=ok).status_code == 201
    dup = client.post("/v1/users", json=ok | {"email": "dup@example.com"})
    assert dup.status_code == 409 and "already exists" in dup.json()["error"]["message"]


def test_wrong_password_and_unknown_grant(client: TestClient) -> None:
    sign_up_and_login(client)
    r = client.post(
        "/api/token", data={"grant_type": "password", "username": "ada@example.com", "password": "wrong pass"}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = client.post("/api/token", data={"grant_type": "client_magic"})
    assert r.json()["error"] == "unsupported_grant_type"


def test_refresh_rotates_and_reuse_revokes_session(client: TestClient) -> None:
    tok = sign_up_and_login(client)
    r1 = client.post(
        "/api/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    )
    assert r1.status_code == 200
    new = r1.json()
    assert new["refresh_token"] != tok["refresh_token"]
    # The old refresh token comes back: treated as stolen, the whole session dies.
    r2 = client.post(
        "/api/token", data={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    )
    assert r2.status_code == 400 and "reused" in r2.json()["error_description"]
    r3 = client.post(
        "/api/token", data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]}
    )
    assert r3.status_code == 400
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 401


def test_logout_revokes_access_tokens_at_once(client: TestClient) -> None:
    tok = sign_up_and_login(client)
    assert client.get("/v1/me", headers=tok["headers"]).status_code == 200
    assert client.post("/api/token/revoke", data={"token": tok["refresh_token"]}).status_code == 200
    r = client.get("/v1/me", headers=tok["headers"])
    assert r.status_code == 401 and r.json()["error"]["message"] == "The access token has been revoked"


def test_password_change_revokes_every_session(client: TestClient) -> None:
    tok = sign_up_and_login(client)
    other = client.post(
        "/api/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": "correct horse"},
    ).json()
    r = client.put(
        "/v1/me/password",
        headers=tok["headers"],
        json={"current_password": "correct horse", "new_password": "battery staple"},
    )
    assert r.status_code == 204
    for access in (tok["access_token"], other["access_token"]):
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {access}"}).status_code == 401
    assert (
        client.post(
            "/api/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": "battery staple"},
        ).status_code
        == 200
    )


def test_login_is_rate_limited(client: TestClient) -> None:
    sign_up_and_login(client)
    codes = [
        client.post(
            "/api/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": f"wrong{i}xx"},
        ).status_code
        for i in range(12)
    ]
    assert codes[:10] == [400] * 10 and codes[10:] == [429, 429]
    r = client.post(
        "/api/token",
        data={"grant_type": "password", "username": "ada@example.com", "password": "correct horse"},
    )
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "try again" in r.json()["error"]["message"]


def test_bad_tokens_get_401_error_objects(client: TestClient) -> None:
    for header in ("Bearer nonsense", "Basic abc", "Bearer "):
        r = client.get("/v1/me", headers={"Authorization": header})
        assert r.status_code == 401 and "message" in r.json()["error"]
    assert client.get("/v1/me").json() == {"error": {"status": 401, "message": "No token provided"}}


def test_health_ready_metrics_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["schema"]
    client.get("/v1/tracks/0000000000000000000000")
    metrics = client.get("/metrics").text
    assert 'tonearm_http_requests_total{method="GET",route="/v1/tracks/{track_id}",status="404"}' in metrics
    spec = client.get("/openapi.json").json()
    assert "/v1/me" in spec["paths"] and "/v1/tracks/{track_id}" in spec["paths"]
    assert client.get("/no/such/path").json()["error"]["status"] == 404


def test_public_profile_shows_no_private_fields(client: TestClient) -> None:
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    profile = client.get(f"/v1/users/{ada['user_id']}", headers=bob["headers"])
    assert profile.status_code == 200
    body = profile.json()
    assert body["id"] == ada["user_id"] and body["type"] == "user"
    assert body["uri"] == f"tonearm:user:{ada['user_id']}" and body["href"].endswith(
        f"/v1/users/{ada['user_id']}"
    )
    assert not {"email", "country", "product", "birthdate", "role"} & set(body)
    me = client.get("/v1/me", headers=ada["headers"]).json()
    assert {k: me[k] for k in body} == body  # the private object extends the public one
    missing = client.get("/v1/users/" + "0" * 22, headers=bob["headers"])
    assert missing.status_code == 404 and missing.json()["error"]["message"] == f"user {'0' * 22} not found"
    bad = client.get("/v1/users/nope", headers=bob["headers"])
    assert bad.status_code == 400 and "invalid user id 'nope'" in bad.json()["error"]["message"]
    assert client.get(f"/v1/users/{ada['user_id']}").status_code == 401
