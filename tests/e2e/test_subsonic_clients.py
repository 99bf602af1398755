"""Real Subsonic client libraries from PyPI against a live server, as black boxes.

* `py-sonic` (`libsonic`): form POSTs, `f=json`, `v=1.16.1`, and Subsonic's token scheme
  (`t = md5(password + salt)`, `s`), here with the listener's app password;
* `py-opensonic` (`libopensonic`): form POSTs through aiohttp, with an OpenSubsonic API key
  (`apiKey`), and answers parsed into its own dataclasses (so a missing required field fails).

Each client runs the same session, step by step (one test per step, so a report says which steps
work with which client): ping, folders, indexes and artists, an artist, an album, search3 paging
through every song, stream with a byte range, star / getStarred2 / unstar, scrobble (seen in the
listener's history; streaming alone never counts), playlists, and the play queue.

Both clients act for the same listener, so every step leaves the state as it found it (or uses
its own track). What the server should answer is read from Tonearm's own REST API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import libopensonic
import libsonic
import pytest

from tests.e2e.webapp import serve_demo

pytestmark = pytest.mark.slow

EMAIL, PASSWORD = "b@example.com", "browser pw"  # serve_demo's listener
TRACKS = 3


# The server, its listener's credentials, and what the catalog holds ---------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with serve_demo(tmp_path_factory.mktemp("subsonic"), tracks=TRACKS, seconds=4) as base:
        r = httpx.post(
            f"{base}/api/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        )
        r.raise_for_status()
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        key = httpx.post(f"{base}/v1/me/api-keys", json={"name": "py-opensonic"}, headers=bearer)
        assert key.status_code == 201, key.text
        app = httpx.post(f"{base}/v1/me/app-password", headers=bearer)
        assert app.status_code == 201, app.text
        assert app.json()["username"] == EMAIL
        releases = httpx.get(f"{base}/v1/browse/new-releases?limit=50", headers=bearer).json()
        album_id = next(a["id"] for a in releases["albums"]["items"] if a["name"] == "Chromium Nights")
        album = httpx.get(f"{base}/v1/albums/{album_id}", headers=bearer).json()
        yield {
            "base": base,
            "bearer": bearer,
            "api_key": key.json()["key"],
            "app_password": app.json()["app_password"],
            "album_id": album_id,
            "artist_id": album["artists"][0]["id"],
            "track_ids": [t["id"] for t in album["tracks"]["items"]],
            "titles": [t["name"] for t in album["tracks"]["items"]],
        }


# One adapter per client: the same calls, answers as plain JSON-shaped dicts -------------------------


class Stream:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, {k.lower(): v for k, v in headers.items()}, body


class PySonic:
    """py-sonic 1.x: every method returns the whole `subsonic-response` dict (or raises)."""

    name = "py-sonic"

    def __init__(self, base: str, username: str, app_password: str) -> None:
        host, port = base.rsplit(":", 1)
        self.args = {"baseUrl": host, "username": username, "password": app_password, "port": int(port)}
        self.conn = libsonic.Connection(**self.args, appName=self.name)

    def close(self) -> None:
        pass

    def auth(self) -> dict[str, str]:
        """The parameters this client signs a request with (its own code makes them)."""
        return {k: str(v) for k, v in self.conn._getBaseQdict().items()}

    def ping(self) -> bool:
        return bool(self.conn.ping())

    def music_folders(self) -> list[dict[str, Any]]:
        return list(self.conn.getMusicFolders()["musicFolders"]["musicFolder"])

    def indexes(self) -> dict[str, Any]:
        return dict(self.conn.getIndexes()["indexes"])

    def artists(self) -> dict[str, Any]:
        return dict(self.conn.getArtists()["artists"])

    def artist(self, artist_id: str) -> dict[str, Any]:
        return dict(self.conn.getArtist(artist_id)["artist"])

    def album(self, album_id: str) -> dict[str, Any]:
        return dict(self.conn.getAlbum(album_id)["album"])

    def search3(self, query: str, **counts: int) -> dict[str, Any]:
        return dict(self.conn.search3(query, **counts)["searchResult3"])

    def stream(self, track_id: str, byte_range: str | None = None) -> Stream:
        # py-sonic has no Range argument, but sends its custom headers with every request.
        conn = (
            libsonic.Connection(**self.args, appName=self.name, customHeaders={"Range": byte_range})
            if byte_range
            else self.conn
        )
        res = conn.stream(track_id)
        assert not isinstance(res, dict), res  # a dict is a Subsonic error in place of audio
        return Stream(res.status, dict(res.headers), res.read())

    def star(self, song: str, album: str, artist: str) -> None:
        self.conn.star(sids=[song], albumIds=[album], artistIds=[artist])

    def unstar(self, song: str, album: str, artist: str) -> None:
        self.conn.unstar(sids=[song], albumIds=[album], artistIds=[artist])

    def starred2(self) -> dict[str, Any]:
        return dict(self.conn.getStarred2()["starred2"])

    def scrobble(self, track_id: str) -> None:
        self.conn.scrobble(track_id, submission=True, listenTime=time.time())

    def create_playlist(self, name: str, song_ids: list[str]) -> None:
        self.conn.createPlaylist(name=name, songIds=song_ids)

    def playlists(self) -> list[dict[str, Any]]:
        return list(self.conn.getPlaylists()["playlists"].get("playlist", []))

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        return dict(self.conn.getPlaylist(playlist_id)["playlist"])

    def update_playlist(self, playlist_id: str, add: list[str], remove: list[int]) -> None:
        self.conn.updatePlaylist(playlist_id, songIdsToAdd=add, songIndexesToRemove=remove)

    def delete_playlist(self, playlist_id: str) -> None:
        self.conn.deletePlaylist(playlist_id)

    def save_play_queue(self, ids: list[str], current: str, position: int) -> None:
        self.conn.savePlayQueue(ids, current=current, position=position)

    def play_queue(self) -> dict[str, Any]:
        return dict(self.conn.getPlayQueue()["playQueue"])


class PyOpenSonic:
    """py-opensonic 10.x: answers parsed into its dataclasses, turned back into dicts here."""

    name = "py-opensonic"

    def __init__(self, base: str, api_key: str) -> None:
        host, port = base.rsplit(":", 1)
        self.conn = libopensonic.Connection(host, api_key=api_key, port=int(port), app_name=self.name)

    def close(self) -> None:
        self.conn.cleanup()  # closes the aiohttp session and stops the client's private loop...
        self.conn._loop.close()  # ...which it leaves open

    def _raw(self, method: str) -> dict[str, Any]:
        """A call through the client's own transport and auth, skipping its answer parsing."""
        aconn = self.conn._async

        async def go() -> dict[str, Any]:
            return dict(await aconn._handle_info_res(await aconn._do_request(method)))

        return asyncio.run_coroutine_threadsafe(go(), self.conn._loop).result()

    def auth(self) -> dict[str, str]:
        """The parameters this client signs a request with (its own code makes them)."""
        return {k: str(v) for k, v in self.conn._async._get_base_qdict().items()}

    def ping(self) -> bool:
        return bool(self.conn.ping())

    def username(self) -> str:
        return str(self.conn.token_info().username)

    def extensions(self) -> dict[str, list[int]]:
        return {e.name: list(e.versions) for e in self.conn.get_open_subsonic_extensions()}

    def music_folders(self) -> list[dict[str, Any]]:
        # py-opensonic 10.4 iterates `musicFolders` itself (a dict: {"musicFolder": [...]}), so its
        # get_music_folders() fails against any server that follows the spec; read the answer here.
        return list(self._raw("getMusicFolders")["musicFolders"]["musicFolder"])

    def indexes(self) -> dict[str, Any]:
        return self.conn.get_indexes().to_dict()  # type: ignore[no-any-return]

    def artists(self) -> dict[str, Any]:
        return self.conn.get_artists().to_dict()  # type: ignore[no-any-return]

    def artist(self, artist_id: str) -> dict[str, Any]:
        return self.conn.get_artist(artist_id).to_dict()  # type: ignore[no-any-return]

    def album(self, album_id: str) -> dict[str, Any]:
        return self.conn.get_album(album_id).to_dict()  # type: ignore[no-any-return]

    def search3(self, query: str, **counts: int) -> dict[str, Any]:
        names = {
            "artistCount": "artist_count",
            "albumCount": "album_count",
            "songCount": "song_count",
            "songOffset": "song_offset",
        }
        return self.conn.search3(query, **{names[k]: v for k, v in counts.items()}).to_dict()  # type: ignore[no-any-return]

    def stream(self, track_id: str, byte_range: str | None = None) -> Stream:
        res = self.conn.stream(track_id, byte_range=byte_range)
        body = asyncio.run_coroutine_threadsafe(res.read(), self.conn._loop).result()
        return Stream(res.status, dict(res.headers), body)

    def star(self, song: str, album: str, artist: str) -> None:
        self.conn.star(sids=[song], album_ids=[album], artist_ids=[artist])

    def unstar(self, song: str, album: str, artist: str) -> None:
        self.conn.unstar(sids=[song], album_ids=[album], artist_ids=[artist])

    def starred2(self) -> dict[str, Any]:
        return self.conn.get_starred2().to_dict()  # type: ignore[no-any-return]

    def scrobble(self, track_id: str) -> None:
        self.conn.scrobble(track_id, submission=True, listen_time=int(time.time()))

    def create_playlist(self, name: str, song_ids: list[str]) -> None:
        self.conn.create_playlist(name=name, song_ids=song_ids)

    def playlists(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.conn.get_playlists()]

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        return self.conn.get_playlist(playlist_id).to_dict()  # type: ignore[no-any-return]

    def update_playlist(self, playlist_id: str, add: list[str], remove: list[int]) -> None:
        self.conn.update_playlist(playlist_id, song_ids_to_add=add, song_indices_to_remove=remove)

    def delete_playlist(self, playlist_id: str) -> None:
        self.conn.delete_playlist(playlist_id)

    def save_play_queue(self, ids: list[str], current: str, position: int) -> None:
        self.conn.save_play_queue(ids, current=current, position=position)

    def play_queue(self) -> dict[str, Any]:
        return self.conn.get_play_queue().to_dict()  # type: ignore[no-any-return]


