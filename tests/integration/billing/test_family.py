"""Duo and Family plans: inviting by link or e-mail, joining, leaving, removal, full plans, expired
and revoked invitations, a member trying to join two families, and everyone going back to free
when the plan ends (or its manager deletes their account)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.integration.billing.conftest import PASSWORD, World, utc
from tonearm.domains.billing.tables import family_invitations


def test_duo_invite_by_link_join_and_removal(world: World) -> None:
    ada, bo = world.listener("Ada"), world.listener("Bo")
    assert world.subscribe(ada, plan="premium_duo").status_code == 201
    inv = world.invite(ada)
    assert inv["url"] == f"http://testserver/join/{inv['code']}"
    assert inv["expires_at"] == "2026-02-07T12:00:00Z" and inv["email"] is None
    with world.c.db.read() as conn:  # only a hash of the code is kept
        assert inv["code"] not in conn.execute(sa.select(family_invitations.c.code_hash)).scalar_one()

    preview = world.client.get(f"/v1/invitations/{inv['code']}")  # no sign-in needed
    assert preview.status_code == 200
    assert preview.json() == {
        "plan": {"id": "premium_duo", "name": "Premium Duo"},
        "manager": {"display_name": "Ada"},
        "status": "valid",
        "expires_at": "2026-02-07T12:00:00Z",
        "email_bound": False,
    }
    assert world.client.get("/v1/invitations/nonsense").status_code == 404

    r = world.post(bo, f"/v1/invitations/{inv['code']}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "member" and r.json()["card"] is None
    assert world.product(bo) == "premium"
    assert world.decisions(bo) == [(True, "joined_family")]
    seen_by_bo = world.subscription(bo)
    assert (
        seen_by_bo["role"] == "member" and seen_by_bo["card"] is None and seen_by_bo["next_retry_at"] is None
    )
    assert [(m["display_name"], m["role"]) for m in seen_by_bo["members"]] == [
        ("Ada", "manager"),
        ("Bo", "member"),
    ]
    assert world.client.get(f"/v1/invitations/{inv['code']}").json()["status"] == "accepted"

    # Members cannot change, cancel or see the card; nor see the manager's invoices.
    r = world.patch(bo, "/v1/me/subscription", json={"cancel_at_period_end": True})
    assert r.status_code == 403 and r.json()["error"]["message"] == (
        "only Ada, who pays for this plan, can change or cancel it"
    )
    assert world.delete(bo, "/v1/me/subscription").status_code == 403
    assert world.post(bo, "/v1/me/subscription/invitations", json={}).status_code == 403
    assert world.invoices(bo) == []
    ada_invoice = world.invoices(ada)[0]["id"]
    assert world.get(bo, f"/v1/me/invoices/{ada_invoice}").status_code == 404

    # The manager removes Bo: free at once.
    world.clock.advance(1)  # (decisions are listed by time)
    assert world.delete(ada, f"/v1/me/subscription/members/{bo.user_id}").status_code == 204
    assert world.product(bo) == "free"
    assert world.decisions(bo)[-1] == (False, "member_removed")
    assert world.delete(ada, f"/v1/me/subscription/members/{bo.user_id}").status_code == 404
    assert world.delete(ada, "/v1/me/subscription/members/not-an-id").status_code == 404
    assert world.delete(ada, f"/v1/me/subscription/members/{ada.user_id}").status_code == 400
    assert world.product(ada) == "premium"


def test_a_member_leaves(world: World) -> None:
    ada, bo = world.listener("Ada"), world.listener("Bo")
    assert world.subscribe(ada, plan="premium_family").status_code == 201
    assert world.post(bo, f"/v1/invitations/{world.invite(ada)['code']}/accept").status_code == 200
    assert world.delete(ada, "/v1/me/subscription/membership").status_code == 409  # the manager cancels
    world.clock.advance(1)  # (decisions are listed by time)
    assert world.delete(bo, "/v1/me/subscription/membership").status_code == 204
    assert world.product(bo) == "free"
    assert world.decisions(bo) == [(True, "joined_family"), (False, "left_family")]
    assert world.delete(bo, "/v1/me/subscription/membership").status_code == 404
    assert [m["id"] for m in world.subscription(ada)["members"]] == [ada.user_id]


def test_an_email_invitation_is_for_that_account_only(world: World) -> None:
    ada, bo, cy = world.listener("Ada"), world.listener("Bo"), world.listener("Cy")
    assert world.subscribe(ada, plan="premium_family").status_code == 201
    inv = world.invite(ada, email="BO@example.com")
    assert inv["email"] == "bo@example.com"
    assert (
        world.post(ada, "/v1/me/subscription/invitations", json={"email": "bo@example.com"}).status_code
        == 409
    )
    assert (
        world.post(ada, "/v1/me/subscription/invitations", json={"email": "not-an-address"}).status_code
        == 400
    )

    r = world.post(cy, f"/v1/invitations/{inv['code']}/accept")
    assert (
        r.status_code == 403
        and r.json()["error"]["message"] == "this invitation is for another e-mail address"
    )
    assert world.get(cy, "/v1/me/invitations").json() == {"items": []}
    assert world.post(cy, f"/v1/me/invitations/{inv['id']}/accept").status_code == 404

    # Bo sees it on signing in, without the link.
    [mine] = world.get(bo, "/v1/me/invitations").json()["items"]
    assert mine["id"] == inv["id"] and mine["manager"] == {"display_name": "Ada"}
    assert world.post(bo, f"/v1/me/invitations/{inv['id']}/accept").status_code == 200
    assert world.product(bo) == "premium"
    assert world.get(bo, "/v1/me/invitations").json() == {"items": []}


def test_invitations_expire_are_revoked_and_are_used_once(world: World) -> None:
    ada, bo, cy = world.listener("Ada"), world.listener("Bo"), world.listener("Cy")
    assert world.subscribe(ada, plan="premium_family").status_code == 201
    old, revoked, used = world.invite(ada), world.invite(ada), world.invite(ada)
    assert len(world.get(ada, "/v1/me/subscription/invitations").json()["items"]) == 3

    assert world.delete(ada, f"/v1/me/subscription/invitations/{revoked['id']}").status_code == 204
    r = world.post(bo, f"/v1/invitations/{revoked['code']}/accept")
    assert r.status_code == 409 and r.json()["error"]["message"] == "this invitation was revoked by Ada"
    assert world.delete(ada, "/v1/me/subscription/invitations/unknownunknownunknown1").status_code == 404

    assert world.post(bo, f"/v1/invitations/{used['code']}/accept").status_code == 200
    r = world.post(cy, f"/v1/invitations/{used['code']}/accept")
    assert r.status_code == 409 and r.json()["error"]["message"] == "this invitation has been used already"
    assert world.delete(ada, f"/v1/me/subscription/invitations/{used['id']}").status_code == 409

    r = world.post(ada, f"/v1/invitations/{old['code']}/accept")
    assert r.status_code == 409 and "you manage this plan" in r.json()["error"]["message"]

    world.at(world.clock.now() + dt.timedelta(days=7, seconds=1))
    assert world.client.get(f"/v1/invitations/{old['code']}").json()["status"] == "expired"
    r = world.post(cy, f"/v1/invitations/{old['code']}/accept")
    assert r.status_code == 409
    assert (
        r.json()["error"]["message"]
        == "this invitation expired on 2026-02-07T12:00:00Z; ask Ada for a new one"
    )
    assert world.get(ada, "/v1/me/subscription/invitations").json() == {"items": []}
    assert world.product(cy) == "free"


def test_a_full_plan_refuses_invitations_and_joins(world: World) -> None:
    ada = world.listener("Ada")
    assert world.subscribe(ada, plan="premium_individual").status_code == 201
    r = world.post(ada, "/v1/me/subscription/invitations", json={})
    assert r.status_code == 409 and "for one person" in r.json()["error"]["message"]

    fay = world.listener("Fay")
    assert world.subscribe(fay, plan="premium_family").status_code == 201
    codes = [world.invite(fay)["code"] for _ in range(5)]  # 5 + Fay = 6 places
    r = world.post(fay, "/v1/me/subscription/invitations", json={})
    assert r.status_code == 409 and "all 6 places" in r.json()["error"]["message"]
    joiners = [world.listener(f"Kid{i}") for i in range(2)]
    for who, code in zip(joiners, codes, strict=False):
        assert world.post(who, f"/v1/invitations/{code}/accept").status_code == 200

    # A scheduled downgrade to Duo cannot happen with 3 people in; nor can the plan fill past it.
    assert world.patch(fay, "/v1/me/subscription", json={"plan_id": "premium_duo"}).status_code == 409
    assert world.delete(fay, f"/v1/me/subscription/members/{joiners[1].user_id}").status_code == 204
    assert world.patch(fay, "/v1/me/subscription", json={"plan_id": "premium_duo"}).status_code == 200
    late = world.listener("Late")
    r = world.post(late, f"/v1/invitations/{codes[2]}/accept")
    assert (
        r.status_code == 409
        and r.json()["error"]["message"] == "Fay's Premium Family is full (2 of 2 places taken)"
    )
    assert world.product(late) == "free"


def test_nobody_belongs_to_two_plans(world: World) -> None:
    ada, bo, cy = world.listener("Ada"), world.listener("Bo"), world.listener("Cy")
    assert world.subscribe(ada, plan="premium_family").status_code == 201
    assert world.subscribe(bo, plan="premium_family").status_code == 201
    assert world.post(cy, f"/v1/invitations/{world.invite(ada)['code']}/accept").status_code == 200

    r = world.post(cy, f"/v1/invitations/{world.invite(bo)['code']}/accept")
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        "you already belong to another Premium plan; cancel or leave it before joining Bo's plan"
    )
    r = world.post(ada, f"/v1/invitations/{world.invite(bo)['code']}/accept")
    assert r.status_code == 409 and "your own Premium subscription" in r.json()["error"]["message"]
    r = world.subscribe(cy)
    assert r.status_code == 409 and "leave the family plan first" in r.json()["error"]["message"]
    r = world.subscribe(ada)
    assert r.status_code == 409 and "change plan instead" in r.json()["error"]["message"]


def test_a_family_plan_lapsing_returns_everyone_to_free(world: World) -> None:
    fay = world.listener("Fay")
    kids = [world.listener(f"Kid{i}") for i in range(3)]
    token = world.card(fay)
    assert world.subscribe(fay, plan="premium_family", token=token).status_code == 201
    for kid in kids:
        assert world.post(kid, f"/v1/invitations/{world.invite(fay)['code']}/accept").status_code == 200
    changes: list[tuple[str, str]] = []
    world.c.billing.on_product_change(lambda uid, product: changes.append((uid, product)))

    world.sandbox.set_card_behaviour(token, "decline")
    world.at(utc(2026, 2, 28, 12))
    world.sweep()
    assert all(world.product(who) == "premium" for who in [fay, *kids])  # the grace period
    assert changes == []
    pending = world.invite(fay)
    world.at(utc(2026, 3, 7, 12))
    world.sweep()
    assert all(world.product(who) == "free" for who in [fay, *kids])
    assert sorted(changes) == sorted((who.user_id, "free") for who in [fay, *kids])
    assert world.decisions(kids[0])[-1] == (False, "lapsed")
    r = world.post(world.listener("Gus"), f"/v1/invitations/{pending['code']}/accept")
    assert (
        r.status_code == 409 and r.json()["error"]["message"] == "the plan this invitation is for has ended"
    )
    assert world.client.get(f"/v1/invitations/{pending['code']}").json()["status"] == "ended"


def test_deleting_accounts_ends_a_managers_plan_and_removes_a_member(world: World) -> None:
    ada, bo, cy = world.listener("Ada"), world.listener("Bo"), world.listener("Cy")
    assert world.subscribe(ada, plan="premium_family").status_code == 201
    for who in (bo, cy):
        assert world.post(who, f"/v1/invitations/{world.invite(ada)['code']}/accept").status_code == 200

    r = world.delete(bo, "/v1/me", json={"password": PASSWORD})  # a member: just gone from the plan
    assert r.status_code == 204, r.text
    assert [m["display_name"] for m in world.subscription(ada)["members"]] == ["Ada", "Cy"]

    changes: list[tuple[str, str]] = []
    world.c.billing.on_product_change(lambda uid, product: changes.append((uid, product)))
    world.clock.advance(1)  # (decisions are listed by time)
    assert world.delete(ada, "/v1/me", json={"password": PASSWORD}).status_code == 204  # the manager
    assert world.product(cy) == "free"
    assert world.get(cy, "/v1/me/subscription").status_code == 404
    assert world.decisions(cy)[-1] == (False, "manager_deleted_account")
    assert changes == [(cy.user_id, "free")]
    world.at(utc(2026, 3, 1))
    world.sweep()
    assert len(world.charges()) == 1  # nobody is charged for a deleted account
