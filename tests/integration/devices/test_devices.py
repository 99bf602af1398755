"""Registering, listing, renaming and removing devices; the per-account limit; other listeners'
devices answer 404 on every endpoint."""

from __future__ import annotations

from collections.abc import Callable

from tonearm.domains.devices.licences import b64d, b64e

from .conftest import Env, insert_tracks

LIMIT_MESSAGE = (
    "You have 5 devices registered, the most allowed; remove one in your account before adding another"
)


def test_register_list_rename_and_remove(env: Env) -> None:
    tok = env.listener(premium=False)  # registering needs no Premium (Connect devices exist for free)
    made = env.device(tok, "  Ada's   phone ", "phone")
    assert made["name"] == "Ada's phone" and made["kind"] == "phone" and made["downloads"] == 0
    assert len(b64d(made["device_key"])) == 32
    env.clock.advance(1)  # listed in the order registered
    desk = env.device(tok, "Desk", "desktop")
    assert desk["device_key"] != made["device_key"]
    assert made["device_key"] == b64e(env.c.devices.issuer.device_key(made["id"]))  # derived, not stored
    listed = env.client.get("/v1/me/devices", headers=tok["headers"]).json()["devices"]
    assert [d["name"] for d in listed] == ["Ada's phone", "Desk"]
    assert all("device_key" not in d for d in listed)  # shown once, at registration

    env.clock.advance(120)
    r = env.client.patch(f"/v1/me/devices/{made['id']}", json={"name": "Pixel"}, headers=tok["headers"])
    assert r.status_code == 200 and r.json()["name"] == "Pixel" and "device_key" not in r.json()
    assert r.json()["last_seen_at"] > made["last_seen_at"]

    assert env.client.delete(f"/v1/me/devices/{made['id']}", headers=tok["headers"]).status_code == 204
    listed = env.client.get("/v1/me/devices", headers=tok["headers"]).json()["devices"]
    assert [d["name"] for d in listed] == ["Desk"]
    r = env.client.patch(f"/v1/me/devices/{made['id']}", json={"name": "x"}, headers=tok["headers"])
    assert r.status_code == 404


def test_bad_bodies_are_400(env: Env) -> None:
    tok = env.listener(premium=False)
    for body in (
        {"name": "x", "kind": "toaster"},
        {"name": "", "kind": "phone"},
        {"name": "   ", "kind": "phone"},
    ):
        r = env.client.post("/v1/me/devices", json=body, headers=tok["headers"])
        assert r.status_code == 400, r.text
    assert env.client.get("/v1/me/devices").status_code == 401


def test_the_sixth_device_is_refused_until_one_is_removed(env: Env) -> None:
    tok = env.listener(premium=False)
    ids = [env.device(tok, f"Device {i}")["id"] for i in range(5)]
    r = env.client.post("/v1/me/devices", json={"name": "Sixth", "kind": "speaker"}, headers=tok["headers"])
    assert r.status_code == 403
    assert r.json()["error"]["message"] == LIMIT_MESSAGE
    decision = env.c.entitlements.decisions(tok["user_id"])[0]
    assert (decision.action, decision.allowed, decision.reason) == ("device", False, "device_limit")

    assert env.client.delete(f"/v1/me/devices/{ids[2]}", headers=tok["headers"]).status_code == 204
    r = env.client.post("/v1/me/devices", json={"name": "Sixth", "kind": "speaker"}, headers=tok["headers"])
    assert r.status_code == 201
    # The limit is per account: another listener has their own five.
    other = env.listener("bob@example.com", premium=False)
    assert env.device(other, "Bob's")["name"] == "Bob's"


def test_a_lowered_limit_applies(make_env: Callable[..., Env]) -> None:
    env = make_env(max_devices=1)
    tok = env.listener(premium=False)
    env.device(tok)
    r = env.client.post("/v1/me/devices", json={"name": "Two", "kind": "phone"}, headers=tok["headers"])
    assert r.status_code == 403 and "You have 1 devices registered" in r.json()["error"]["message"]


def test_another_listeners_device_is_404_on_every_endpoint(env: Env) -> None:
    owner = env.listener()
    device = env.device(owner)
    track = insert_tracks(env.c, 1)[0]
    r = env.client.post(
        f"/v1/me/devices/{device['id']}/downloads", json={"ids": [track]}, headers=owner["headers"]
    )
    assert r.status_code == 200, r.text
    for eve in (env.listener("eve@example.com"), env.listener("mallory@example.com", premium=False)):
        h = eve["headers"]
        base = f"/v1/me/devices/{device['id']}"
        answers = [
            env.client.patch(base, json={"name": "mine now"}, headers=h),
            env.client.delete(base, headers=h),
            env.client.post(f"{base}/downloads", json={"ids": [track]}, headers=h),
            env.client.get(f"{base}/downloads", headers=h),
            env.client.request("DELETE", f"{base}/downloads", json={"ids": [track]}, headers=h),
            env.client.post(f"{base}/licences/renew", headers=h),
        ]
        assert [a.status_code for a in answers] == [404] * 6, [a.text for a in answers]
        assert all(a.json()["error"]["message"] == f"device {device['id']} not found" for a in answers)
        assert env.client.get("/v1/me/devices", headers=h).json()["devices"] == []
    # Missing and malformed ids answer the same way.
    for bad in ("A" * 22, "not-an-id"):
        assert env.client.get(f"/v1/me/devices/{bad}/downloads", headers=owner["headers"]).status_code == 404
    # And the owner's device is untouched.
    listed = env.client.get("/v1/me/devices", headers=owner["headers"]).json()["devices"]
    assert [(d["name"], d["downloads"]) for d in listed] == [("Phone", 1)]
