"""The catalog in the Spotify Web API's shapes, read by our client and by spotipy's object model."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.helpers import make_tone
from tonearm.bootstrap import Container
from tonearm.kernel.ids import is_valid_id

TRACK_FIELDS = {
    "album",
    "artists",
    "available_markets",
    "disc_number",
    "duration_ms",
    "explicit",
    "external_ids",
    "external_urls",
    "href",
    "id",
    "is_local",
    "is_playable",
    "name",
    "popularity",
    "preview_url",
    "track_number",
    "type",
    "uri",
}
ALBUM_FIELDS = {
    "album_type",
    "artists",
    "available_markets",
    "external_urls",
    "href",
    "id",
    "images",
    "name",
    "release_date",
    "release_date_precision",
    "total_tracks",
    "type",
    "uri",
}
PAGING = {"href", "items", "limit", "next", "offset", "previous", "total"}


def seed(container: Container, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(5):
        make_tone(
            root / f"{i}.mp3",
            seconds=1,
            freq=200 + 40 * i,
            tags={
                "title": f"Track {i}",
                "artist": "Orbit",
                "album_artist": "Orbit",
                "album": "Moons",
                "track": str(i + 1),
                "genre": "Electronic",
                "date": "2020-02",
                "TSRC": f"ZZTNA2000{i:03d}",
            },
        )
    make_tone(
        root / "other.mp3",
        seconds=1,
        tags={"title": "Guest", "artist": "Orbit", "album_artist": "Various", "album": "Mix"},
    )
    assert container.importer.run(root, transcode=False, workers=1).imported == 6


def test_track_album_artist_shapes_and_paging(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    seed(container, tmp_path)
    releases = client.get("/v1/browse/new-releases").json()["albums"]
    assert set(releases) == PAGING and releases["total"] == 2
    moons = next(a for a in releases["items"] if a["name"] == "Moons")
    assert (
        set(moons) >= ALBUM_FIELDS
        and moons["total_tracks"] == 5
        and moons["release_date_precision"] == "month"
    )
    page1 = client.get(f"/v1/albums/{moons['id']}/tracks?limit=2&offset=0").json()
    assert set(page1) == PAGING and page1["total"] == 5 and len(page1["items"]) == 2
    assert page1["next"].endswith("offset=2&limit=2") and page1["previous"] is None
    last = client.get(f"/v1/albums/{moons['id']}/tracks?limit=2&offset=4").json()
    assert last["next"] is None and [t["track_number"] for t in last["items"]] == [5]
    track = client.get(f"/v1/tracks/{page1['items'][0]['id']}").json()
    assert (
        set(track) == TRACK_FIELDS
        and is_valid_id(track["id"])
        and track["uri"] == f"tonearm:track:{track['id']}"
    )
    assert (
        track["external_ids"] == {"isrc": "ZZTNA2000000"}
        and track["href"] == f"http://testserver/v1/tracks/{track['id']}"
    )
    several = client.get(f"/v1/tracks?ids={track['id']},{'0' * 22}").json()["tracks"]
    assert several[0]["id"] == track["id"] and several[1] is None
    artist_id = track["artists"][0]["id"]
    artist = client.get(f"/v1/artists/{artist_id}").json()
    assert artist["name"] == "Orbit" and artist["genres"] == ["electronic"] and artist["images"]
    assert artist["followers"] == {"href": None, "total": 0}
    albums = client.get(f"/v1/artists/{artist_id}/albums").json()
    assert {a["name"] for a in albums["items"]} == {"Moons", "Mix"}  # Mix via appears_on
    own = client.get(f"/v1/artists/{artist_id}/albums?include_groups=album").json()
    assert [a["name"] for a in own["items"]] == ["Moons"]
    top = client.get(f"/v1/artists/{artist_id}/top-tracks").json()["tracks"]
    assert len(top) == 6
    genres = client.get("/v1/genres").json()["genres"]
    assert {"name": "Electronic", "slug": "electronic", "tracks": 5} in genres


def test_catalog_bad_input(client: TestClient) -> None:
    for path in ("/v1/tracks/short", "/v1/albums/..%2F..%2Fetc", "/v1/artists/%00" + "a" * 21):
        r = client.get(path)
        assert r.status_code in (400, 404), path
        assert "error" in r.json()
    assert client.get("/v1/tracks/" + "Z" * 22).status_code == 404
    assert client.get("/v1/tracks?ids=").json()["error"]["status"] == 400
    assert (
        "between 1 and 50"
        in client.get("/v1/tracks?ids=" + ",".join(["a" * 22] * 51)).json()["error"]["message"]
    )
    for path, most in (("/v1/albums", 20), ("/v1/artists", 50)):
        assert client.get(f"{path}?ids=").json()["error"]["status"] == 400
        too_many = client.get(f"{path}?ids=" + ",".join(["a" * 22] * (most + 1))).json()
        assert f"between 1 and {most}" in too_many["error"]["message"]
        assert client.get(f"{path}?ids=short").json()["error"]["status"] == 400
        assert client.get(f"{path}?ids=" + "Z" * 22).json() == {path.split("/")[-1]: [None]}
    assert (
        client.get("/v1/browse/new-releases?limit=0").json()["error"]["message"]
        == "limit: must be between 1 and 50"
    )
    assert client.get("/v1/browse/new-releases?limit=abc").status_code == 400
    assert client.get("/v1/artists/" + "a" * 22 + "/albums?include_groups=bogus").status_code in (400, 404)
