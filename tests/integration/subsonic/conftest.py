"""A Subsonic world on SQLite and PostgreSQL: the search tests' catalog (plus a private upload of
another listener), a listener with an API key and an app password, and `rest()`, which calls a
method in XML and in JSON and validates both answers against the XSD and the OpenSubsonic schemas.

The world is made once per module and backend; tests that change it make their own listener
(`world.new_listener()`) so they do not disturb each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from tests.conftest import _pg_url, _private_pg_schema
from tests.helpers import make_settings
from tests.integration.api.test_search_api import Seeded, seed
from tests.subsonic import check, error_code
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.http.app import create_app
from tonearm.kernel.ids import new_id


@dataclass
class Listener:
    user_id: str
    email: str
    api_key: str
    app_password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"apiKey": self.api_key, "v": "1.16.1", "c": "tests"}


@dataclass
class World:
    c: Container
    client: TestClient
    seeded: Seeded
    me: Listener  # an ordinary free listener
    other: Listener  # owns the private track "Secret Demo"
    admin: Listener
    _n: list[int] = field(default_factory=lambda: [0])

    def new_listener(self, role: str = "listener") -> Listener:
        self._n[0] += 1
        email = f"l{self._n[0]}-{new_id()[:6].lower()}@example.com"
        return make_listener(self.c, email, role=role)

    def rest(
        self, method: str, who: Listener | None = None, *, fmt: str = "both", **params: Any
    ) -> dict[str, Any]:
        """Calls `method` as `who` (default: `me`) and returns the JSON `subsonic-response`; with
        fmt="both" the XML answer is fetched and validated too, and must agree on success/failure."""
        who = who or self.me
        query = {**who.auth, **params}
        answer = check(method, self.client.get(f"/rest/{method}", params={**query, "f": "json"}))
        if fmt == "both":
            root = check(method, self.client.get(f"/rest/{method}.view", params=query))
            assert error_code(root) == error_code(answer), (method, error_code(root), error_code(answer))
        result: dict[str, Any] = answer
        return result

    def xml(self, method: str, who: Listener | None = None, **params: Any) -> ElementTree.Element:
        """The XML answer, validated against the XSD."""
        who = who or self.me
        root: ElementTree.Element = check(
            method, self.client.get(f"/rest/{method}", params={**who.auth, **params})
        )
        return root


def make_listener(c: Container, email: str, *, role: str = "listener") -> Listener:
    user_id = c.accounts.sign_up(email, "a long password", email.split("@")[0].title(), None)
    if role != "listener":
        from tonearm.domains.accounts.tables import users

        with c.db.write() as conn:
            conn.execute(users.update().where(users.c.id == user_id).values(role=role))
    key = c.credentials.create_key(user_id, "tests")["key"]
    return Listener(user_id, email, key, c.credentials.reset_app_password(user_id))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("subsonic")
    with _private_pg_schema("ss_") if request.param == "postgres" else contextlib.nullcontext() as schema:
        url = _pg_url(schema) if schema else f"sqlite:///{tmp / 'subsonic.db'}"
        migrate.upgrade(url)
        c = bootstrap(make_settings(tmp, url, search_url="memory://"))
        try:
            other = make_listener(c, "other@example.com")
            seeded = seed(c, private_owner=other.user_id)
            me = make_listener(c, "me@example.com")
            admin = make_listener(c, "admin@example.com", role="admin")
            with TestClient(create_app(c, start_workers=False)) as client:
                yield World(c, client, seeded, me, other, admin)
        finally:
            c.close()
