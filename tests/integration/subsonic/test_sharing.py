"""Shares over Tonearm's short links: one song, album or playlist each, public things only."""

from __future__ import annotations

import time

from tests.integration.subsonic.conftest import World
from tests.subsonic import NS, error_code


def test_shares_crud(world: World) -> None:
    me = world.new_listener()
    t, a = world.seeded.tracks, world.seeded.albums
    world.c.limiter.reset(f"share:{me.user_id}")
    made = world.rest("createShare", me, fmt="json", id=t["Halo"], description="listen!")["shares"]["share"]
    [share] = made
    assert share["url"] == f"http://testserver/s/{share['id']}" and share["username"] == me.email
    assert share["visitCount"] == 0 and "expires" not in share and share["description"] == "listen!"
    assert [e["title"] for e in share["entry"]] == ["Halo"]
    # An album, expiring in a day (ms since 1970).
    expires = int(time.time() * 1000) + 86_400_000
    album = world.rest("createShare", me, fmt="json", id=a["A Night at the Opera"], expires=expires)
    [album_share] = album["shares"]["share"]
    assert [e["title"] for e in album_share["entry"]] == ["Bohemian Rhapsody", "Love of My Life"]
    assert album_share["expires"].startswith(time.strftime("%Y-%m-%d", time.gmtime(expires / 1000)))
    # A visit counts.
    assert world.client.get(f"/s/{share['id']}", follow_redirects=False).status_code in (302, 303, 307)
    listed = world.rest("getShares", me)["shares"]["share"]
    assert [(s["id"], s["visitCount"]) for s in listed] == [(album_share["id"], 0), (share["id"], 1)]
    assert "lastVisited" in listed[1]
    root = world.xml("getShares", me)
    assert [e.get("id") for e in root.iter(f"{NS}share")] == [album_share["id"], share["id"]]

    # updateShare: the note and the expiry change in place; 0 removes the expiry.
    later = int(time.time() * 1000) + 2 * 86_400_000
    assert (
        error_code(world.rest("updateShare", me, id=share["id"], description="now!", expires=later)) is None
    )
    [changed] = [s for s in world.rest("getShares", me)["shares"]["share"] if s["id"] == share["id"]]
    assert changed["description"] == "now!" and changed["url"] == share["url"]
    assert changed["expires"].startswith(time.strftime("%Y-%m-%d", time.gmtime(later / 1000)))
    assert error_code(world.rest("updateShare", me, id=share["id"], expires=0)) is None
    [changed] = [s for s in world.rest("getShares", me)["shares"]["share"] if s["id"] == share["id"]]
    assert "expires" not in changed and changed["description"] == "now!"
    assert error_code(world.rest("updateShare", world.new_listener(), id=share["id"], description="x")) == 70
    assert error_code(world.rest("updateShare", me, id=share["id"], expires="soon")) == 0
    assert error_code(world.rest("updateShare", me)) == 10

    assert error_code(world.rest("deleteShare", me, fmt="json", id=share["id"])) is None
    assert [s["id"] for s in world.rest("getShares", me)["shares"]["share"]] == [album_share["id"]]
    assert error_code(world.rest("deleteShare", me, id=share["id"])) == 70
    # Someone else's share cannot be deleted (it does not exist for them).
    assert error_code(world.rest("deleteShare", world.new_listener(), id=album_share["id"])) == 70
    assert world.rest("getShares", world.new_listener())["shares"] == {"share": []}


def test_what_cannot_be_shared(world: World) -> None:
    me = world.new_listener()
    t = world.seeded.tracks
    secret = t["Secret Demo"]
    assert error_code(world.rest("createShare", me)) == 10
    # One object per link: several ids are refused rather than half shared.
    answer = world.rest("createShare", me, id=[t["Halo"], t["Eple"]])
    assert error_code(answer) == 0 and "playlist" in answer["error"]["message"]
    for hidden in (secret, world.seeded.albums["Demos"], "0" * 22, "bad"):
        assert error_code(world.rest("createShare", me, id=hidden)) == 70
    # Its owner is told to make it public first.
    answer = world.rest("createShare", world.other, id=secret)
    assert error_code(answer) == 50 and "public" in answer["error"]["message"]
    # An expiry in the past, or more than a year away.
    for expires in (1000, int(time.time() * 1000) + 400 * 86_400_000):
        assert error_code(world.rest("createShare", me, id=t["Halo"], expires=expires)) == 0
    assert world.rest("getShares", me)["shares"] == {"share": []}


def test_a_playlist_share_lists_its_public_songs(world: World) -> None:
    me, t = world.new_listener(), world.seeded.tracks
    service = world.c.playlists
    pid = service.create(me.user_id, name="Shared", public=True)["id"]
    service.add(me.user_id, pid, [t["Eple"], t["Halo"]])
    [share] = world.rest("createShare", me, fmt="json", id=pid)["shares"]["share"]
    assert [e["title"] for e in share["entry"]] == ["Eple", "Halo"]
    private = service.create(me.user_id, name="Mine", public=False)["id"]
    assert error_code(world.rest("createShare", me, id=private)) == 50
    other_private = service.create(world.other.user_id, name="Theirs", public=False)["id"]
    assert error_code(world.rest("createShare", me, id=other_private)) == 70
