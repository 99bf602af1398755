"""Playlists through Subsonic: create, read, update (index removal counts positions as the caller
saw them before the call), delete; another listener's private playlist does not exist for the
caller (70), a public one cannot be changed (50), and generated playlists are read-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from tests.integration.subsonic.conftest import Listener, World
from tests.subsonic import NS, error_code
from tonearm.domains.library.tables import playlists
from tonearm.kernel.ids import new_id


def titles(playlist: dict[str, Any]) -> list[str]:
    return [e["title"] for e in playlist.get("entry", [])]


def get(world: World, who: Listener, playlist_id: str) -> dict[str, Any]:
    answer = world.rest("getPlaylist", who, id=playlist_id)
    assert error_code(answer) is None, answer
    playlist: dict[str, Any] = answer["playlist"]
    return playlist


def test_create_update_and_delete(world: World) -> None:
    me = world.new_listener()
    t = world.seeded.tracks
    made = world.rest(
        "createPlaylist", me, fmt="json", name="Road trip", songId=[t["Halo"], t["Eple"], t["Yesterday"]]
    )["playlist"]
    assert titles(made) == ["Halo", "Eple", "Yesterday"]
    assert made["owner"] == me.email and made["public"] is False and made["readonly"] is False
    assert made["songCount"] == 3 and made["duration"] == 540
    pid = made["id"]
    listed = world.rest("getPlaylists", me)["playlists"]["playlist"]
    assert [(p["id"], p["name"], p["songCount"]) for p in listed] == [(pid, "Road trip", 3)]
    # XML: the same playlist, entries in order, valid against the XSD.
    root = world.xml("getPlaylist", me, id=pid)
    element = root.find(f"{NS}playlist")
    assert element is not None and element.get("owner") == me.email
    assert [e.get("title") for e in element.findall(f"{NS}entry")] == ["Halo", "Eple", "Yesterday"]

    # Indexes name positions before the call: removing 0 and 2 leaves Eple; additions go last.
    answer = world.rest(
        "updatePlaylist",
        me,
        fmt="json",
        playlistId=pid,
        name="Road trip 2",
        comment="for the car",
        public="true",
        songIndexToRemove=[2, 0],
        songIdToAdd=[t["Bohemian Rhapsody"], t["Halo"]],
    )
    assert error_code(answer) is None, answer
    got = get(world, me, pid)
    assert titles(got) == ["Eple", "Bohemian Rhapsody", "Halo"]
    assert (got["name"], got["comment"], got["public"], got["songCount"]) == (
        "Road trip 2",
        "for the car",
        True,
        3,
    )
    assert got["changed"] >= got["created"]
    for bad in ({"songIndexToRemove": 3}, {"songIndexToRemove": "x"}, {"public": "maybe"}):
        assert error_code(world.rest("updatePlaylist", me, playlistId=pid, **bad)) == 0, bad
    assert titles(get(world, me, pid)) == ["Eple", "Bohemian Rhapsody", "Halo"]

    # createPlaylist with playlistId replaces the songs (and renames with name).
    replaced = world.rest("createPlaylist", me, fmt="json", playlistId=pid, name="Short", songId=t["Eple"])
    assert titles(replaced["playlist"]) == ["Eple"] and replaced["playlist"]["name"] == "Short"
    emptied = world.rest("createPlaylist", me, fmt="json", playlistId=pid)
    assert titles(emptied["playlist"]) == [] and emptied["playlist"]["songCount"] == 0

    assert error_code(world.rest("deletePlaylist", me, fmt="json", id=pid)) is None
    assert error_code(world.rest("getPlaylist", me, id=pid)) == 70
    assert world.rest("getPlaylists", me)["playlists"] == {"playlist": []}


def test_bad_input(world: World) -> None:
    me = world.new_listener()
    t = world.seeded.tracks
    assert error_code(world.rest("createPlaylist", me, songId=t["Halo"])) == 10  # no name
    assert error_code(world.rest("createPlaylist", me, name=" ")) == 0
    assert error_code(world.rest("getPlaylist", me)) == 10
    for bad in ("nope", "0" * 22):
        assert error_code(world.rest("getPlaylist", me, id=bad)) == 70
        assert error_code(world.rest("updatePlaylist", me, playlistId=bad, name="x")) == 70
        assert error_code(world.rest("deletePlaylist", me, id=bad)) == 70
    # Another listener's private upload, or an unknown song: 70, and no playlist is made.
    for song in (t["Secret Demo"], "0" * 22, "bad"):
        assert error_code(world.rest("createPlaylist", me, name="Mine", songId=[t["Halo"], song])) == 70
    assert world.rest("getPlaylists", me)["playlists"].get("playlist", []) == []


def test_other_listeners_playlists(world: World) -> None:
    me, owner = world.new_listener(), world.new_listener()
    t = world.seeded.tracks
    service = world.c.playlists
    private = service.create(owner.user_id, name="Diary", public=False)["id"]
    public = service.create(owner.user_id, name="Party", public=True)["id"]
    service.add(owner.user_id, public, [t["Halo"]])
    # A private playlist does not exist for anyone else: 70 for every method, never 50.
    for name, params in (
        ("getPlaylist", {"id": private}),
        ("updatePlaylist", {"playlistId": private, "name": "mine now"}),
        ("updatePlaylist", {"playlistId": private, "songIdToAdd": t["Eple"]}),
        ("createPlaylist", {"playlistId": private, "songId": t["Eple"]}),
        ("deletePlaylist", {"id": private}),
    ):
        assert error_code(world.rest(name, me, **params)) == 70, name
    # A public one may be read, with the owner's name (not their e-mail address), but not changed.
    seen = get(world, me, public)
    assert titles(seen) == ["Halo"] and seen["owner"] != owner.email and seen["readonly"] is True
    for name, params in (
        ("updatePlaylist", {"playlistId": public, "name": "mine now"}),
        ("updatePlaylist", {"playlistId": public, "songIndexToRemove": 0}),
        ("createPlaylist", {"playlistId": public, "songId": t["Eple"]}),
        ("deletePlaylist", {"id": public}),
    ):
        assert error_code(world.rest(name, me, **params)) == 50, name
    assert titles(get(world, owner, public)) == ["Halo"] and get(world, owner, private)["name"] == "Diary"
    # getPlaylists: the caller's own; an admin may ask for another user's public ones only.
    assert world.rest("getPlaylists", me)["playlists"].get("playlist", []) == []
    assert error_code(world.rest("getPlaylists", me, username=owner.email)) == 50
    theirs = world.rest("getPlaylists", world.admin, username=owner.email)["playlists"]["playlist"]
    assert [p["name"] for p in theirs] == ["Party"]
    assert error_code(world.rest("getPlaylists", world.admin, username="nobody@example.com")) == 70


def test_collaborators_remove_by_the_position_they_see(world: World) -> None:
    """The owner's private upload is in the playlist; a collaborator does not see it, and their
    index 1 is the song after it."""
    me, other = world.new_listener(), world.other
    t = world.seeded.tracks
    service = world.c.playlists
    pid = service.create(other.user_id, name="Together", public=False, collaborative=True)["id"]
    service.add_collaborator(other.user_id, pid, me.user_id)
    service.add(other.user_id, pid, [t["Halo"], t["Secret Demo"], t["Yesterday"], t["Eple"]])
    seen = get(world, me, pid)
    assert titles(seen) == ["Halo", "Yesterday", "Eple"] and seen["songCount"] == 3
    assert seen["readonly"] is False and [
        p["id"] for p in world.rest("getPlaylists", me)["playlists"]["playlist"]
    ] == [pid]
    assert (
        error_code(world.rest("updatePlaylist", me, fmt="json", playlistId=pid, songIndexToRemove=1)) is None
    )
    assert titles(get(world, other, pid)) == ["Halo", "Secret Demo", "Eple"]
    # Collaborators change songs, not details; only the owner deletes.
    assert error_code(world.rest("updatePlaylist", me, playlistId=pid, name="ours")) == 50
    assert error_code(world.rest("deletePlaylist", me, id=pid)) == 50


def test_generated_playlists_are_read_only(world: World) -> None:
    me = world.new_listener()
    pid, now = new_id(), dt.datetime.now(dt.UTC)
    with world.c.db.write() as conn:
        conn.execute(
            sa.insert(playlists).values(
                id=pid,
                owner_id=me.user_id,
                name="Discover Weekly",
                public=False,
                generator="discover_weekly",
                created_at=now,
                updated_at=now,
            )
        )
    assert get(world, me, pid)["readonly"] is True
    for name, params in (
        ("updatePlaylist", {"playlistId": pid, "name": "mine"}),
        ("createPlaylist", {"playlistId": pid, "songId": world.seeded.tracks["Halo"]}),
        ("deletePlaylist", {"id": pid}),
    ):
        answer = world.rest(name, me, **params)
        assert error_code(answer) == 50 and "Discover Weekly" in answer["error"]["message"], name
