"""Spotify Web API compatibility, checked: a pinned spotipy release (pyproject.toml says why) pointed
at a live server's /v1/ calls every route of ours that it has a method for, and the answers are
checked by content, not just by status.

Coverage is written down so that it cannot rot silently:

* `SPOTIPY_ROUTES`: each of our /v1 routes that spotipy reaches, with the methods that reach it;
* `NO_SPOTIPY_METHOD`: our /v1 routes spotipy has no method for, and why;
* `NOT_IMPLEMENTED`: spotipy methods whose Spotify endpoint Tonearm lacks or refuses, and why (each
  is called, and must fail with a clear Spotify-shaped error, not a 500);
* `BROKEN_IN_SPOTIPY`: spotipy methods that fail inside spotipy itself, before any request;
* `HELPERS`: spotipy methods that send nothing.

A new /v1 route, or a spotipy bump bringing a method, fails a test until it is placed in one of
them; the last test checks that the server answered every listed route (its own request metrics)
and that every listed spotipy method was called.
"""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import io
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import spotipy
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from PIL import Image
from prometheus_client import REGISTRY
from starlette.routing import BaseRoute

from tests.integration.api.test_catalog import ALBUM_FIELDS, PAGING, TRACK_FIELDS
from tests.integration.api.test_search_api import Seeded, seed
from tests.premium import make_premium
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.config import Settings
from tonearm.domains.catalog.tables import image_variants
from tonearm.http.app import create_app
from tonearm.kernel.ids import new_id

pytestmark = pytest.mark.slow

# (HTTP method, route template) -> the spotipy methods that reach it (each is called below).
SPOTIPY_ROUTES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/v1/tracks/{track_id}"): ("track",),
    ("GET", "/v1/tracks"): ("tracks",),  # spotipy asks for /v1/tracks/?ids=: a 307 to here
    ("GET", "/v1/albums"): ("albums",),  # spotipy asks for /v1/albums/?ids=: a 307 to here
    ("GET", "/v1/albums/{album_id}"): ("album",),
    ("GET", "/v1/albums/{album_id}/tracks"): ("album_tracks",),  # also asked with a trailing slash
    ("GET", "/v1/artists"): ("artists",),  # likewise /v1/artists/?ids=
    ("GET", "/v1/artists/{artist_id}"): ("artist",),
    ("GET", "/v1/artists/{artist_id}/albums"): ("artist_albums",),
    ("GET", "/v1/artists/{artist_id}/top-tracks"): ("artist_top_tracks",),
    ("GET", "/v1/browse/new-releases"): ("new_releases",),
    ("GET", "/v1/recommendations"): ("recommendations",),
    ("GET", "/v1/recommendations/available-genre-seeds"): ("recommendation_genre_seeds",),
    ("GET", "/v1/search"): ("search", "search_markets", "next", "previous"),
    ("GET", "/v1/me"): ("me", "current_user"),  # spotipy asks for /v1/me/: a 307 to here
    ("GET", "/v1/users/{user_id}"): ("user",),
    ("GET", "/v1/me/tracks"): ("current_user_saved_tracks",),
    ("GET", "/v1/me/albums"): ("current_user_saved_albums",),
    ("GET", "/v1/me/following"): ("current_user_followed_artists",),
    ("PUT", "/v1/me/library"): (
        "current_user_saved_tracks_add",
        "current_user_saved_albums_add",
        "user_follow_artists",
    ),
    ("DELETE", "/v1/me/library"): (
        "current_user_saved_tracks_delete",
        "current_user_saved_albums_delete",
        "user_unfollow_artists",
    ),
    ("GET", "/v1/me/library/contains"): (
        "current_user_saved_tracks_contains",
        "current_user_saved_albums_contains",
        "current_user_following_artists",
        "current_user_saved_items",
    ),
    ("GET", "/v1/me/top/{type}"): ("current_user_top_tracks", "current_user_top_artists"),
    ("GET", "/v1/me/player/recently-played"): ("current_user_recently_played",),
    ("GET", "/v1/me/player"): ("current_playback",),
    ("GET", "/v1/me/player/currently-playing"): ("currently_playing", "current_user_playing_track"),
    ("PUT", "/v1/me/player/play"): ("start_playback",),
    ("PUT", "/v1/me/player/pause"): ("pause_playback",),
    ("POST", "/v1/me/player/next"): ("next_track",),
    ("POST", "/v1/me/player/previous"): ("previous_track",),
    ("PUT", "/v1/me/player/seek"): ("seek_track",),
    ("PUT", "/v1/me/player/repeat"): ("repeat",),
    ("PUT", "/v1/me/player/shuffle"): ("shuffle",),
    ("GET", "/v1/me/player/queue"): ("queue",),
    ("POST", "/v1/me/player/queue"): ("add_to_queue",),
    ("GET", "/v1/me/playlists"): ("current_user_playlists",),
    ("POST", "/v1/me/playlists"): ("current_user_playlist_create",),
    ("GET", "/v1/users/{user_id}/playlists"): ("user_playlists",),
    ("POST", "/v1/users/{user_id}/playlists"): ("user_playlist_create",),
    ("GET", "/v1/playlists/{playlist_id}"): ("playlist", "user_playlist"),
    ("PUT", "/v1/playlists/{playlist_id}"): ("playlist_change_details", "user_playlist_change_details"),
    ("GET", "/v1/playlists/{playlist_id}/items"): (
        "playlist_items",
        "playlist_tracks",
        "user_playlist_tracks",
    ),
    ("POST", "/v1/playlists/{playlist_id}/items"): ("playlist_add_items", "user_playlist_add_tracks"),
    ("PUT", "/v1/playlists/{playlist_id}/items"): (
        "playlist_reorder_items",
        "playlist_replace_items",
        "user_playlist_reorder_tracks",
        "user_playlist_replace_tracks",
    ),
    ("DELETE", "/v1/playlists/{playlist_id}/items"): (
        "playlist_remove_all_occurrences_of_items",
        "playlist_remove_specific_occurrences_of_items",
        "user_playlist_remove_all_occurrences_of_tracks",
    ),
    ("GET", "/v1/playlists/{playlist_id}/images"): ("playlist_cover_image",),
    ("PUT", "/v1/playlists/{playlist_id}/images"): ("playlist_upload_cover_image",),
    ("DELETE", "/v1/playlists/{playlist_id}/followers"): (
        "current_user_unfollow_playlist",
        "user_playlist_unfollow",
    ),
}

