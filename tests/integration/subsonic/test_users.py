"""Users (admins manage them; everyone may read themselves), passwords, and the scan status."""

from __future__ import annotations

import sqlalchemy as sa

from tests.integration.subsonic.conftest import World
from tests.subsonic import check, error_code, token_params
from tonearm.domains.accounts.tables import users
from tonearm.domains.catalog.tables import tracks


def ping(world: World, params: dict[str, str]) -> int | None:
    return error_code(check("ping", world.client.get("/rest/ping", params={**params, "f": "json"})))


def test_get_user_and_users(world: World) -> None:
    me = world.me
    user = world.rest("getUser", username=me.email)["user"]
    assert user["username"] == user["email"] == me.email
    assert user["adminRole"] is False and user["streamRole"] is True and user["jukeboxRole"] is False
    assert user["maxBitRate"] == 160 and user["downloadRole"] is False  # a free plan
    assert user["folder"] == [1]
    assert world.rest("getUser", username=me.email.upper())["user"]["username"] == me.email
    # Only oneself, unless an admin.
    assert error_code(world.rest("getUser", username=world.other.email)) == 50
    assert error_code(world.rest("getUser", username="nobody@example.com")) == 50  # no probing
    assert world.rest("getUser", world.admin, username=me.email)["user"]["username"] == me.email
    assert world.rest("getUser", world.admin, username=world.admin.email)["user"]["adminRole"] is True
    assert error_code(world.rest("getUser", world.admin, username="nobody@example.com")) == 70
    assert error_code(world.rest("getUser")) == 10
    assert error_code(world.rest("getUsers")) == 50
    everyone = [u["username"] for u in world.rest("getUsers", world.admin)["users"]["user"]]
    assert {me.email, world.other.email, world.admin.email} <= set(everyone) and everyone == sorted(everyone)


def test_create_and_update_users(world: World) -> None:
    admin = world.admin
    email = "new-user@example.com"
    assert error_code(world.rest("createUser", username=email, password="long enough", email=email)) == 50
    answer = world.rest("createUser", admin, fmt="json", username="bob", password="long enough", email=email)
    assert error_code(answer) == 0 and "e-mail" in answer["error"]["message"]
    created = world.rest(
        "createUser", admin, fmt="json", username=email, password="enc:" + b"long enough".hex(), email=email
    )
    assert error_code(created) is None
    with world.c.db.read() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.role).where(users.c.email == email)).one()
    assert row.role == "listener"
    # The password is the account's (web) password; Subsonic apps need the app password.
    assert ping(world, token_params(email, "long enough")) == 40
    assert error_code(world.rest("getUser", admin, username=email)) is None
    assert (
        error_code(world.rest("createUser", admin, username=email, password="long enough", email=email)) == 0
    )
    assert error_code(world.rest("createUser", admin, username=email, email=email)) == 10

    assert error_code(world.rest("updateUser", world.me, username=email, adminRole="true")) == 50
    assert error_code(world.rest("updateUser", admin, username=email, adminRole="true")) is None
    assert world.rest("getUser", admin, username=email)["user"]["adminRole"] is True
    assert error_code(world.rest("updateUser", admin, username=email, adminRole="false")) is None
    assert world.rest("getUser", admin, username=email)["user"]["adminRole"] is False
    assert error_code(world.rest("updateUser", admin, username=email, password="another one")) == 0
    assert error_code(world.rest("updateUser", admin, username=email, email="x@example.com")) == 0
    assert error_code(world.rest("updateUser", admin, username="nobody@example.com", adminRole="true")) == 70
    # An admin cannot remove their own admin role (someone must stay admin).
    assert error_code(world.rest("updateUser", admin, username=admin.email, adminRole="false")) == 0
    assert world.rest("getUser", admin, username=admin.email)["user"]["adminRole"] is True


def test_change_password_points_to_the_app_password(world: World) -> None:
    answer = world.rest("changePassword", fmt="json", username=world.me.email, password="new secret")
    assert error_code(answer) == 50 and "app password" in answer["error"]["message"]
    assert answer["error"]["helpUrl"].endswith("/#/account/apps")
    assert error_code(world.rest("changePassword", username=world.other.email, password="x")) == 50
    assert error_code(world.rest("changePassword", username=world.me.email)) == 10
    assert ping(world, token_params(world.me.email, world.me.app_password)) is None  # unchanged


def test_scan_status(world: World) -> None:
    with world.c.db.read() as conn:
        public = conn.execute(
            sa.select(sa.func.count()).select_from(tracks).where(tracks.c.visibility == "public")
        ).scalar_one()
    assert world.rest("getScanStatus")["scanStatus"] == {"scanning": False, "count": public, "folderCount": 1}
    assert world.rest("getScanStatus", world.other)["scanStatus"]["count"] == public + 1  # their upload
    assert error_code(world.rest("startScan")) == 50
    answer = world.rest("startScan", world.admin)
    assert error_code(answer) == 0 and "tonearm import" in answer["error"]["message"]


def test_admins_delete_accounts_with_their_data(world: World) -> None:
    doomed = world.new_listener()
    world.rest("star", doomed, id=world.seeded.tracks["Halo"])
    assert error_code(world.rest("deleteUser", world.me, username=doomed.email)) == 50
    assert error_code(world.rest("deleteUser", world.admin, username=world.admin.email)) == 0  # not oneself
    assert error_code(world.rest("deleteUser", world.admin)) == 10
    assert error_code(world.rest("deleteUser", world.admin, fmt="json", username=doomed.email)) is None
    with world.c.db.read() as conn:
        assert conn.execute(sa.select(users.c.id).where(users.c.id == doomed.user_id)).first() is None
    assert ping(world, {"apiKey": doomed.api_key}) == 44  # their keys went with them
    assert error_code(world.rest("deleteUser", world.admin, username=doomed.email)) == 70
