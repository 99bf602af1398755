"""The saved play queue (by id and by index) and bookmarks, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.integration.subsonic.conftest import World
from tests.subsonic import NS, error_code


def test_play_queue_round_trip(world: World) -> None:
    me = world.new_listener()
    t = world.seeded.tracks
    halo, eple = t["Halo"], t["Eple"]
    empty = world.rest("getPlayQueue", me)["playQueue"]
    assert empty == {
        "username": me.email,
        "changed": "1970-01-01T00:00:00.000Z",
        "changedBy": "",
        "entry": [],
    }

    # A queue may hold a track twice; `current` is its first occurrence.
    ids = [halo, eple, halo]
    assert error_code(world.rest("savePlayQueue", me, id=ids, current=eple, position=61_500)) is None
    queue = world.rest("getPlayQueue", me)["playQueue"]
    assert [e["id"] for e in queue["entry"]] == ids
    assert (queue["current"], queue["position"], queue["username"], queue["changedBy"]) == (
        eple,
        61_500,
        me.email,
        "tests",
    )
    by_index = world.rest("getPlayQueueByIndex", me)["playQueueByIndex"]
    assert (by_index["currentIndex"], by_index["position"], len(by_index["entry"])) == (1, 61_500, 3)
    # XML too names the current song by its id (the XSD says int; see handlers/queue.py).
    element = world.xml("getPlayQueue", me).find(f"{NS}playQueue")
    assert element is not None and element.get("current") == eple and element.get("position") == "61500"
    assert len(element.findall(f"{NS}entry")) == 3 and element.get("username") == me.email

    # By index: the second Halo is current, which savePlayQueue could not say.
    answer = world.rest("savePlayQueueByIndex", me, id=ids, currentIndex=2, position=5)
    assert error_code(answer) is None
    by_index = world.rest("getPlayQueueByIndex", me)["playQueueByIndex"]
    assert (by_index["currentIndex"], by_index["position"]) == (2, 5)
    assert world.rest("getPlayQueue", me)["playQueue"]["current"] == halo
    assert error_code(world.rest("savePlayQueueByIndex", me, id=ids, currentIndex=0)) is None
    element = world.xml("getPlayQueue", me).find(f"{NS}playQueue")
    assert element is not None and element.get("position") == "0" and element.get("current") == halo

    # Saving nothing clears it.
    assert error_code(world.rest("savePlayQueue", me)) is None
    assert world.rest("getPlayQueue", me)["playQueue"]["entry"] == []
    assert "currentIndex" not in world.rest("getPlayQueueByIndex", me)["playQueueByIndex"]


def test_play_queue_errors(world: World) -> None:
    me = world.new_listener()
    t = world.seeded.tracks
    halo, eple = t["Halo"], t["Eple"]
    assert error_code(world.rest("savePlayQueue", me, id=[halo, eple])) == 10  # no current
    assert error_code(world.rest("savePlayQueue", me, id=[halo], current=eple)) == 0  # not in the queue
    assert error_code(world.rest("savePlayQueue", me, id=[halo], current=halo, position=-1)) == 0
    assert error_code(world.rest("savePlayQueueByIndex", me, id=[halo])) == 10
    for index in (1, -1):
        assert error_code(world.rest("savePlayQueueByIndex", me, id=[halo], currentIndex=index)) == 10
    assert error_code(world.rest("savePlayQueueByIndex", me, currentIndex=0)) == 0
    for hidden in (t["Secret Demo"], "0" * 22, "bad"):
        assert error_code(world.rest("savePlayQueue", me, id=[halo, hidden], current=halo)) == 70
        assert error_code(world.rest("savePlayQueueByIndex", me, id=[hidden], currentIndex=0)) == 70
    assert world.rest("getPlayQueue", me)["playQueue"]["entry"] == []
    # The owner of the private upload may queue it; nobody else ever sees it in their queue.
    assert (
        error_code(world.rest("savePlayQueue", world.other, id=[t["Secret Demo"]], current=t["Secret Demo"]))
        is None
    )
    assert [e["title"] for e in world.rest("getPlayQueue", world.other)["playQueue"]["entry"]] == [
        "Secret Demo"
    ]


def test_bookmarks(world: World) -> None:
    me = world.new_listener()
    t = world.seeded.tracks
    assert world.rest("getBookmarks", me)["bookmarks"] == {"bookmark": []}
    assert (
        error_code(world.rest("createBookmark", me, id=t["Halo"], position=90_000, comment="chorus")) is None
    )
    assert error_code(world.rest("createBookmark", me, id=t["Eple"], position=1000)) is None
    marks = world.rest("getBookmarks", me)["bookmarks"]["bookmark"]
    assert [(b["entry"]["title"], b["position"], b.get("comment")) for b in marks] == [
        ("Eple", 1000, None),
        ("Halo", 90_000, "chorus"),
    ]
    assert marks[0]["username"] == me.email and marks[0]["created"] <= marks[0]["changed"]
    # Again for the same song: replaced, not added.
    assert error_code(world.rest("createBookmark", me, id=t["Halo"], position=95_000)) is None
    marks = world.rest("getBookmarks", me)["bookmarks"]["bookmark"]
    assert [(b["entry"]["title"], b["position"], b.get("comment")) for b in marks] == [
        ("Halo", 95_000, None),
        ("Eple", 1000, None),
    ]
    assert error_code(world.rest("deleteBookmark", me, fmt="json", id=t["Halo"])) is None
    assert [b["entry"]["title"] for b in world.rest("getBookmarks", me)["bookmarks"]["bookmark"]] == ["Eple"]
    assert error_code(world.rest("deleteBookmark", me, id=t["Halo"])) == 70
    # Bookmarks are the caller's own.
    assert world.rest("getBookmarks", world.new_listener())["bookmarks"] == {"bookmark": []}

    assert error_code(world.rest("createBookmark", me, id=t["Halo"])) == 10
    assert error_code(world.rest("createBookmark", me, id=t["Halo"], position=-5)) == 0
    assert error_code(world.rest("createBookmark", me, id=t["Halo"], position=1, comment="x" * 501)) == 0
    for hidden in (t["Secret Demo"], "0" * 22, "bad"):
        assert error_code(world.rest("createBookmark", me, id=hidden, position=1)) == 70