_OLD_LIBRARY = (
    "Spotify's per-type library path; spotipy 2.26 sends /v1/me/library?uris= instead "
    "(older clients still call it: tests/integration/api/test_library.py and test_follows.py)"
)
_OLD_PLAYLIST = "Spotify's older playlist path; spotipy 2.26 sends /items (test_playlists.py covers it)"
_TRAILING = "the trailing-slash twin older spotipy releases sent"
_BILLING = "plans and payments: not part of Spotify's Web API"
_DEVICES = "offline devices and download licences: not part of Spotify's Web API"
_ADMIN = "administration: not part of Spotify's Web API"
_CREDENTIALS = "app passwords and API keys (for clients that cannot do OAuth): not in Spotify's Web API"

# Our /v1 routes that spotipy has no method for -> why.
NO_SPOTIPY_METHOD: dict[tuple[str, str], str] = {
    ("GET", "/v1/admin/ads"): _ADMIN,
    ("POST", "/v1/admin/ads"): _ADMIN,
    ("GET", "/v1/admin/ads/{ad_id}"): _ADMIN,
    ("PATCH", "/v1/admin/ads/{ad_id}"): _ADMIN,
    ("DELETE", "/v1/admin/ads/{ad_id}"): _ADMIN,
    ("GET", "/v1/admin/recs/runs"): _ADMIN,
    ("POST", "/v1/admin/recs/train"): _ADMIN,
    ("GET", "/v1/admin/users/{user_id}/entitlements/log"): _ADMIN,
    ("POST", "/v1/billing/sandbox/cards"): _BILLING,
    ("POST", "/v1/billing/webhooks/{gateway}"): _BILLING,
    ("GET", "/v1/plans"): _BILLING,
    ("GET", "/v1/invitations/{code}"): _BILLING,
    ("POST", "/v1/invitations/{code}/accept"): _BILLING,
    ("GET", "/v1/me/invitations"): _BILLING,
    ("POST", "/v1/me/invitations/{invitation_id}/accept"): _BILLING,
    ("GET", "/v1/me/invoices"): _BILLING,
    ("GET", "/v1/me/invoices/{invoice_id}"): _BILLING,
    ("GET", "/v1/me/subscription"): _BILLING,
    ("POST", "/v1/me/subscription"): _BILLING,
    ("PATCH", "/v1/me/subscription"): _BILLING,
    ("DELETE", "/v1/me/subscription"): _BILLING,
    ("GET", "/v1/me/subscription/invitations"): _BILLING,
    ("POST", "/v1/me/subscription/invitations"): _BILLING,
    ("DELETE", "/v1/me/subscription/invitations/{invitation_id}"): _BILLING,
    ("DELETE", "/v1/me/subscription/members/{member_id}"): _BILLING,
    ("DELETE", "/v1/me/subscription/membership"): _BILLING,
    ("GET", "/v1/me/app-password"): _CREDENTIALS,
    ("POST", "/v1/me/app-password"): _CREDENTIALS,
    ("DELETE", "/v1/me/app-password"): _CREDENTIALS,
    ("GET", "/v1/me/api-keys"): _CREDENTIALS,
    ("POST", "/v1/me/api-keys"): _CREDENTIALS,
    ("DELETE", "/v1/me/api-keys/{key_id}"): _CREDENTIALS,
    ("POST", "/v1/me/ads/{impression_id}/complete"): "ads on the free plan: not in Spotify's Web API",
    ("GET", "/v1/me/entitlements"): "what the plan allows: not in Spotify's Web API",
    ("GET", "/v1/me/entitlements/log"): "what the plan allowed: not in Spotify's Web API",
    ("GET", "/v1/me/devices"): _DEVICES,
    ("POST", "/v1/me/devices"): _DEVICES,
    ("PATCH", "/v1/me/devices/{device_id}"): _DEVICES,
    ("DELETE", "/v1/me/devices/{device_id}"): _DEVICES,
    ("GET", "/v1/me/devices/{device_id}/downloads"): _DEVICES,
    ("POST", "/v1/me/devices/{device_id}/downloads"): _DEVICES,
    ("DELETE", "/v1/me/devices/{device_id}/downloads"): _DEVICES,
    ("POST", "/v1/me/devices/{device_id}/licences/renew"): _DEVICES,
    ("POST", "/v1/users"): "sign-up: Spotify's Web API has no account creation",
    ("DELETE", "/v1/me"): "account deletion: not in Spotify's Web API",
    ("PUT", "/v1/me/password"): "password change: not in Spotify's Web API",
    ("POST", "/v1/me/exports"): "data export (privacy): not in Spotify's Web API",
    ("GET", "/v1/me/exports/{export_id}"): "data export (privacy): not in Spotify's Web API",
    ("GET", "/v1/me/uploads"): "uploads: Spotify's catalog is read-only through its API",
    ("POST", "/v1/me/uploads"): "uploads: Spotify's catalog is read-only through its API",
    ("GET", "/v1/me/uploads/{upload_id}"): "uploads: Spotify's catalog is read-only through its API",
    ("PATCH", "/v1/tracks/{track_id}"): "editing one's upload: Spotify's catalog is read-only",
    ("DELETE", "/v1/tracks/{track_id}"): "deleting one's upload: Spotify's catalog is read-only",
    ("GET", "/v1/tracks/{track_id}/playback"): "playback grants: Spotify's Web API does not stream audio",
    ("POST", "/v1/me/player/events"): "playback events (what feeds history); used below to set it up",
    ("GET", "/v1/me/stats/{year}"): "the year in music: not in Spotify's Web API",
    ("GET", "/v1/me/feed/releases"): "the release feed: not in Spotify's Web API",
    ("GET", "/v1/me/home"): "the home feed: not in Spotify's Web API",
    ("GET", "/v1/me/made-for-you"): "Discover Weekly and Daily Mixes: not in Spotify's Web API",
    ("GET", "/v1/radio"): "endless radio: not in Spotify's Web API",
    ("GET", "/v1/me/recommendations/hidden"): "'not interested': not in Spotify's Web API",
    ("PUT", "/v1/me/recommendations/hidden"): "'not interested': not in Spotify's Web API",
    ("DELETE", "/v1/me/recommendations/hidden"): "'not interested': not in Spotify's Web API",
    ("GET", "/v1/search/suggest"): "search-as-you-type: not in Spotify's Web API",
    ("GET", "/v1/genres"): "genres with names: spotipy has only the seed slugs (available-genre-seeds)",
    ("GET", "/v1/resolve"): "share links: not in Spotify's Web API",
    ("GET", "/v1/me/shares"): "share links: not in Spotify's Web API",
    ("POST", "/v1/me/shares"): "share links: not in Spotify's Web API",
    ("GET", "/v1/me/shares/{code}"): "share links: not in Spotify's Web API",
    ("PATCH", "/v1/me/shares/{code}"): "share links: not in Spotify's Web API",
    ("DELETE", "/v1/me/shares/{code}"): "share links: not in Spotify's Web API",
    ("GET", "/v1/playlists/{playlist_id}/collaborators"): "collaborators: Spotify has no API for them",
    ("POST", "/v1/playlists/{playlist_id}/collaborators"): "collaborators: Spotify has no API for them",
    ("DELETE", "/v1/playlists/{playlist_id}/collaborators/{user_id}"): "collaborators: no Spotify API",
    ("GET", "/v1/playlists/{playlist_id}/tracks"): _OLD_PLAYLIST,
    ("POST", "/v1/playlists/{playlist_id}/tracks"): _OLD_PLAYLIST,
    ("PUT", "/v1/playlists/{playlist_id}/tracks"): _OLD_PLAYLIST,
    ("DELETE", "/v1/playlists/{playlist_id}/tracks"): _OLD_PLAYLIST,
    ("PUT", "/v1/me/tracks"): _OLD_LIBRARY,
    ("DELETE", "/v1/me/tracks"): _OLD_LIBRARY,
    ("GET", "/v1/me/tracks/contains"): _OLD_LIBRARY,
    ("PUT", "/v1/me/albums"): _OLD_LIBRARY,
    ("DELETE", "/v1/me/albums"): _OLD_LIBRARY,
    ("GET", "/v1/me/albums/contains"): _OLD_LIBRARY,
    ("PUT", "/v1/me/following"): _OLD_LIBRARY,
    ("DELETE", "/v1/me/following"): _OLD_LIBRARY,
    ("GET", "/v1/me/following/contains"): _OLD_LIBRARY,
    ("PUT", "/v1/me/tracks/"): _TRAILING,
    ("DELETE", "/v1/me/tracks/"): _TRAILING,
    ("PUT", "/v1/me/albums/"): _TRAILING,
    ("DELETE", "/v1/me/albums/"): _TRAILING,
    ("PUT", "/v1/me/following/"): _TRAILING,
    ("DELETE", "/v1/me/following/"): _TRAILING,
}