Client = PySonic | PyOpenSonic


@pytest.fixture(scope="module", params=["py-sonic", "py-opensonic"])
def client(request: pytest.FixtureRequest, server: dict[str, Any]) -> Iterator[Client]:
    made: Client = (
        PySonic(server["base"], EMAIL, server["app_password"])
        if request.param == "py-sonic"
        else PyOpenSonic(server["base"], server["api_key"])
    )
    yield made
    made.close()


def _own_track(client: Client, server: dict[str, Any]) -> str:
    """A track only this client scrobbles (the first is the one both only stream)."""
    return str(server["track_ids"][1 if client.name == "py-sonic" else 2])


# The session ----------------------------------------------------------------------------------------


def test_ping(client: Client) -> None:
    assert client.ping() is True


def test_who_and_what_the_server_supports(server: dict[str, Any]) -> None:
    """OpenSubsonic's own methods, which only py-opensonic has."""
    client = PyOpenSonic(server["base"], server["api_key"])
    try:
        assert client.username() == EMAIL  # tokenInfo: the key's owner
        extensions = client.extensions()
        assert extensions["apiKeyAuthentication"] == [1]
        assert extensions["formPost"] == [1]
    finally:
        client.close()


def test_music_folders(client: Client) -> None:
    folders = client.music_folders()
    assert len(folders) >= 1
    assert all(f["id"] is not None and f.get("name") for f in folders)


