"""The recommender on planted tastes, end to end through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.integration.recs.conftest import GENRES, World, early_skip, like, listener, play
from tests.premium import make_premium
from tonearm.bootstrap import Container
from tonearm.domains.catalog.tables import tracks
from tonearm.domains.recs.evaluate import evaluate, plot
from tonearm.domains.recs.tables import rec_models
from tonearm.kernel.ids import new_id


def _genres(world: World, body: dict[str, object], key: str = "tracks") -> list[str]:
    items = body[key]
    assert isinstance(items, list)
    return [world.genre_of[t["id"]] for t in items]


def _give_taste(
    c: Container, world: World, user_id: str, genre: str, *, skip_genre: str | None = None
) -> list[str]:
    """A listener who loves `genre`: 30 plays of it; two early skips of `skip_genre`."""
    now = c.clock.now()
    own = world.tracks_by_genre[genre]
    with c.db.write() as conn:
        for k in range(30):
            play(conn, user_id, own[k % 12], now - dt.timedelta(days=1 + k % 20, minutes=k))
        skipped = world.tracks_by_genre[skip_genre][:2] if skip_genre else []
        for t in skipped:
            early_skip(conn, user_id, t, now - dt.timedelta(days=2))
    c.recs.forget(user_id)
    return skipped


def test_a_listener_who_loves_one_genre_gets_that_genre_without_what_they_skipped(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    make_premium(container, me["user_id"])
    skipped = _give_taste(container, world, me["user_id"], "Jazz", skip_genre="Ambient")
    container.recs.train()

    home = client.get("/v1/me/home", headers=me["headers"]).json()
    shelves = {s["id"]: s for s in home["shelves"]}
    assert home["personalised"] is True
    picks = _genres(world, shelves["recommended"], "items")
    assert Counter(picks)["Jazz"] >= 0.66 * len(picks), picks  # 3 per artist; the rest: popular
    ids = {t["id"] for t in shelves["recommended"]["items"]}
    assert not ids & set(skipped)
    by_artist = Counter(world.artist_of[t] for t in ids)
    assert max(by_artist.values()) <= 3  # diversity: no artist takes a quarter of the shelf

    # Seeded with another genre, the seed wins but the skipped tracks stay out.
    r = client.get("/v1/recommendations?seed_genres=ambient&limit=20", headers=me["headers"])
    assert r.status_code == 200, r.text
    got = _genres(world, r.json())
    assert Counter(got)["Ambient"] >= 14, got
    assert not {t["id"] for t in r.json()["tracks"]} & set(skipped)
    seed = r.json()["seeds"][0]
    assert seed["type"] == "GENRE" and seed["id"] == "ambient" and seed["initialPoolSize"] > 0


def test_cold_start_gets_popular_in_genre_and_seeded_lists(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    container.recs.train()
    home = client.get("/v1/me/home", headers=me["headers"]).json()
    assert home["personalised"] is False and home["notice"]
    ids = [s["id"] for s in home["shelves"]]
    assert any(i.startswith("popular-in-") for i in ids) and "popular" in ids
    assert "made-for-you" not in ids and "recommended" not in ids
    popular_in = next(s for s in home["shelves"] if s["id"].startswith("popular-in-"))
    genre = popular_in["title"].removeprefix("Popular in ")
    assert set(_genres(world, popular_in, "items")) == {genre}

    seed = world.tracks_by_genre["Metal"][0]
    r = client.get(f"/v1/recommendations?seed_tracks={seed}&limit=10", headers=me["headers"])
    assert r.status_code == 200, r.text
    got = _genres(world, r.json())
    assert len(got) == 10 and Counter(got)["Metal"] >= 7, got
    assert seed not in {t["id"] for t in r.json()["tracks"]}


def test_before_any_model_lists_fall_back_to_popularity(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    r = client.get("/v1/recommendations?seed_genres=folk&limit=5", headers=me["headers"])
    assert r.status_code == 200, r.text
    assert set(_genres(world, r.json())) == {"Folk"} and len(r.json()["tracks"]) == 5
    home = client.get("/v1/me/home", headers=me["headers"]).json()
    assert home["model"] is None and any(s["id"] == "popular" for s in home["shelves"])


def test_fold_in_a_new_like_changes_recommendations_without_retraining(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    make_premium(container, me["user_id"])
    _give_taste(container, world, me["user_id"], "Folk")
    container.recs.train()
    before = container.recs.personal_ids(me["user_id"], limit=10)
    assert Counter(world.genre_of[t] for t in before[:10])["Folk"] >= 6  # 2 per artist, 4 Folk artists
    runs = container.recs.runs()["runs"]

    techno = world.tracks_by_genre["Techno"][:10]
    r = client.put(f"/v1/me/tracks?ids={','.join(techno)}", headers=me["headers"])
    assert r.status_code == 200, r.text
    with container.db.write() as conn:  # and plays them a lot, today
        for k in range(40):
            play(conn, me["user_id"], techno[k % 10], container.clock.now() - dt.timedelta(minutes=k + 1))
    container.recs.forget(me["user_id"])  # another process would see it when its 30 s cache ends
    after = container.recs.personal_ids(me["user_id"], limit=10)
    assert Counter(world.genre_of[t] for t in after[:10])["Techno"] >= 5, after
    assert container.recs.runs()["runs"] == runs  # no training happened


def test_a_like_through_the_api_is_seen_at_once_in_this_process(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    make_premium(container, me["user_id"])
    container.recs.train()
    assert container.recs.signals(me["user_id"]).weights == {}
    liked = world.tracks_by_genre["Hip-Hop"][:3]
    assert client.put(f"/v1/me/tracks?ids={','.join(liked)}", headers=me["headers"]).status_code == 200
    assert set(container.recs.signals(me["user_id"]).weights) == set(liked)


def test_private_uploads_of_others_are_never_recommended(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    other = listener(client, "bob@example.com")
    make_premium(container, me["user_id"])
    _give_taste(container, world, me["user_id"], "Jazz")
    jazz = world.tracks_by_genre["Jazz"]
    private_before = jazz[20]  # made private before training
    private_after = jazz[21]  # made private after training (the model still has it)
    with container.db.write() as conn:
        conn.execute(
            sa.update(tracks)
            .where(tracks.c.id == private_before)
            .values(visibility="private", owner_user_id=other["user_id"])
        )
    container.recs.train()
    with container.db.write() as conn:
        conn.execute(
            sa.update(tracks)
            .where(tracks.c.id == private_after)
            .values(visibility="private", owner_user_id=other["user_id"])
        )
    container.catalog.invalidate_track(private_after)
    seen: set[str] = set()
    for path in (
        "/v1/recommendations?seed_genres=jazz&limit=100",
        f"/v1/recommendations?seed_tracks={jazz[0]}&limit=100",
    ):
        r = client.get(path, headers=me["headers"])
        assert r.status_code == 200, r.text
        seen |= {t["id"] for t in r.json()["tracks"]}
    home = client.get("/v1/me/home", headers=me["headers"])
    assert home.status_code == 200, home.text
    for s in home.json()["shelves"]:
        seen |= {i["id"] for i in s["items"] if i.get("type") == "track"}
    radio = client.get("/v1/radio?seed=tonearm:genre:jazz&limit=50", headers=me["headers"]).json()
    seen |= {t["id"] for t in radio["items"]}
    assert len(seen) > 40
    assert private_before not in seen and private_after not in seen
    # ... and as a seed, another user's private track is as good as missing.
    r = client.get(f"/v1/recommendations?seed_tracks={private_after}", headers=me["headers"])
    assert r.status_code == 400 and "no track" in r.json()["error"]["message"]


def test_made_for_you_is_premium_and_discover_weekly_is_unheard(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    _give_taste(container, world, me["user_id"], "Techno", skip_genre="Folk")
    container.recs.train()
    r = client.get("/v1/me/made-for-you", headers=me["headers"])
    assert r.status_code == 403 and r.json()["error"]["reason"] == "premium_required"

    make_premium(container, me["user_id"])
    r = client.get("/v1/me/made-for-you", headers=me["headers"])
    assert r.status_code == 200, r.text
    names = [p["name"] for p in r.json()["items"]]
    assert "Discover Weekly" in names and any(n.startswith("Daily Mix") for n in names), names
    dw = next(p for p in r.json()["items"] if p["name"] == "Discover Weekly")
    items = client.get(f"/v1/playlists/{dw['id']}/tracks?limit=50", headers=me["headers"]).json()["items"]
    got = [i["track"]["id"] for i in items]
    heard = set(container.recs.signals(me["user_id"]).weights)
    assert len(got) == 30 and not set(got) & heard
    assert Counter(world.genre_of[t] for t in got)["Techno"] >= 8  # the unheard Techno comes first

    # Same week: asking again does not remake it; a new week does.
    again = client.get("/v1/me/made-for-you", headers=me["headers"]).json()["items"]
    assert next(p for p in again if p["id"] == dw["id"])["snapshot_id"] == dw["snapshot_id"]
    container.clock.advance(7 * 86400)  # type: ignore[attr-defined]
    assert container.recs.refresh_playlists(me["user_id"]).get("discover_weekly") == 30


def test_radio_pages_do_not_repeat(container: Container, client: TestClient, world: World) -> None:
    me = listener(client)
    container.recs.train()
    seed = world.tracks_by_genre["Ambient"][3]
    first = client.get(f"/v1/radio?seed=tonearm:track:{seed}&limit=20", headers=me["headers"]).json()
    second = client.get(first["next"].replace("http://testserver", ""), headers=me["headers"]).json()
    a = [t["id"] for t in first["items"]]
    b = [t["id"] for t in second["items"]]
    assert len(a) == 20 and len(b) == 20 and not set(a) & set(b) and seed not in a + b
    assert Counter(world.genre_of[t] for t in a)["Ambient"] >= 12
    assert all(world.artist_of[x] != world.artist_of[y] for x, y in itertools.pairwise(a))


def test_not_interested_hides_a_track(container: Container, client: TestClient, world: World) -> None:
    me = listener(client)
    container.recs.train()
    first = client.get("/v1/recommendations?seed_genres=metal&limit=5", headers=me["headers"]).json()[
        "tracks"
    ]
    gone = first[0]["id"]
    assert client.put(f"/v1/me/recommendations/hidden?ids={gone}", headers=me["headers"]).status_code == 200
    again = client.get("/v1/recommendations?seed_genres=metal&limit=50", headers=me["headers"]).json()
    assert gone not in {t["id"] for t in again["tracks"]}
    listed = client.get("/v1/me/recommendations/hidden", headers=me["headers"]).json()
    assert [i["track"]["id"] for i in listed["items"]] == [gone]
    assert (
        client.delete(f"/v1/me/recommendations/hidden?ids={gone}", headers=me["headers"]).status_code == 200
    )
    assert client.get("/v1/me/recommendations/hidden", headers=me["headers"]).json()["total"] == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "at least one seed"),
        ("seed_genres=jazz,techno,folk&seed_artists={a1},{a2},{a3}", "at most 5 seeds"),
        ("seed_genres=jazz&limit=0", "limit"),
        ("seed_genres=jazz&limit=101", "limit"),
        ("seed_genres=jazz&limit=abc", "limit"),
        ("seed_genres=polka", "unknown genre"),
        ("seed_tracks={unknown}", "no track"),
        ("seed_tracks=not-an-id", "invalid id"),
        ("seed_artists={unknown}", "no artist"),
        ("seed_genres=jazz,jazz", "twice"),
        ("seed_genres=jazz,", "empty"),
    ],
)
def test_bad_seeds_are_clear_400s(
    container: Container, client: TestClient, world: World, query: str, message: str
) -> None:
    me = listener(client)
    artists_ = sorted(set(world.artist_of.values()))
    q = query.format(a1=artists_[0], a2=artists_[1], a3=artists_[2], unknown=new_id())
    r = client.get(f"/v1/recommendations?{q}", headers=me["headers"])
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"].lower() or message in r.text


def test_radio_and_hide_bad_input(container: Container, client: TestClient, world: World) -> None:
    me = listener(client)
    for q in (
        "seed=tonearm:album:x",
        "seed=nonsense",
        f"seed=tonearm:track:{new_id()}",
        "seed=tonearm:genre:x",
    ):
        r = client.get(f"/v1/radio?{q}", headers=me["headers"])
        assert r.status_code == 400, (q, r.text)
    assert client.get("/v1/radio?seed=tonearm:genre:jazz&limit=51", headers=me["headers"]).status_code == 400
    assert (
        client.put(f"/v1/me/recommendations/hidden?ids={new_id()}", headers=me["headers"]).status_code == 404
    )
    assert client.put("/v1/me/recommendations/hidden?ids=bad", headers=me["headers"]).status_code == 400
    assert client.get("/v1/me/home").status_code == 401


def test_genre_seeds_list_genres_with_playable_tracks(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    body = client.get("/v1/recommendations/available-genre-seeds", headers=me["headers"]).json()
    assert body["genres"] == sorted(g.lower() for g in GENRES)


def test_training_is_idempotent_and_resumes_after_a_crash(container: Container, world: World) -> None:
    first = container.recs.train()
    assert first["created"] and first["status"] == "ready"
    again = container.recs.train()
    assert not again["created"] and again["id"] == first["id"]  # nothing changed: same model

    container.clock.advance(60)  # type: ignore[attr-defined]
    with container.db.write() as conn:  # new data: a new run, which we kill after two stages
        like(conn, next(iter(world.crowd)), world.tracks_by_genre["Folk"][5], container.clock.now())
    model_id, created = container.recs.trainer.start()
    assert created

    def crash(stage: str, _fraction: float) -> None:
        if stage == "als":
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        container.recs.trainer.run(model_id, crash)
    with container.db.read() as conn:
        row = conn.execute(sa.select(rec_models).where(rec_models.c.id == model_id)).one()
    assert row.status == "running" and row.stage == "als"
    with container.blobs.open(f"{row.blob_prefix}/signals.npz") as f:
        signals_blob = f.read()

    stages: list[str] = []
    resumed = container.recs.train(progress=lambda s, _f: stages.append(s))  # the retried job
    assert resumed["id"] == model_id and resumed["status"] == "ready" and not resumed["created"]
    assert "signals" not in stages and "als" in stages  # finished stages are not redone
    with container.blobs.open(f"{row.blob_prefix}/signals.npz") as f:
        assert f.read() == signals_blob
    assert container.recs.runs()["serving"] == model_id


def test_training_through_the_job_queue_and_the_admin_api(
    container: Container, client: TestClient, world: World
) -> None:
    from tests.integration.entitlements.conftest import admin

    root = admin(client, container)
    me = listener(client)
    assert client.post("/v1/admin/recs/train", headers=me["headers"]).status_code == 403
    r = client.post("/v1/admin/recs/train", headers=root["headers"])
    assert r.status_code == 202 and r.json()["status"] == "running"
    container.worker().drain()
    runs = client.get("/v1/admin/recs/runs", headers=root["headers"]).json()
    assert runs["runs"][0]["status"] == "ready" and runs["runs"][0]["stats"]["plays"] == 2400
    assert runs["serving"] == runs["runs"][0]["id"]


def test_evaluation_beats_popularity_on_planted_tastes(container: Container, world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = evaluate(container.db, test_fraction=0.2)
    assert report.test_listeners >= 40
    assert report.ours.recall >= 2 * report.popularity.recall, report.to_json()
    assert report.ours.ndcg > report.popularity.ndcg
    assert report.ours.coverage > report.popularity.coverage
    png = plot(report, tmp_path / "eval.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _tempo(c: Container) -> dict[str, float]:
    with c.db.read() as conn:
        return {r.id: r.tempo_bpm for r in conn.execute(sa.select(tracks.c.id, tracks.c.tempo_bpm))}


@pytest.mark.parametrize("trained", [True, False])
def test_tunable_tempo_filters_and_steers(
    container: Container, client: TestClient, world: World, trained: bool
) -> None:
    me = listener(client)
    if trained:
        container.recs.train()
    tempo = _tempo(container)
    r = client.get(
        "/v1/recommendations?seed_genres=jazz&min_tempo=100&max_tempo=120&limit=20", headers=me["headers"]
    )
    assert r.status_code == 200, r.text
    got = [t["id"] for t in r.json()["tracks"]]
    assert got and all(100 <= tempo[t] <= 120 for t in got)
    if trained:
        seed = r.json()["seeds"][0]
        assert 0 < seed["afterFilteringSize"] < seed["initialPoolSize"]
        r = client.get("/v1/recommendations?seed_genres=folk&target_tempo=140&limit=5", headers=me["headers"])
        assert [tempo[t["id"]] for t in r.json()["tracks"]].count(140.0) >= 4
    assert "X-Tonearm-Ignored" not in r.headers


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_tempo=abc", "must be a number"),
        ("min_tempo=130&max_tempo=100", "is above"),
        ("min_tempo=500", "between"),
        ("max_loudness=nan", "between"),
        ("min_tempo=100&min_tempo=110", "twice"),
        ("target_wobble=3", "unknown attribute"),
    ],
)
def test_bad_tunables_are_clear_400s(client: TestClient, world: World, query: str, message: str) -> None:
    me = listener(client)
    r = client.get(f"/v1/recommendations?seed_genres=jazz&{query}", headers=me["headers"])
    assert r.status_code == 400 and message in r.json()["error"]["message"], r.text


def test_attributes_tonearm_does_not_measure_are_named_as_ignored(client: TestClient, world: World) -> None:
    me = listener(client)
    r = client.get(
        "/v1/recommendations?seed_genres=jazz&target_energy=0.8&min_valence=0.2", headers=me["headers"]
    )
    assert r.status_code == 200 and len(r.json()["tracks"]) == 20
    assert r.headers["X-Tonearm-Ignored"] == "min_valence,target_energy"


def test_follows_alone_give_a_new_listener_a_taste(
    container: Container, client: TestClient, world: World
) -> None:
    me = listener(client)
    make_premium(container, me["user_id"])
    container.recs.train()
    metal_artists = sorted({world.artist_of[t] for t in world.tracks_by_genre["Metal"]})[:2]
    r = client.put(f"/v1/me/following?type=artist&ids={','.join(metal_artists)}", headers=me["headers"])
    assert r.status_code == 204, r.text
    home = client.get("/v1/me/home", headers=me["headers"]).json()
    assert home["personalised"] is True
    shelves = {s["id"]: s for s in home["shelves"]}
    picks = _genres(world, shelves["recommended"], "items")
    assert Counter(picks)["Metal"] >= 0.5 * len(picks), picks
    assert "made-for-you" in shelves  # a Discover Weekly from follows alone


def test_two_requests_making_the_same_generated_playlist_leave_one(
    container: Container, client: TestClient, world: World
) -> None:
    """Two home requests (or one and the playlists job) both find no Discover Weekly and both
    make one: (owner, generator) is unique, the second writer backs off and deletes its copy."""
    me = listener(client)
    make_premium(container, me["user_id"])
    _give_taste(container, world, me["user_id"], "Jazz")
    container.recs.train()
    ids = world.tracks_by_genre["Jazz"][12:20]
    for _ in range(2):  # both saw `existing` empty
        container.recs._write_generated(me["user_id"], "discover_weekly", "Discover Weekly", "d", ids, {})
    mine = client.get("/v1/me/playlists?limit=50", headers=me["headers"]).json()["items"]
    assert [p["name"] for p in mine] == ["Discover Weekly"] and mine[0]["tracks"]["total"] == 8