_SOME_ID = "4iV5W9uYEdYUVa79Axb7Rh"  # well formed, names nothing here
_NO_PODCASTS = "Tonearm has no podcasts or audiobooks"
_NO_USER_FOLLOWS = "following users is not supported: /v1/me/library refuses user URIs"
_NO_PLAYLIST_FOLLOWS = "following others' playlists is not supported: /v1/me/library refuses playlist URIs"
_NO_BROWSE = "no browse categories or featured playlists (Spotify removed them for new apps)"
_NO_CONNECT = "no Spotify Connect device list: the player keeps one queue per listener"

Call = Callable[[Any, Seeded], object]

# spotipy methods whose endpoint we lack or refuse -> (the status spotipy must see, why, a call).
NOT_IMPLEMENTED: dict[str, tuple[int, str, Call]] = {
    "artist_related_artists": (
        404,
        "no related artists (Spotify removed it for new apps)",
        lambda sp, s: sp.artist_related_artists(s.artists["Queen"]),
    ),
    "audio_analysis": (404, "no audio analysis", lambda sp, s: sp.audio_analysis(s.tracks["Eple"])),
    "audio_features": (
        404,
        "tempo is measured at ingest but not served as /v1/audio-features",
        lambda sp, s: sp.audio_features([s.tracks["Eple"]]),
    ),
    "available_markets": (
        404,
        "no markets: a server serves one library",
        lambda sp, s: sp.available_markets(),
    ),
    "featured_playlists": (404, _NO_BROWSE, lambda sp, s: sp.featured_playlists()),
    "categories": (404, _NO_BROWSE, lambda sp, s: sp.categories()),
    "category": (404, _NO_BROWSE, lambda sp, s: sp.category("rock")),
    "category_playlists": (404, _NO_BROWSE, lambda sp, s: sp.category_playlists("rock")),
    "devices": (404, _NO_CONNECT, lambda sp, s: sp.devices()),
    "transfer_playback": (405, _NO_CONNECT, lambda sp, s: sp.transfer_playback(new_id())),
    "volume": (404, "volume is the client's own", lambda sp, s: sp.volume(50)),
    "show": (404, _NO_PODCASTS, lambda sp, s: sp.show(_SOME_ID)),
    "shows": (404, _NO_PODCASTS, lambda sp, s: sp.shows([_SOME_ID])),
    "show_episodes": (404, _NO_PODCASTS, lambda sp, s: sp.show_episodes(_SOME_ID)),
    "episode": (404, _NO_PODCASTS, lambda sp, s: sp.episode(_SOME_ID)),
    "episodes": (404, _NO_PODCASTS, lambda sp, s: sp.episodes([_SOME_ID])),
    "get_audiobook": (404, _NO_PODCASTS, lambda sp, s: sp.get_audiobook(_SOME_ID)),
    "get_audiobooks": (404, _NO_PODCASTS, lambda sp, s: sp.get_audiobooks([_SOME_ID])),
    "get_audiobook_chapters": (404, _NO_PODCASTS, lambda sp, s: sp.get_audiobook_chapters(_SOME_ID)),
    "current_user_saved_episodes": (404, _NO_PODCASTS, lambda sp, s: sp.current_user_saved_episodes()),
    "current_user_saved_episodes_add": (
        400,
        _NO_PODCASTS,
        lambda sp, s: sp.current_user_saved_episodes_add([_SOME_ID]),
    ),
    "current_user_saved_episodes_delete": (
        400,
        _NO_PODCASTS,
        lambda sp, s: sp.current_user_saved_episodes_delete([_SOME_ID]),
    ),
    "current_user_saved_episodes_contains": (
        404,
        _NO_PODCASTS,
        lambda sp, s: sp.current_user_saved_episodes_contains([_SOME_ID]),
    ),
    "current_user_saved_shows": (404, _NO_PODCASTS, lambda sp, s: sp.current_user_saved_shows()),
    "current_user_saved_shows_add": (
        400,
        _NO_PODCASTS,
        lambda sp, s: sp.current_user_saved_shows_add([_SOME_ID]),
    ),
    "current_user_saved_shows_delete": (
        400,
        _NO_PODCASTS,
        lambda sp, s: sp.current_user_saved_shows_delete([_SOME_ID]),
    ),
    "current_user_saved_shows_contains": (
        400,
        _NO_PODCASTS,
        lambda sp, s: sp.current_user_saved_shows_contains([_SOME_ID]),
    ),
    "user_playlist_add_episodes": (
        400,
        _NO_PODCASTS,
        lambda sp, s: sp.user_playlist_add_episodes("me", _own_playlist(sp), [_SOME_ID]),
    ),
    "user_follow_users": (400, _NO_USER_FOLLOWS, lambda sp, s: sp.user_follow_users([_SOME_ID])),
    "user_unfollow_users": (400, _NO_USER_FOLLOWS, lambda sp, s: sp.user_unfollow_users([_SOME_ID])),
    "current_user_following_users": (
        400,
        _NO_USER_FOLLOWS,
        lambda sp, s: sp.current_user_following_users([_SOME_ID]),
    ),
    "current_user_follow_playlist": (
        400,
        _NO_PLAYLIST_FOLLOWS,
        lambda sp, s: sp.current_user_follow_playlist(_own_playlist(sp)),
    ),
    "user_playlist_follow_playlist": (
        400,
        _NO_PLAYLIST_FOLLOWS,
        lambda sp, s: sp.user_playlist_follow_playlist("me", _own_playlist(sp)),
    ),
    "user_playlist_remove_specific_occurrences_of_tracks": (
        404,
        "the /v1/users/{user}/playlists/{id}/tracks path Spotify removed",
        lambda sp, s: sp.user_playlist_remove_specific_occurrences_of_tracks(
            "me", _own_playlist(sp), [{"uri": s.tracks["Eple"], "positions": [0]}]
        ),
    ),
}