def test_indexes_and_artists(client: Client, server: dict[str, Any]) -> None:
    for listing in (client.indexes(), client.artists()):
        found = [a for i in listing["index"] for a in i.get("artist", []) if a["name"] == "Headless"]
        assert [a["id"] for a in found] == [server["artist_id"]]
        letter = next(i["name"] for i in listing["index"] if found[0] in i.get("artist", []))
        assert letter == "H"
    assert client.artists()["ignoredArticles"] is not None


def test_artist(client: Client, server: dict[str, Any]) -> None:
    artist = client.artist(server["artist_id"])
    assert artist["name"] == "Headless"
    assert artist["albumCount"] == 1
    assert [a["id"] for a in artist["album"]] == [server["album_id"]]
    assert artist["album"][0]["name"] == "Chromium Nights"
    assert artist["album"][0]["songCount"] == TRACKS


def test_album(client: Client, server: dict[str, Any]) -> None:
    album = client.album(server["album_id"])
    assert album["name"] == "Chromium Nights"
    assert album["artist"] == "Headless" and album["artistId"] == server["artist_id"]
    assert album["songCount"] == TRACKS
    songs = album["song"]
    assert [s["id"] for s in songs] == server["track_ids"]
    assert [s["title"] for s in songs] == server["titles"] == [f"Browser Song {i}" for i in range(TRACKS)]
    assert [s["track"] for s in songs] == list(range(1, TRACKS + 1))
    assert all(3 <= s["duration"] <= 5 for s in songs)  # 4 s tones, in whole seconds
    assert abs(album["duration"] - sum(s["duration"] for s in songs)) <= TRACKS


