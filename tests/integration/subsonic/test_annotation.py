"""star, unstar and setRating: Subsonic's stars are the library (likes, saves, follows), ratings
are 1 to 5, and nothing another listener keeps private can be starred or rated (70)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.integration.subsonic.conftest import World
from tests.subsonic import error_code
from tonearm.domains.catalog.tables import tracks
from tonearm.kernel.ids import new_id


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


def test_starring_more_than_fifty_at_once(world: World) -> None:
    """Apps star whole lists in one call; the library takes 50 ids a call, so they are batched."""
    c = world.c
    now = c.clock.now()
    with c.db.write() as conn:
        artist_id = c.catalog.ensure_artist(conn, "Batch Artist", now)
        album_id, _ = c.catalog.ensure_album(conn, "Batch Album", artist_id, "2020", now)
        ids = [new_id() for _ in range(60)]
        conn.execute(
            sa.insert(tracks),
            [
                {
                    "id": t,
                    "title": f"Batch {n}",
                    "album_id": album_id,
                    "duration_ms": 1000,
                    "track_number": n + 1,
                    "status": "ready",
                    "visibility": "public",
                    "content_hash": new_id(),
                    "created_at": now,
                    "updated_at": now,
                }
                for n, t in enumerate(ids)
            ],
        )
    someone = world.new_listener()
    assert error_code(world.rest("star", someone, fmt="json", id=ids)) is None
    assert all(world.c.library.contains(someone.user_id, "track", ids[:50]))
    assert all(world.c.library.contains(someone.user_id, "track", ids[50:]))
    assert error_code(world.rest("unstar", someone, fmt="json", id=ids)) is None
    assert not any(world.c.library.contains(someone.user_id, "track", ids[:50]))