# Not callable against any server: spotipy 2.26.0's own `playlist_is_following` passes a string as
# the warning category and raises TypeError before sending (and we have no /followers/contains).
BROKEN_IN_SPOTIPY: dict[str, str] = {
    "playlist_is_following": "raises TypeError in spotipy 2.26.0 before any request; no /followers/contains",
    "user_playlist_is_following": "calls playlist_is_following (above)",
}

# spotipy methods that send nothing of their own.
HELPERS: dict[str, str] = {"set_auth": "sets the token"}

CALLED: set[str] = set()  # spotipy methods the suite called, by name (see Client)


class Client:
    """A spotipy.Spotify that notes which of its methods the suite calls."""

    def __init__(self, sp: Any) -> None:
        self._sp = sp

    def __getattr__(self, name: str) -> Any:
        CALLED.add(name)
        return getattr(self._sp, name)


@dataclass
class Server:
    base: str
    container: Container
    catalog: Seeded
    hits_before: dict[tuple[str, str, str], float]


@dataclass
class Listener:
    user_id: str
    token: str
    sp: Any  # a Client


def _request_counts() -> dict[tuple[str, str, str], float]:
    """The server's own request counter, by (method, route template, status)."""
    out: dict[tuple[str, str, str], float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "tonearm_http_requests_total":
                labels = sample.labels
                out[(labels["method"], labels["route"], labels["status"])] = sample.value
    return out


def _write_covers(c: Container) -> None:
    """seed() leaves image rows without bytes; real JPEGs let playlists build their covers."""
    with c.db.read() as conn:
        rows = conn.execute(sa.select(image_variants.c.blob_key, image_variants.c.width)).all()
    for key, width in rows:
        buf = io.BytesIO()
        Image.new("RGB", (width, width), (30, 60, 90)).save(buf, format="JPEG")
        c.blobs.put_bytes(key, buf.getvalue())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("spotipy")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    url = f"sqlite:///{tmp / 'tonearm.db'}"
    migrate.upgrade(url)
    c = bootstrap(
        Settings(
            data_dir=tmp / "data",
            database_url=url,
            secret_key="spotipy-secret-" + "s" * 32,
            public_url=base,  # paging links (spotipy's next/previous) must point back here
            inprocess_workers=0,
            log_json=False,
        )
    )
    catalog = seed(c)
    _write_covers(c)
    uv = uvicorn.Server(uvicorn.Config(create_app(c, start_workers=False), log_level="error"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started, "uvicorn did not start"
    yield Server(base, c, catalog, _request_counts())
    uv.should_exit = True  # the app's lifespan closes the container
    thread.join(10)
    sock.close()


_emails = itertools.count()


def _listener(server: Server, *, premium: bool = True) -> Listener:
    email = f"listener{next(_emails)}@example.com"
    password = "correct horse"
    r = httpx.post(
        f"{server.base}/v1/users",
        json={"email": email, "password": password, "display_name": "Ada", "birth_date": "1990-05-01"},
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    if premium:
        make_premium(server.container, user_id)
    t = httpx.post(
        f"{server.base}/api/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    sp = spotipy.Spotify(auth=token, requests_timeout=10, retries=0)
    sp.prefix = f"{server.base}/v1/"  # spotipy 2.26.0's constructor takes no `prefix`; it reads this
    return Listener(user_id, token, Client(sp))


@pytest.fixture
def me(server: Server) -> Listener:
    """A new premium listener per test, so no test sees another's library, playlists or player."""
    return _listener(server)


@pytest.fixture
def cat(server: Server) -> Seeded:
    return server.catalog


def _own_playlist(sp: Any) -> str:
    return str(sp.current_user_playlist_create("Scratch")["id"])


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [i["name"] for i in items]


# Catalog -------------------------------------------------------------------------------------------
def test_tracks_albums_and_artists(me: Listener, cat: Seeded, server: Server) -> None:
    sp = me.sp
    rhapsody = sp.track(cat.tracks["Bohemian Rhapsody"])
    assert set(rhapsody) == TRACK_FIELDS
    assert rhapsody["name"] == "Bohemian Rhapsody" and rhapsody["type"] == "track"
    assert rhapsody["uri"] == f"tonearm:track:{cat.tracks['Bohemian Rhapsody']}"
    assert rhapsody["duration_ms"] == 180_000 and rhapsody["artists"][0]["name"] == "Queen"
    assert rhapsody["album"]["name"] == "A Night at the Opera"
    assert rhapsody["album"]["images"][0]["url"].startswith(f"{server.base}/images/")
    # A URI with Spotify's scheme, as spotipy users pass them, is read too (spotipy strips it).
    assert sp.track(f"spotify:track:{cat.tracks['Eple']}")["name"] == "Eple"

    several = sp.tracks([cat.tracks["Yesterday"], cat.tracks["Halo"]])["tracks"]
    assert _names(several) == ["Yesterday", "Halo"]

    album = sp.album(cat.albums["A Night at the Opera"], market="US")
    assert set(album) >= ALBUM_FIELDS and album["name"] == "A Night at the Opera"
    assert album["release_date"] == "1975-10-31" and album["release_date_precision"] == "day"
    assert album["total_tracks"] == 2 and _names(album["tracks"]["items"]) == [
        "Bohemian Rhapsody",
        "Love of My Life",
    ]
    tracks = sp.album_tracks(cat.albums["A Night at the Opera"], limit=1)
    assert set(tracks) == PAGING and tracks["total"] == 2 and _names(tracks["items"]) == ["Bohemian Rhapsody"]
    assert _names(sp.next(tracks)["items"]) == ["Love of My Life"]

    several_albums = sp.albums([cat.albums["Jazz"], "0" * 22, cat.albums["Help!"]])["albums"]
    assert [a and a["name"] for a in several_albums] == ["Jazz", None, "Help!"]
    assert _names(several_albums[0]["tracks"]["items"]) == ["Don't Stop Me Now"]

    queen = sp.artist(cat.artists["Queen"])
    several_artists = sp.artists([cat.artists["Röyksopp"], "0" * 22, cat.artists["Queen"]])["artists"]
    assert [a and a["name"] for a in several_artists] == ["Röyksopp", None, "Queen"]
    assert several_artists[2] == queen
    assert queen["name"] == "Queen" and queen["genres"] == ["rock"] and queen["type"] == "artist"
    albums = sp.artist_albums(cat.artists["Queen"], include_groups="album", limit=20)
    assert set(albums) == PAGING and sorted(_names(albums["items"])) == ["A Night at the Opera", "Jazz"]
    top = sp.artist_top_tracks(cat.artists["Queen"])["tracks"]
    assert _names(top) == ["Bohemian Rhapsody", "Don't Stop Me Now", "Love of My Life"]  # by plays

    with pytest.raises(spotipy.SpotifyException) as missing:
        sp.track("0" * 22)
    assert missing.value.http_status == 404 and "not found" in missing.value.msg


def test_new_releases_genre_seeds_and_recommendations(me: Listener, cat: Seeded) -> None:
    sp = me.sp
    releases = sp.new_releases(limit=3)["albums"]
    assert set(releases) == PAGING and len(releases["items"]) == 3 and releases["total"] == len(cat.albums)
    dates = [a["release_date"] for a in releases["items"]]
    assert dates == sorted(dates, reverse=True)

    seeds = sp.recommendation_genre_seeds()["genres"]
    assert {"rock", "pop", "electronic", "hip-hop", "indie-rock"} <= set(seeds)

    recs = sp.recommendations(seed_tracks=[cat.tracks["Bohemian Rhapsody"]], limit=5)
    assert recs["seeds"][0]["id"] == cat.tracks["Bohemian Rhapsody"] and recs["seeds"][0]["type"] == "TRACK"
    assert 0 < len(recs["tracks"]) <= 5
    assert cat.tracks["Bohemian Rhapsody"] not in {t["id"] for t in recs["tracks"]}
    by_genre = sp.recommendations(seed_genres=["rock"], seed_artists=[cat.artists["Queen"]], limit=10)
    assert [s["type"] for s in by_genre["seeds"]] == ["ARTIST", "GENRE"]
    assert by_genre["tracks"] and all(t["type"] == "track" for t in by_genre["tracks"])


def test_search_and_its_paging(me: Listener, cat: Seeded) -> None:
    sp = me.sp
    tracks = sp.search("bohemian rhapsody", limit=5)["tracks"]
    assert set(tracks) == PAGING and tracks["items"][0]["id"] == cat.tracks["Bohemian Rhapsody"]
    both = sp.search("queen", type="artist,album", market="from_token")
    assert list(both) == ["artists", "albums"]
    assert both["artists"]["items"][0]["id"] == cat.artists["Queen"]
    assert {a["name"] for a in both["albums"]["items"]} == {"A Night at the Opera", "Jazz"}

    first = sp.search("padding", limit=10)["tracks"]
    assert first["total"] == 30 and first["previous"] is None
    second = sp.next(first)["tracks"]
    assert second["offset"] == 10 and not {t["id"] for t in first["items"]} & {
        t["id"] for t in second["items"]
    }
    assert sp.previous(second)["tracks"]["items"] == first["items"]

    with pytest.warns(UserWarning, match="experimental|poorly performing"):  # spotipy's own
        per_market = sp.search_markets("halo", limit=1, markets=["US"])
    assert _names(per_market["US"]["tracks"]["items"]) == ["Halo"]


# Profiles ------------------------------------------------------------------------------------------
def test_profiles(me: Listener, server: Server) -> None:
    sp = me.sp
    mine = sp.me()  # asked as /v1/me/ (a 307 to /v1/me)
    assert mine["id"] == me.user_id and mine["type"] == "user" and mine["product"] == "premium"
    assert mine["display_name"] == "Ada" and mine["email"].endswith("@example.com")
    assert sp.current_user() == mine
    other = _listener(server, premium=False)
    public = sp.user(other.user_id)
    assert public["id"] == other.user_id and public["uri"] == f"tonearm:user:{other.user_id}"
    assert "email" not in public and "product" not in public  # another listener's private fields stay


# Library -------------------------------------------------------------------------------------------
def test_saved_tracks_albums_and_followed_artists(me: Listener, cat: Seeded) -> None:
    sp = me.sp
    first, second, third = cat.tracks["Bohemian Rhapsody"], cat.tracks["Yesterday"], cat.tracks["Eple"]
    sp.current_user_saved_tracks_add([first])  # one by one: one request saves at one moment
    sp.current_user_saved_tracks_add([second, first])  # saving again keeps the first added_at
    sp.current_user_saved_tracks_add([f"spotify:track:{third}"])
    assert sp.current_user_saved_tracks_contains([first, cat.tracks["Halo"], third]) == [True, False, True]
    page = sp.current_user_saved_tracks(limit=2)
    assert set(page) == PAGING and page["total"] == 3
    assert [i["track"]["id"] for i in page["items"]] == [third, second]  # newest first
    assert all(i["added_at"].endswith("Z") for i in page["items"])
    rest = sp.next(page)
    assert [i["track"]["id"] for i in rest["items"]] == [first] and rest["next"] is None
    assert sp.previous(rest)["items"] == page["items"]
    sp.current_user_saved_tracks_delete([second])
    assert [i["track"]["id"] for i in sp.current_user_saved_tracks()["items"]] == [third, first]

    jazz, help_ = cat.albums["Jazz"], cat.albums["Help!"]
    sp.current_user_saved_albums_add([jazz])
    sp.current_user_saved_albums_add([help_])
    assert sp.current_user_saved_albums_contains([jazz, cat.albums["Melody A.M."]]) == [True, False]
    saved = sp.current_user_saved_albums()
    assert set(saved) == PAGING and saved["total"] == 2
    assert [i["album"]["name"] for i in saved["items"]] == ["Help!", "Jazz"]
    assert set(saved["items"][0]["album"]) >= ALBUM_FIELDS
    sp.current_user_saved_albums_delete([jazz])
    assert [i["album"]["id"] for i in sp.current_user_saved_albums()["items"]] == [help_]

    queen, beyonce, royksopp = cat.artists["Queen"], cat.artists["Beyoncé"], cat.artists["Röyksopp"]
    sp.user_follow_artists([queen, beyonce, royksopp])
    assert sp.current_user_following_artists([queen, cat.artists["The Beatles"]]) == [True, False]
    followed = sp.current_user_followed_artists(limit=2)["artists"]
    assert _names(followed["items"]) == ["Beyoncé", "Queen"] and followed["total"] == 3  # by name
    assert followed["cursors"]["after"] == queen
    more = sp.next(followed)["artists"]  # the cursor page, through spotipy's own paging helper
    assert _names(more["items"]) == ["Röyksopp"] and more["next"] is None
    sp.user_unfollow_artists([queen])
    assert _names(sp.current_user_followed_artists()["artists"]["items"]) == ["Beyoncé", "Röyksopp"]

    assert sp.current_user_saved_items(
        [f"spotify:track:{first}", f"spotify:album:{help_}", f"spotify:artist:{queen}"]
    ) == [True, True, False]


# Playlists -----------------------------------------------------------------------------------------
def test_playlists(me: Listener, cat: Seeded, server: Server) -> None:
    sp = me.sp
    one, two, three = cat.tracks["Halo"], cat.tracks["Eple"], cat.tracks["Yesterday"]
    mix = sp.user_playlist_create(me.user_id, "Road Trip", public=False, description="for the car")
    assert mix["name"] == "Road Trip" and mix["public"] is False and mix["description"] == "for the car"
    assert mix["owner"]["id"] == me.user_id and mix["tracks"]["total"] == 0
    pl = mix["id"]

    added = sp.playlist_add_items(pl, [one, f"spotify:track:{two}", three])["snapshot_id"]
    sp.playlist_add_items(pl, [one], position=1)  # one, one, two, three
    full = sp.playlist(pl)
    assert full["tracks"]["total"] == 4 and full["snapshot_id"] != added
    assert [i["track"]["id"] for i in full["tracks"]["items"]] == [one, one, two, three]

    moved = sp.playlist_reorder_items(pl, range_start=3, insert_before=0, snapshot_id=full["snapshot_id"])
    with pytest.raises(spotipy.SpotifyException) as stale:  # that snapshot is gone now
        sp.playlist_reorder_items(pl, range_start=0, insert_before=2, snapshot_id=full["snapshot_id"])
    assert stale.value.http_status == 409 and moved["snapshot_id"] != full["snapshot_id"]
    items = sp.playlist_items(pl, limit=2)
    assert set(items) == PAGING and items["total"] == 4
    assert [i["track"]["id"] for i in items["items"]] == [three, one]
    assert items["items"][0]["added_by"]["id"] == me.user_id
    with pytest.warns(DeprecationWarning, match="playlist_items"):  # spotipy's own nudge
        assert [i["track"]["id"] for i in sp.playlist_tracks(pl)["items"]] == [three, one, one, two]

    sp.playlist_remove_specific_occurrences_of_items(pl, [{"uri": one, "positions": [2]}])
    assert [i["track"]["id"] for i in sp.playlist_items(pl)["items"]] == [three, one, two]
    sp.playlist_remove_all_occurrences_of_items(pl, [three])
    assert [i["track"]["id"] for i in sp.playlist_items(pl)["items"]] == [one, two]
    sp.playlist_replace_items(pl, [two, three])
    assert [i["track"]["id"] for i in sp.playlist_items(pl)["items"]] == [two, three]

    sp.playlist_change_details(pl, name="Road Trip 2", public=True, description="longer")
    changed = sp.playlist(pl, fields="name,public,description")
    assert (changed["name"], changed["public"], changed["description"]) == ("Road Trip 2", True, "longer")
    covers = sp.playlist_cover_image(pl)  # made from its albums' covers
    assert [c["width"] for c in covers] == [640, 300, 64] and covers[0]["url"].startswith(server.base)

    # The deprecated user_* spellings spotipy still ships reach the same routes.
    assert sp.user_playlist(me.user_id, pl)["name"] == "Road Trip 2"
    sp.user_playlist_change_details(me.user_id, pl, name="Road Trip 3")
    sp.user_playlist_add_tracks(me.user_id, pl, [one])  # two, three, one
    sp.user_playlist_reorder_tracks(me.user_id, pl, range_start=2, insert_before=0)  # one, two, three
    sp.user_playlist_replace_tracks(me.user_id, pl, [one, two, one])
    sp.user_playlist_remove_all_occurrences_of_tracks(me.user_id, pl, [one])
    listed = sp.user_playlist_tracks(me.user_id, pl)
    assert [i["track"]["id"] for i in listed["items"]] == [two]

    second = sp.current_user_playlist_create("Quiet", description="evenings")
    jpeg = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 40, 90)).save(jpeg, format="JPEG")
    sp.playlist_upload_cover_image(second["id"], base64.b64encode(jpeg.getvalue()).decode())
    assert [c["width"] for c in sp.playlist_cover_image(second["id"])] == [640, 300, 64]

    mine = sp.current_user_playlists()
    assert [(p["id"], p["name"]) for p in mine["items"]] == [(second["id"], "Quiet"), (pl, "Road Trip 3")]
    assert [p["id"] for p in sp.user_playlists(me.user_id)["items"]] == [second["id"], pl]
    deadline = time.monotonic() + 5  # the indexer follows playlist changes a moment later
    while not sp.search("Road Trip", type="playlist")["playlists"]["items"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _names(sp.search("Road Trip", type="playlist")["playlists"]["items"]) == ["Road Trip 3"]

    sp.current_user_unfollow_playlist(second["id"])  # its owner deletes it
    sp.user_playlist_unfollow(me.user_id, pl)
    assert sp.current_user_playlists()["items"] == []
    with pytest.raises(spotipy.SpotifyException) as gone:
        sp.playlist(pl)
    assert gone.value.http_status == 404


# Player --------------------------------------------------------------------------------------------
def test_player(me: Listener, cat: Seeded) -> None:
    sp = me.sp
    assert sp.current_playback() is None and sp.currently_playing() is None  # 204: nothing queued
    assert sp.queue() == {"currently_playing": None, "queue": []}

    first, second, third = cat.tracks["Halo"], cat.tracks["Eple"], cat.tracks["Yesterday"]
    device = new_id()
    sp.start_playback(device_id=device, uris=[f"spotify:track:{first}", f"spotify:track:{second}"])
    state = sp.current_playback()
    assert state["item"]["id"] == first and state["is_playing"] is True
    assert state["repeat_state"] == "off" and state["shuffle_state"] is False
    assert state["device"]["is_active"] is True
    assert sp.currently_playing()["item"]["id"] == first
    assert sp.current_user_playing_track()["item"]["name"] == "Halo"

    sp.add_to_queue(third)
    queue = sp.queue()
    assert queue["currently_playing"]["id"] == first
    assert [t["id"] for t in queue["queue"]] == [second, third]
    sp.next_track()
    assert sp.currently_playing()["item"]["id"] == second
    sp.previous_track(device_id=device)
    assert sp.currently_playing()["item"]["id"] == first

    sp.seek_track(90_000)
    sp.repeat("context")
    sp.shuffle(True)
    sp.pause_playback()
    paused = sp.current_playback()
    assert paused["is_playing"] is False and 90_000 <= paused["progress_ms"] < 95_000  # (it ran on)
    assert sp.current_playback()["progress_ms"] == paused["progress_ms"]  # and stopped there
    assert paused["repeat_state"] == "context" and paused["shuffle_state"] is True
    sp.shuffle(False)
    sp.repeat("off", device_id=device)
    resumed = sp.current_playback()
    assert resumed["shuffle_state"] is False and resumed["repeat_state"] == "off"

    opera = cat.albums["A Night at the Opera"]
    sp.start_playback(context_uri=f"spotify:album:{opera}", offset={"position": 1}, position_ms=1000)
    now = sp.currently_playing()
    assert now["item"]["name"] == "Love of My Life" and now["progress_ms"] >= 1000
    assert now["context"]["type"] == "album" and now["context"]["uri"] == f"tonearm:album:{opera}"
    sp.start_playback(
        context_uri=f"spotify:album:{opera}",
        offset={"uri": f"spotify:track:{cat.tracks['Bohemian Rhapsody']}"},
    )
    assert sp.currently_playing()["item"]["name"] == "Bohemian Rhapsody"


def test_a_free_plans_refusal_reaches_spotipy_with_its_reason(server: Server, cat: Seeded) -> None:
    sp = _listener(server, premium=False).sp
    sp.start_playback(uris=[f"spotify:track:{t}" for t in list(cat.tracks.values())[:20]])
    refused: spotipy.SpotifyException | None = None
    for _ in range(20):  # skip until the plan's hourly limit says no
        try:
            sp.next_track()
        except spotipy.SpotifyException as e:
            refused = e
            break
    assert refused is not None and refused.http_status == 403 and refused.reason == "skip_limit"
    assert "skips" in refused.msg


# History -------------------------------------------------------------------------------------------
def _listen(server: Server, token: str, track_ids: list[str]) -> dt.datetime:
    """One counted play of each track, a minute apart, in order; returns when the first began.
    (Players report plays through POST /v1/me/player/events, which spotipy has no method for.)"""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    events: list[dict[str, Any]] = []
    for n, track_id in enumerate(track_ids):
        at, pb = start + dt.timedelta(minutes=n), f"pb{n}"
        common = {"track_id": track_id, "playback_id": pb}
        events += [
            common | {"id": f"{pb}-s", "type": "start", "timestamp": at.isoformat(), "position_ms": 0},
            common
            | {
                "id": f"{pb}-e",
                "type": "end",
                "timestamp": (at + dt.timedelta(seconds=31)).isoformat(),
                "ms_played": 31_000,
            },
        ]
    r = httpx.post(
        f"{server.base}/v1/me/player/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"events": events},
    )
    assert r.status_code == 200 and r.json()["plays_counted"] == len(track_ids), r.text
    return start


def test_recently_played_and_top_lists(me: Listener, cat: Seeded, server: Server) -> None:
    sp = me.sp
    halo, eple, yesterday = cat.tracks["Halo"], cat.tracks["Eple"], cat.tracks["Yesterday"]
    start = _listen(server, me.token, [halo, eple, halo, yesterday, halo])

    recent = sp.current_user_recently_played(limit=2)
    assert [i["track"]["id"] for i in recent["items"]] == [halo, yesterday]
    assert all(i["played_at"].endswith("Z") for i in recent["items"])
    older = sp.next(recent)  # follows the `before` cursor
    assert [i["track"]["id"] for i in older["items"]] == [halo, eple]
    after_second = int((start + dt.timedelta(minutes=1, seconds=40)).timestamp() * 1000)
    later = sp.current_user_recently_played(after=after_second)
    assert [i["track"]["id"] for i in later["items"]] == [halo, yesterday, halo]

    top = sp.current_user_top_tracks(limit=2, time_range="short_term")
    assert set(top) == PAGING and top["total"] == 3 and top["items"][0]["id"] == halo
    artists = sp.current_user_top_artists(time_range="long_term")
    assert artists["items"][0]["name"] == "Beyoncé" and artists["total"] == 3


# Documented gaps -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(NOT_IMPLEMENTED))
def test_documented_gaps_fail_clearly(method: str, me: Listener, cat: Seeded) -> None:
    """Each gap answers spotipy with the status written beside it and a message (Spotify's error
    shape), never a 500: if one starts working, move it to SPOTIPY_ROUTES with a real test."""
    status, _why, call = NOT_IMPLEMENTED[method]
    with pytest.raises(spotipy.SpotifyException) as err:
        call(me.sp, cat)
    assert err.value.http_status == status, err.value
    assert err.value.msg.split("\n", 1)[1].strip(), "the error carries a message"
    CALLED.add(method)


# Coverage bookkeeping ------------------------------------------------------------------------------
def _walk(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        # FastAPI (0.16x) keeps an included router whole, behind a wrapper; older ones copy its routes.
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def _v1_routes(app: FastAPI) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in _walk(app.router.routes):
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or set()
        if path.startswith("/v1/"):
            found |= {(m, path) for m in methods if m != "HEAD"}
    return found


def test_every_v1_route_is_accounted_for(server: Server) -> None:
    routes = _v1_routes(create_app(server.container, start_workers=False))
    assert set(SPOTIPY_ROUTES).isdisjoint(NO_SPOTIPY_METHOD)
    unlisted = routes - set(SPOTIPY_ROUTES) - set(NO_SPOTIPY_METHOD)
    assert not unlisted, (
        f"new /v1 routes: test them through spotipy or list them in NO_SPOTIPY_METHOD: {unlisted}"
    )
    stale = (set(SPOTIPY_ROUTES) | set(NO_SPOTIPY_METHOD)) - routes
    assert not stale, f"listed routes that no longer exist: {stale}"


def test_every_spotipy_method_is_accounted_for() -> None:
    public = {n for n, v in vars(spotipy.Spotify).items() if inspect.isfunction(v) and not n.startswith("_")}
    reached = {m for methods in SPOTIPY_ROUTES.values() for m in methods}
    places = [reached, set(NOT_IMPLEMENTED), set(BROKEN_IN_SPOTIPY), set(HELPERS)]
    for i, a in enumerate(places):
        for b in places[i + 1 :]:
            assert a.isdisjoint(b), a & b
    unlisted = public - set().union(*places)
    assert not unlisted, f"spotipy methods nobody placed (a spotipy bump?): {sorted(unlisted)}"
    assert not set().union(*places) - public, "listed methods spotipy no longer has"


def test_every_listed_route_was_answered_and_method_called(
    request: pytest.FixtureRequest, server: Server
) -> None:
    """Last: the server's request metrics saw every SPOTIPY_ROUTES route answered 2xx during this
    module, and every method listed was called (only meaningful when the whole module ran)."""
    here = Path(__file__)
    ran = {item.name.split("[")[0] for item in request.session.items if item.path == here}
    if ran != {name for name in globals() if name.startswith("test_")}:
        pytest.skip("checks coverage only when the whole module runs")
    now = _request_counts()
    answered = {
        (method, route)
        for (method, route, status), n in now.items()
        if status.startswith("2") and n > server.hits_before.get((method, route, status), 0)
    }
    assert not set(SPOTIPY_ROUTES) - answered, f"never answered 2xx: {set(SPOTIPY_ROUTES) - answered}"
    listed = {m for methods in SPOTIPY_ROUTES.values() for m in methods} | set(NOT_IMPLEMENTED)
    assert not listed - CALLED, f"listed but never called: {sorted(listed - CALLED)}"