def test_search3_pages_through_every_song_once(client: Client, server: dict[str, Any]) -> None:
    seen: list[str] = []
    for offset in range(TRACKS + 2):
        page = client.search3("", artistCount=0, albumCount=0, songCount=1, songOffset=offset)
        songs = page.get("song") or []
        assert len(songs) <= 1
        assert not page.get("artist") and not page.get("album")
        if not songs:
            break
        seen.append(songs[0]["id"])
    assert sorted(seen) == sorted(server["track_ids"])  # each exactly once, then an empty page


def test_stream_with_a_byte_range(client: Client, server: dict[str, Any]) -> None:
    track = server["track_ids"][0]
    full = client.stream(track)
    assert full.status == 200
    assert full.headers["content-type"].startswith("audio/")
    assert len(full.body) > 2000
    # A GET with the client's own credentials: the plain HTTP case.
    got = httpx.get(
        f"{server['base']}/rest/stream",
        params={**client.auth(), "id": track},
        headers={"Range": "bytes=1000-1999"},
    )
    assert got.status_code == 206, got.headers
    assert got.content == full.body[1000:2000]
    # What the client itself sends: a form POST (both libraries' default, the formPost extension)
    # with a Range header.
    part = client.stream(track, byte_range="bytes=1000-1999")
    assert part.status == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(full.body)}"
    assert part.body == full.body[1000:2000]
    tail = client.stream(track, byte_range="bytes=-100")
    assert tail.status == 206 and tail.body == full.body[-100:]


def test_star_and_starred2(client: Client, server: dict[str, Any]) -> None:
    song, album, artist = server["track_ids"][0], server["album_id"], server["artist_id"]
    client.star(song, album, artist)
    starred = client.starred2()
    assert [s["id"] for s in starred.get("song", [])] == [song]
    assert [a["id"] for a in starred.get("album", [])] == [album]
    assert [a["id"] for a in starred.get("artist", [])] == [artist]
    assert starred["song"][0]["starred"]  # when, as an ISO date
    # The same likes, saves and follows as the web app's.
    liked = httpx.get(f"{server['base']}/v1/me/tracks/contains?ids={song}", headers=server["bearer"])
    assert liked.json() == [True]
    client.unstar(song, album, artist)
    starred = client.starred2()
    assert not starred.get("song") and not starred.get("album") and not starred.get("artist")


def _recent(server: dict[str, Any]) -> list[str]:
    r = httpx.get(f"{server['base']}/v1/me/player/recently-played?limit=50", headers=server["bearer"])
    r.raise_for_status()
    return [i["track"]["id"] for i in r.json()["items"]]


def test_scrobble_counts_a_play_and_streaming_does_not(client: Client, server: dict[str, Any]) -> None:
    mine = _own_track(client, server)
    client.scrobble(mine)
    deadline = time.monotonic() + 10
    while mine not in _recent(server) and time.monotonic() < deadline:
        time.sleep(0.3)
    recent = _recent(server)
    assert recent.count(mine) == 1
    assert server["track_ids"][0] not in recent  # streamed by both clients, never scrobbled


def test_playlists(client: Client, server: dict[str, Any]) -> None:
    t0, t1, t2 = server["track_ids"]
    name = f"Made by {client.name}"
    client.create_playlist(name, [t0, t1])
    made = [p for p in client.playlists() if p["name"] == name]
    assert len(made) == 1 and made[0]["songCount"] == 2
    pid = made[0]["id"]
    got = client.playlist(pid)
    assert [e["id"] for e in got["entry"]] == [t0, t1]
    assert got["owner"] == EMAIL
    client.update_playlist(pid, add=[t2], remove=[0])
    assert [e["id"] for e in client.playlist(pid)["entry"]] == [t1, t2]
    client.delete_playlist(pid)
    assert not [p for p in client.playlists() if p["id"] == pid]


def test_play_queue(client: Client, server: dict[str, Any]) -> None:
    t0, t1, t2 = server["track_ids"]
    client.save_play_queue([t2, t0, t1], current=t0, position=1500)
    queue = client.play_queue()
    assert [e["id"] for e in queue["entry"]] == [t2, t0, t1]
    assert queue["current"] == t0
    assert queue["position"] == 1500
    assert queue["changedBy"] == client.name
    assert queue["username"] == EMAIL
