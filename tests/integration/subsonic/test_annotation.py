"""star, unstar and setRating: Subsonic's stars are the library (likes, saves, follows), ratings
are 1 to 5, and nothing another listener keeps private can be starred or rated (70)."""

from __future__ import annotations

from tests.integration.subsonic.conftest import World
from tests.subsonic import error_code


def test_star_and_unstar_fill_the_library(world: World) -> None:
    someone = world.new_listener()
    uid, lib = someone.user_id, world.c.library
    t, a, r = world.seeded.tracks, world.seeded.albums, world.seeded.artists
    halo, jazz, queen = t["Halo"], a["Jazz"], r["Queen"]
    # `id` may name a song, an album or an artist; albumId and artistId one kind each.
    assert error_code(world.rest("star", someone, id=[halo, jazz], artistId=queen)) is None
    assert lib.contains(uid, "track", [halo]) == [True]
    assert lib.contains(uid, "album", [jazz]) == [True]
    assert lib.follows(uid, [queen]) == [True]
    assert error_code(world.rest("star", someone, id=halo)) is None  # again: no error
    assert error_code(world.rest("star", someone, albumId=a["Thirteen Tales"])) is None
    assert lib.contains(uid, "album", [a["Thirteen Tales"]]) == [True]

    assert error_code(world.rest("unstar", someone, id=[halo, queen], albumId=jazz)) is None
    assert lib.contains(uid, "track", [halo]) == [False]
    assert lib.contains(uid, "album", [jazz, a["Thirteen Tales"]]) == [False, True]
    assert lib.follows(uid, [queen]) == [False]
    assert error_code(world.rest("unstar", someone, id="0" * 22)) is None  # nothing to remove: fine


def test_star_refuses_what_the_caller_cannot_see(world: World) -> None:
    someone = world.new_listener()
    t, a, r = world.seeded.tracks, world.seeded.albums, world.seeded.artists
    secret = t["Secret Demo"]
    for params in (
        {"id": secret},
        {"id": a["Demos"]},  # an album of another listener's private uploads only
        {"albumId": a["Demos"]},
        {"artistId": r["Bedroom Artist"]},  # known only from that private upload
        {"id": "0" * 22},
        {"id": "not-an-id"},
        {"albumId": t["Halo"]},  # a song is not an album
        {"id": [t["Halo"], secret]},  # all or nothing
    ):
        assert error_code(world.rest("star", someone, **params)) == 70, params
    assert world.c.library.contains(someone.user_id, "track", [t["Halo"]]) == [False]
    assert error_code(world.rest("star", someone)) == 10
    # Its owner may star it.
    assert error_code(world.rest("star", world.other, id=secret)) is None
    assert world.c.library.contains(world.other.user_id, "track", [secret]) == [True]


def test_set_rating(world: World) -> None:
    someone = world.new_listener()
    uid, lib = someone.user_id, world.c.library
    t, a, r = world.seeded.tracks, world.seeded.albums, world.seeded.artists
    for kind, item, stars in (("track", t["Eple"], 4), ("album", a["Jazz"], 5), ("artist", r["Queen"], 1)):
        assert error_code(world.rest("setRating", someone, id=item, rating=stars)) is None
        assert lib.rating(uid, kind, item) == stars  # type: ignore[arg-type]
    assert error_code(world.rest("setRating", someone, id=t["Eple"], rating=2)) is None
    assert lib.rating(uid, "track", t["Eple"]) == 2
    assert error_code(world.rest("setRating", someone, id=t["Eple"], rating=0)) is None  # 0 removes
    assert lib.rating(uid, "track", t["Eple"]) is None
    assert error_code(world.rest("setRating", someone, id=t["Eple"], rating=0)) is None  # twice: fine
    for bad in (6, -1, "x"):
        assert error_code(world.rest("setRating", someone, id=t["Eple"], rating=bad)) == 0, bad
    assert error_code(world.rest("setRating", someone, id=t["Eple"])) == 10
    assert error_code(world.rest("setRating", someone, rating=3)) == 10
    for hidden in (t["Secret Demo"], a["Demos"], r["Bedroom Artist"], "0" * 22):
        assert error_code(world.rest("setRating", someone, id=hidden, rating=3)) == 70
    assert lib.rating(uid, "album", a["Demos"]) is None
