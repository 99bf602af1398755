"""Sharing through the API, on SQLite and PostgreSQL: public pages read as a crawler reads them
(every Open Graph and Twitter tag of each type), embeds and their Content-Security-Policy, oEmbed
per the 1.0 spec (and never fetching anything), URI resolution, share links with clicks and
expiry, and private objects never leaking through any public route."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.helpers import make_settings
from tonearm.bootstrap import Container, bootstrap
from tonearm.domains.catalog.tables import albums, renditions, tracks
from tonearm.domains.library.tables import playlist_entries, playlists
from tonearm.kernel.clock import FrozenClock
from tonearm.kernel.ids import new_id

from .conftest import sign_up_and_login
from .test_search_api import Seeded, seed

BASE = "http://testserver"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def container(tmp_path: Path, db_url: str, clock: FrozenClock) -> Iterator[Container]:
    c = bootstrap(make_settings(tmp_path, db_url), clock=clock)
    yield c
    c.close()


class Crawler(HTMLParser):
    """What a link-preview crawler reads: meta tags, link tags, the title, anchors, scripts, text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, list[str]] = defaultdict(list)
        self.order: list[tuple[str, str]] = []
        self.links: list[dict[str, str | None]] = []
        self.anchors: list[tuple[str | None, str]] = []
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self.data_src: list[str] = []
        self._in: str | None = None
        self._anchor: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "meta" and (key := a.get("property") or a.get("name")):
            self.meta[key].append(a.get("content") or "")
            self.order.append((key, a.get("content") or ""))
        elif tag == "link":
            self.links.append(a)
        elif tag == "a":
            self._anchor = a.get("href")
            self.anchors.append((self._anchor, ""))
        if "data-src" in a:
            self.data_src.append(a["data-src"] or "")
        if tag in ("title", "script", "style"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None
        if tag == "a" and self._anchor is not None:
            self.anchors[-1] = (self._anchor, " ".join(self.anchors[-1][1].split()))
            self._anchor = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)
        else:
            self.text.append(data)
            if self.anchors and self._anchor is not None and self.anchors[-1][0] == self._anchor:
                self.anchors[-1] = (self._anchor, self.anchors[-1][1] + data)

    def one(self, key: str) -> str:
        values = self.meta.get(key, [])
        assert len(values) == 1, (key, values)
        return values[0]

    @property
    def body_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def crawl(client: TestClient, path: str, expect: int = 200) -> tuple[Crawler, Any]:
    r = client.get(path)
    assert r.status_code == expect, (path, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    return Crawler(r.text), r


def _image_of(c: Container, album_id: str) -> str:
    with c.db.read() as conn:
        return str(conn.execute(sa.select(albums.c.image_id).where(albums.c.id == album_id)).scalar_one())


def add_rendition(
    c: Container,
    track_id: str,
    data: bytes = b"\x00\x00\x00\x18ftypM4A preview",
    *,
    name: str = "aac_96",
    codec: str = "aac",
    kbps: int = 96,
    container: str = "m4a",
    content_type: str = "audio/mp4",
) -> str:
    """A rendition with real bytes in the blob store (by default the AAC 96 kb/s one the preview
    URL serves)."""
    key = f"renditions/{track_id}/{name}.{container}"
    c.blobs.put_bytes(key, data)
    with c.db.write() as conn:
        conn.execute(
            sa.insert(renditions).values(
                id=new_id(),
                track_id=track_id,
                name=name,
                codec=codec,
                bitrate_kbps=kbps,
                container=container,
                content_type=content_type,
                blob_key=key,
                size_bytes=len(data),
                duration_ms=180_000,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    c.streaming.invalidate(track_id)
    return key


def add_playlist(
    c: Container,
    owner_id: str,
    name: str,
    track_ids: list[str],
    *,
    public: bool = True,
    description: str | None = None,
) -> str:
    """A playlist written straight into its tables (the playlist API is another domain's)."""
    playlist_id = new_id()
    now = dt.datetime.now(dt.UTC)
    with c.db.write() as conn:
        conn.execute(
            sa.insert(playlists).values(
                id=playlist_id,
                owner_id=owner_id,
                name=name,
                description=description,
                public=public,
                created_at=now,
                updated_at=now,
            )
        )
        if track_ids:
            conn.execute(
                sa.insert(playlist_entries),
                [  # keys out of insertion order: the page must follow position_key
                    {
                        "id": new_id(),
                        "playlist_id": playlist_id,
                        "track_id": t,
                        "position_key": f"a{len(track_ids) - n:03d}",
                        "added_by": owner_id,
                        "added_at": now,
                    }
                    for n, t in enumerate(reversed(track_ids))
                ],
            )
    return playlist_id


def set_public(c: Container, playlist_id: str, public: bool) -> None:
    with c.db.write() as conn:
        conn.execute(sa.update(playlists).where(playlists.c.id == playlist_id).values(public=public))


def add_processing_track(c: Container, album_id: str, title: str) -> str:
    track_id = new_id()
    now = dt.datetime.now(dt.UTC)
    with c.db.write() as conn:
        conn.execute(
            sa.insert(tracks).values(
                id=track_id,
                title=title,
                album_id=album_id,
                duration_ms=1000,
                status="processing",
                visibility="public",
                content_hash="f" * 64,
                created_at=now,
                updated_at=now,
            )
        )
    return track_id


@pytest.fixture
def world(client: TestClient, container: Container) -> dict[str, Any]:
    """Ada (owning a private upload, "Secret Demo" on album "Demos" by "Bedroom Artist"), Bob, and
    the search tests' catalog."""
    ada = sign_up_and_login(client)
    bob = sign_up_and_login(client, "bob@example.com")
    seeded = seed(container, private_owner=ada["user_id"])
    return {"ada": ada, "bob": bob, "seeded": seeded}


# Pages ----------------------------------------------------------------------------------------
def test_track_page_carries_every_tag_a_crawler_reads(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    track, album, queen = s.tracks["Bohemian Rhapsody"], s.albums["A Night at the Opera"], s.artists["Queen"]
    add_rendition(container, track)
    page, r = crawl(client, f"/track/{track}")

    assert page.title == "Bohemian Rhapsody · Queen | Tonearm"
    assert page.one("og:type") == "music.song"
    assert page.one("og:title") == "Bohemian Rhapsody"
    assert page.one("og:site_name") == "Tonearm"
    assert page.one("og:description") == "Queen · A Night at the Opera · Song · 1975"
    assert page.one("og:url") == f"{BASE}/track/{track}"
    assert page.one("og:image") == f"{BASE}/images/{_image_of(container, album)}/640"
    assert (page.one("og:image:width"), page.one("og:image:height")) == ("640", "640")
    assert page.one("music:duration") == "180"
    assert page.one("music:album") == f"{BASE}/album/{album}"
    assert page.one("music:album:track") == "1" and page.one("music:album:disc") == "1"
    assert page.meta["music:musician"] == [f"{BASE}/artist/{queen}"]
    audio = page.one("og:audio")
    assert audio.startswith(f"{BASE}/stream/{track}/aac_96?u=preview&exp=")
    assert page.one("og:audio:type") == "audio/mp4"
    assert "og:audio:secure_url" not in page.meta  # http here; only an https URL is "secure"

    assert page.one("twitter:card") == "player"
    assert page.one("twitter:title") == "Bohemian Rhapsody"
    assert page.one("twitter:image") == page.one("og:image")
    assert page.one("twitter:player") == f"{BASE}/embed/track/{track}"
    assert (page.one("twitter:player:width"), page.one("twitter:player:height")) == ("456", "152")
    assert page.one("twitter:player:stream") == audio
    assert page.one("twitter:player:stream:content_type") == "audio/mp4"

    oembed = [link for link in page.links if link.get("type") == "application/json+oembed"]
    assert len(oembed) == 1 and oembed[0]["rel"] == "alternate"
    assert oembed[0]["href"] == f"{BASE}/oembed?url={quote(f'{BASE}/track/{track}', safe='')}&format=json"
    assert [link["href"] for link in page.links if link.get("rel") == "canonical"] == [
        f"{BASE}/track/{track}"
    ]
    assert (f"{BASE}/#/album/{album}", "Open in Tonearm") in page.anchors
    assert "Queen" in page.body_text and "A Night at the Opera" in page.body_text and "3:00" in page.body_text
    assert "script" not in page.tags  # a page needs no JavaScript

    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "public, max-age=60"
    # The style sheet is allowed by its hash, and nothing else is.
    assert _hash(page.styles[0]) in r.headers["content-security-policy"]

    # The preview is a working, signed URL anyone can play.
    played = client.get(audio.removeprefix(BASE))
    assert played.status_code == 200 and played.content.startswith(b"\x00\x00\x00\x18ftyp")
    tampered = client.get(audio.removeprefix(BASE).replace("aac_96", "aac_320"))
    assert tampered.status_code == 403


def test_the_preview_is_a_transcode_never_the_uploaded_file(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    """An original of 128 kb/s MP3 is as small as a preview, but it is the uploader's file (their
    tags and bytes): the preview is a transcode, made on first use."""
    track = world["seeded"].tracks["Bohemian Rhapsody"]
    add_rendition(
        container,
        track,
        b"ID3 the uploader's own file",
        name="original",
        codec="mp3",
        kbps=128,
        container="mp3",
        content_type="audio/mpeg",
    )
    page, _ = crawl(client, f"/track/{track}")
    assert page.one("og:audio").startswith(f"{BASE}/stream/{track}/aac_96?u=preview&exp=")
    assert page.one("og:audio:type") == "audio/mp4"


def test_album_page_lists_its_songs_in_order(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    album, queen = s.albums["A Night at the Opera"], s.artists["Queen"]
    add_processing_track(container, album, "Unfinished Bonus")
    page, _ = crawl(client, f"/album/{album}")
    assert page.one("og:type") == "music.album"
    assert page.one("og:title") == "A Night at the Opera"
    assert page.one("og:url") == f"{BASE}/album/{album}"
    assert page.one("og:description") == "Queen · Album · 1975 · 2 songs"
    assert page.meta["music:musician"] == [f"{BASE}/artist/{queen}"]
    assert page.one("music:release_date") == "1975-10-31"
    songs = [f"{BASE}/track/{s.tracks['Bohemian Rhapsody']}", f"{BASE}/track/{s.tracks['Love of My Life']}"]
    assert page.meta["music:song"] == songs
    assert page.meta["music:song:track"] == ["1", "2"] and page.meta["music:song:disc"] == ["1", "1"]
    # Structured properties follow their song, as the protocol requires.
    song_tags = [(k, v) for k, v in page.order if k.startswith("music:song")]
    assert song_tags[:3] == [("music:song", songs[0]), ("music:song:disc", "1"), ("music:song:track", "1")]
    assert "music:duration" not in page.meta
    assert page.one("twitter:player") == f"{BASE}/embed/album/{album}"
    assert page.one("twitter:player:height") == "352"
    assert "og:audio" not in page.meta  # no rendition to preview in this catalog
    text = page.body_text
    assert text.index("Bohemian Rhapsody") < text.index("Love of My Life")
    assert "Unfinished Bonus" not in text  # not ready
    assert (f"{BASE}/#/album/{album}", "Open in Tonearm") in page.anchors


def test_artist_page_is_a_profile_with_top_tracks(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    queen = s.artists["Queen"]
    add_rendition(container, s.tracks["Bohemian Rhapsody"])
    page, _ = crawl(client, f"/artist/{queen}")
    assert page.one("og:type") == "profile"
    assert page.one("og:title") == "Queen"
    assert page.one("og:url") == f"{BASE}/artist/{queen}"
    assert page.one("og:description") == "Artist · 3 songs · 0 followers"
    assert page.one("og:image").startswith(f"{BASE}/images/")
    assert not [k for k in page.meta if k.startswith("music:")]
    assert page.one("og:audio").startswith(f"{BASE}/stream/{s.tracks['Bohemian Rhapsody']}/aac_96?")
    assert page.one("twitter:player") == f"{BASE}/embed/artist/{queen}"
    text = page.body_text
    # Top tracks by plays: 90k, 50k, 20k.
    assert text.index("Bohemian Rhapsody") < text.index("Don't Stop Me Now") < text.index("Love of My Life")
    assert (f"{BASE}/#/artist/{queen}", "Open in Tonearm") in page.anchors


def test_playlist_page_lists_only_public_ready_tracks_in_position_order(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    ada = world["ada"]
    unfinished = add_processing_track(container, s.albums["Help!"], "Unfinished Take")
    listed = [s.tracks["Yesterday"], s.tracks["Secret Demo"], unfinished, s.tracks["Eple"]]
    pl = add_playlist(container, ada["user_id"], "Road Trip", listed, description=None)
    page, _ = crawl(client, f"/playlist/{pl}")
    assert page.one("og:type") == "music.playlist"
    assert page.one("og:title") == "Road Trip"
    assert page.one("og:url") == f"{BASE}/playlist/{pl}"
    assert page.one("og:description") == "Playlist · Ada · 2 songs"
    assert page.meta["music:song"] == [
        f"{BASE}/track/{s.tracks['Yesterday']}",
        f"{BASE}/track/{s.tracks['Eple']}",
    ]
    assert page.meta["music:song:track"] == ["1", "2"]
    assert page.one("music:creator") == f"{BASE}/user/{ada['user_id']}"
    assert page.one("og:image").startswith(f"{BASE}/images/")  # the first track's cover
    assert page.one("twitter:player") == f"{BASE}/embed/playlist/{pl}"
    text = page.body_text
    assert text.index("Yesterday") < text.index("Eple")
    assert "Secret Demo" not in text and "Unfinished Take" not in text and "Demos" not in text
    assert (f"{BASE}/user/{ada['user_id']}", "Ada") in page.anchors


def test_user_page_is_a_profile_listing_public_playlists(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    ada = world["ada"]
    shown = add_playlist(container, ada["user_id"], "Shown To All", [])
    add_playlist(container, ada["user_id"], "My Hidden Mix", [], public=False)
    page, _ = crawl(client, f"/user/{ada['user_id']}")
    assert page.one("og:type") == "profile"
    assert page.one("og:title") == "Ada"
    assert page.one("og:url") == f"{BASE}/user/{ada['user_id']}"
    assert page.one("og:description") == "Profile · 1 public playlist"
    assert page.one("twitter:card") == "summary"  # a profile has no player
    assert "twitter:player" not in page.meta
    assert not [link for link in page.links if link.get("type") == "application/json+oembed"]
    assert (f"{BASE}/playlist/{shown}", "Shown To All") in page.anchors
    assert "My Hidden Mix" not in page.body_text
    assert "ada@example.com" not in client.get(f"/user/{ada['user_id']}").text


def test_titles_are_text_never_markup(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    track = s.tracks["Eple"]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted"'
    with container.db.write() as conn:
        conn.execute(sa.update(tracks).where(tracks.c.id == track).values(title=evil))
    container.catalog.invalidate_track(track)
    pl = add_playlist(container, world["ada"]["user_id"], evil, [track], description=evil)
    for path in (f"/track/{track}", f"/embed/track/{track}", f"/playlist/{pl}", f"/embed/playlist/{pl}"):
        r = client.get(path)
        assert r.status_code == 200, path
        page = Crawler(r.text)
        assert "img" not in page.tags or all(src.startswith(BASE) for src in _img_srcs(r.text)), path
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in r.text, path
        assert evil in page.body_text or evil in page.title, path
        # The only script is the embed's own (pages have none).
        assert len(page.scripts) == (1 if path.startswith("/embed") else 0), path
    page, _ = crawl(client, f"/track/{track}")
    assert page.one("og:title") == evil and page.one("twitter:title") == evil
    o = client.get("/oembed", params={"url": f"{BASE}/track/{track}"}).json()
    assert o["title"] == evil and "<script>" not in o["html"] and "&lt;script&gt;" in o["html"]


def _img_srcs(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Embeds ---------------------------------------------------------------------------------------
def test_embeds_may_be_framed_and_play_previews(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    track, album = s.tracks["Bohemian Rhapsody"], s.albums["A Night at the Opera"]
    add_rendition(container, track)
    page, r = crawl(client, f"/embed/track/{track}")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "x-frame-options" not in r.headers
    assert "default-src 'none'" in csp
    assert _hash(page.scripts[0]) in csp and _hash(page.styles[0]) in csp  # inline, allowed by hash
    assert "http" not in page.scripts[0]  # no external resources, data comes from the DOM
    assert not [t for t in page.tags if t in ("link", "iframe")]
    assert len(page.data_src) == 1 and page.data_src[0].startswith(f"{BASE}/stream/{track}/aac_96?")
    assert "Bohemian Rhapsody" in page.body_text and "Queen" in page.body_text
    assert client.get(page.data_src[0].removeprefix(BASE)).status_code == 200

    listing, _ = crawl(client, f"/embed/album/{album}")
    assert "Bohemian Rhapsody" in listing.body_text and "Love of My Life" in listing.body_text
    assert len(listing.data_src) == 1  # only the track with a rendition is playable
    crawl(client, f"/embed/artist/{s.artists['Queen']}")
    pl = add_playlist(container, world["ada"]["user_id"], "Embeddable", [track])
    crawl(client, f"/embed/playlist/{pl}")

    for bad in (f"/embed/user/{world['ada']['user_id']}", f"/embed/podcast/{track}", "/embed/track/nope"):
        page, r = crawl(client, bad, expect=404)
        assert "frame-ancestors *" in r.headers["content-security-policy"]  # the error shows in the frame
        assert "Not found" in page.title


# oEmbed ---------------------------------------------------------------------------------------
def test_oembed_follows_the_spec(client: TestClient, container: Container, world: dict[str, Any]) -> None:
    s: Seeded = world["seeded"]
    track, album, queen = s.tracks["Yesterday"], s.albums["Help!"], s.artists["The Beatles"]
    pl = add_playlist(container, world["ada"]["user_id"], "Oembeddable", [track])
    beatles, ada = f"{BASE}/artist/{queen}", f"{BASE}/user/{world['ada']['user_id']}"
    cases = [
        (f"{BASE}/track/{track}", "track", track, 152, "Yesterday", "The Beatles", beatles),
        (f"{BASE}/album/{album}", "album", album, 352, "Help!", "The Beatles", beatles),
        (f"{BASE}/artist/{queen}", "artist", queen, 352, "The Beatles", "The Beatles", beatles),
        (f"{BASE}/playlist/{pl}", "playlist", pl, 352, "Oembeddable", "Ada", ada),
        (f"tonearm:track:{track}", "track", track, 152, "Yesterday", "The Beatles", beatles),
        (f"https://testserver/embed/track/{track}?si=abc", "track", track, 152, "Yesterday", "The Beatles",
         beatles),
    ]  # fmt: skip
    for url, kind, id_, height, title, author, author_url in cases:
        r = client.get("/oembed", params={"url": url, "format": "json"})
        assert r.status_code == 200, (url, r.text)
        assert r.headers["content-type"] == "application/json"
        o = r.json()
        for required in ("type", "version", "html", "width", "height"):
            assert required in o, (url, required)
        assert o["type"] == "rich" and o["version"] == "1.0"
        assert (o["width"], o["height"]) == (456, height)
        assert isinstance(o["width"], int) and isinstance(o["height"], int)
        assert o["title"] == title and o["author_name"] == author and o["author_url"] == author_url
        assert o["provider_name"] == "Tonearm" and o["provider_url"] == f"{BASE}/"
        iframe = re.fullmatch(
            r'<iframe src="([^"]+)" width="(\d+)" height="(\d+)" title="[^"]*" [^<>]*></iframe>', o["html"]
        )
        assert iframe is not None, o["html"]
        assert iframe.groups() == (f"{BASE}/embed/{kind}/{id_}", "456", str(height))
        # Thumbnails come as all three fields or none.
        assert ("thumbnail_url" in o) == ("thumbnail_width" in o) == ("thumbnail_height" in o)
        assert isinstance(o.get("cache_age", 0), int)

    small = client.get("/oembed", params={"url": f"{BASE}/track/{track}", "maxwidth": 300, "maxheight": 100})
    o = small.json()
    assert (o["width"], o["height"]) == (300, 100)
    assert 'width="300" height="100"' in o["html"]
    assert o["thumbnail_width"] <= 300 and o["thumbnail_height"] <= 100  # the 64 px cover
    big = client.get("/oembed", params={"url": f"{BASE}/album/{album}", "maxwidth": 2000}).json()
    assert (big["width"], big["height"]) == (456, 352) and big["thumbnail_width"] == 640
    mid = client.get("/oembed", params={"url": f"{BASE}/album/{album}", "maxwidth": 400}).json()
    assert mid["width"] == 400 and mid["thumbnail_width"] == 300

    xml = client.get("/oembed", params={"url": f"{BASE}/track/{track}", "format": "xml"})
    assert xml.status_code == 501 and xml.json()["error"]["status"] == 501
    user = client.get("/oembed", params={"url": f"{BASE}/user/{world['ada']['user_id']}"})
    assert user.status_code == 404


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records (and refuses) any attempt to open a connection or resolve a name from Python."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access from a test of a route that must not fetch")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_oembed_never_fetches_and_refuses_foreign_or_malformed_urls(
    client: TestClient, world: dict[str, Any], no_network: list[Any]
) -> None:
    track = world["seeded"].tracks["Yesterday"]
    foreign = [
        f"https://evil.example/track/{track}",
        f"http://127.0.0.1:8080/track/{track}",
        f"http://127.0.0.1:9/track/{track}",
        f"http://169.254.169.254/latest/meta-data/{track}",
        f"http://localhost/track/{track}",
        "file:///etc/passwd",
        f"file://testserver/track/{track}",
        f"ftp://testserver/track/{track}",
        f"gopher://testserver/track/{track}",
        f"http://evil@testserver/track/{track}",
        f"http://testserver.evil.example/track/{track}",
        f"http://testserver:8081/track/{track}",
        f"http://testserver/images/{track}/640",
        "http://testserver/",
        "http://testserver/v1/me",
        f"http://testserver/track/{track[:-1]}",
        f"http://testserver/track/{track}/../../etc/passwd",
    ]
    for url in foreign:
        r = client.get("/oembed", params={"url": url})
        assert r.status_code == 404, (url, r.status_code, r.text)
        assert r.json()["error"]["status"] == 404
    malformed = [
        "",
        "   ",
        "hello",
        "/track/" + track,
        "http://[::1",
        "http://testserver:99999/track/x",
        "http://testserver:port/track/x",
        "http:///track/x",
        f"http://testserver/track/{track} extra",
        "http://testserver/\x00",
        "x" * 3000,
        "tonearm:track",
        "tonearm:podcast:" + track,
        "tonearm:track:../../etc",
    ]
    for url in malformed:
        r = client.get("/oembed", params={"url": url})
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert r.json()["error"]["status"] == 400
    assert client.get("/oembed").status_code == 400
    for params in ({"maxwidth": "0"}, {"maxwidth": "-5"}, {"maxheight": "abc"}):
        r = client.get("/oembed", params={"url": f"{BASE}/track/{track}", **params})
        assert r.status_code == 400, params
    assert no_network == []


# Resolve --------------------------------------------------------------------------------------
def test_resolve_uris_and_page_urls(client: TestClient, container: Container, world: dict[str, Any]) -> None:
    s: Seeded = world["seeded"]
    ada = world["ada"]
    track = s.tracks["Halo"]
    r = client.get("/v1/resolve", params={"uri": f"tonearm:track:{track}"})
    assert r.status_code == 200
    assert r.json() == {
        "type": "track",
        "id": track,
        "uri": f"tonearm:track:{track}",
        "href": f"{BASE}/v1/tracks/{track}",
        "external_urls": {"tonearm": f"{BASE}/track/{track}"},
        "name": "Halo",
    }
    album = s.albums["Help!"]
    assert client.get("/v1/resolve", params={"uri": f"spotify:album:{album}"}).json()["name"] == "Help!"
    assert client.get("/v1/resolve", params={"uri": f"{BASE}/album/{album}"}).json()["uri"] == (
        f"tonearm:album:{album}"
    )
    artist = client.get("/v1/resolve", params={"uri": f"tonearm:artist:{s.artists['Röyksopp']}"}).json()
    assert artist["name"] == "Röyksopp" and artist["href"] == f"{BASE}/v1/artists/{s.artists['Röyksopp']}"
    user = client.get("/v1/resolve", params={"uri": f"tonearm:user:{ada['user_id']}"}).json()
    assert user == {
        "type": "user",
        "id": ada["user_id"],
        "uri": f"tonearm:user:{ada['user_id']}",
        "href": f"{BASE}/v1/users/{ada['user_id']}",
        "external_urls": {"tonearm": f"{BASE}/user/{ada['user_id']}"},
        "name": "Ada",
    }
    pl = add_playlist(container, ada["user_id"], "Resolvable", [])
    assert client.get("/v1/resolve", params={"uri": f"tonearm:playlist:{pl}"}).json()["name"] == "Resolvable"

    for bad in (
        "",
        "tonearm:track",
        f"tonearm:podcast:{track}",
        "tonearm:track:short",
        "foo",
        "tonearm:a:b:c",
    ):
        r = client.get("/v1/resolve", params={"uri": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["message"].startswith("uri:")
    assert client.get("/v1/resolve").status_code == 400
    missing = client.get("/v1/resolve", params={"uri": f"tonearm:track:{new_id()}"})
    assert missing.status_code == 404 and missing.json()["error"]["status"] == 404
    for foreign in (f"https://evil.example/track/{track}", "file:///etc/passwd", "a:b:c"):
        assert client.get("/v1/resolve", params={"uri": foreign}).status_code == 404, foreign


# Share links ----------------------------------------------------------------------------------
def test_share_links_count_clicks_list_and_delete(
    client: TestClient, container: Container, clock: FrozenClock, world: dict[str, Any]
) -> None:
    s: Seeded = world["seeded"]
    h = world["ada"]["headers"]
    track = s.tracks["Halo"]
    r = client.post("/v1/me/shares", json={"uri": f"tonearm:track:{track}", "expires_in": 3600}, headers=h)
    assert r.status_code == 201, r.text
    share = r.json()
    code = share["code"]
    assert re.fullmatch(r"[0-9A-Za-z]{10}", code)
    now = clock.now()
    assert share == {
        "code": code,
        "url": f"{BASE}/s/{code}",
        "href": f"{BASE}/v1/me/shares/{code}",
        "uri": f"tonearm:track:{track}",
        "type": "track",
        "id": track,
        "external_urls": {"tonearm": f"{BASE}/track/{track}"},
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_at": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expired": False,
        "clicks": 0,
        "last_clicked_at": None,
        "description": None,
    }

    for _ in range(2):
        hop = client.get(f"/s/{code}", follow_redirects=False)
        assert hop.status_code == 302 and hop.headers["location"] == f"{BASE}/track/{track}"
        assert hop.headers["cache-control"] == "no-store"  # every click reaches us
    assert client.head(f"/s/{code}", follow_redirects=False).status_code == 302  # a link checker: no click
    got = client.get(f"/v1/me/shares/{code}", headers=h).json()
    assert got["clicks"] == 2 and got["last_clicked_at"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")

    # Clicks at the same moment all count.
    def click() -> None:
        for _ in range(5):
            container.sharing.follow(code)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.get(f"/v1/me/shares/{code}", headers=h).json()["clicks"] == 32

    # A page URL works as well as a URI; no expiry means none.
    album = s.albums["Help!"]
    forever = client.post("/v1/me/shares", json={"uri": f"{BASE}/album/{album}"}, headers=h).json()
    assert forever["uri"] == f"tonearm:album:{album}" and forever["expires_at"] is None
    clock.advance(1)
    third = client.post("/v1/me/shares", json={"uri": f"tonearm:user:{world['ada']['user_id']}"}, headers=h)
    assert third.status_code == 201
    listed = client.get("/v1/me/shares?limit=2", headers=h).json()
    assert listed["total"] == 3 and listed["limit"] == 2 and listed["offset"] == 0
    assert listed["items"][0]["code"] == third.json()["code"]  # newest first
    assert listed["next"] is not None and listed["previous"] is None
    rest = client.get("/v1/me/shares?limit=2&offset=2", headers=h).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert {i["code"] for i in listed["items"] + rest["items"]} == {
        code,
        forever["code"],
        third.json()["code"],
    }

    # Another user's links are not theirs to see or delete.
    bob = world["bob"]["headers"]
    assert client.get("/v1/me/shares", headers=bob).json()["total"] == 0
    assert client.get(f"/v1/me/shares/{code}", headers=bob).status_code == 404
    assert client.delete(f"/v1/me/shares/{code}", headers=bob).status_code == 404
    assert client.get("/v1/me/shares").status_code == 401

    assert client.delete(f"/v1/me/shares/{code}", headers=h).status_code == 204
    assert client.get(f"/v1/me/shares/{code}", headers=h).status_code == 404
    assert client.delete(f"/v1/me/shares/{code}", headers=h).status_code == 404
    page, _ = crawl(client, f"/s/{code}", expect=404)
    assert "Not found" in page.title
    for nonsense in ("zzzzzzzzzz", "abc", "a_b-c.d%20e", "a" * 40):
        crawl(client, f"/s/{nonsense}", expect=404)


def test_share_links_expire_with_410(
    client: TestClient, container: Container, clock: FrozenClock, world: dict[str, Any]
) -> None:
    h = world["ada"]["headers"]
    track = world["seeded"].tracks["Halo"]
    code = client.post(
        "/v1/me/shares", json={"uri": f"tonearm:track:{track}", "expires_in": 60}, headers=h
    ).json()["code"]
    clock.advance(59)
    assert client.get(f"/s/{code}", follow_redirects=False).status_code == 302
    clock.advance(1)
    page, r = crawl(client, f"/s/{code}", expect=410)
    assert page.title == "This link has expired | Tonearm"
    assert "expired on" in page.body_text
    assert r.headers["cache-control"] == "no-store"
    assert client.head(f"/s/{code}").status_code == 410
    share = client.get(f"/v1/me/shares/{code}", headers=h).json()
    assert share["expired"] is True and share["clicks"] == 1  # the refused click does not count
    assert client.get("/oembed", params={"url": f"{BASE}/s/{code}"}).status_code == 410
    assert client.get("/v1/resolve", params={"uri": f"{BASE}/s/{code}"}).status_code == 410


def test_share_links_change_note_and_expiry_in_place(
    client: TestClient, container: Container, clock: FrozenClock, world: dict[str, Any]
) -> None:
    """PATCH keeps the link (its URL is what people were sent) and changes only what it is given."""
    h = world["ada"]["headers"]
    track = world["seeded"].tracks["Halo"]
    made = client.post(
        "/v1/me/shares",
        json={"uri": f"tonearm:track:{track}", "expires_in": 60, "description": "  for Bob  "},
        headers=h,
    ).json()
    code = made["code"]
    assert made["description"] == "for Bob"
    r = client.patch(f"/v1/me/shares/{code}", json={"expires_in": 7200}, headers=h)
    assert r.status_code == 200, r.text
    later = clock.now() + dt.timedelta(hours=2)
    assert r.json()["expires_at"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert r.json()["description"] == "for Bob" and r.json()["url"] == made["url"]
    clock.advance(120)  # past the first expiry: the link still leads on
    assert client.get(f"/s/{code}", follow_redirects=False).status_code == 302
    r = client.patch(f"/v1/me/shares/{code}", json={"never_expires": True, "description": ""}, headers=h)
    assert r.json()["expires_at"] is None and r.json()["description"] is None
    # Someone else's link is not there for them; bad values are refused in words.
    bob = world["bob"]["headers"]
    assert client.patch(f"/v1/me/shares/{code}", json={"description": "mine"}, headers=bob).status_code == 404
    bad = client.patch(f"/v1/me/shares/{code}", json={"expires_in": 5}, headers=h)
    assert bad.status_code == 400 and "expires_in" in bad.json()["error"]["message"]
    assert (
        client.patch(f"/v1/me/shares/{code}", json={"description": "x" * 301}, headers=h).status_code == 400
    )
    assert client.patch("/v1/me/shares/nope", json={"description": "x"}, headers=h).status_code == 404


def test_share_link_bad_input_and_rate_limit(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    h = world["ada"]["headers"]
    track = world["seeded"].tracks["Halo"]
    uri = f"tonearm:track:{track}"
    cases: list[tuple[Any, int, str]] = [
        ({"uri": uri, "expires_in": 59}, 400, "expires_in: must be between 60 and 31536000"),
        ({"uri": uri, "expires_in": 31_536_001}, 400, "expires_in: must be between 60 and 31536000"),
        ({"uri": uri, "expires_in": "soon"}, 400, "expires_in"),
        ({"uri": uri, "expires_in": 60.5}, 400, "expires_in"),
        ({}, 400, "uri"),
        ({"uri": ""}, 400, "uri: missing"),
        ({"uri": "tonearm:track:nope"}, 400, "uri: invalid track id 'nope'"),
        ({"uri": f"tonearm:podcast:{track}"}, 400, "uri: unknown type 'podcast'"),
        ({"uri": uri, "colour": "red"}, 400, "colour"),
        ({"uri": f"tonearm:track:{new_id()}"}, 404, "not found"),
        ({"uri": f"https://evil.example/track/{track}"}, 404, "not a Tonearm page"),
        ("not json", 400, ""),
    ]
    for body, status, message in cases:
        r = (
            client.post("/v1/me/shares", content=body, headers=h | {"content-type": "application/json"})
            if isinstance(body, str)
            else client.post("/v1/me/shares", json=body, headers=h)
        )
        assert r.status_code == status, (body, r.status_code, r.text)
        assert message in r.json()["error"]["message"], (body, r.text)
    code = client.post("/v1/me/shares", json={"uri": uri}, headers=h).json()["code"]
    r = client.post("/v1/me/shares", json={"uri": f"{BASE}/s/{code}"}, headers=h)
    assert r.status_code == 400 and "already a share link" in r.json()["error"]["message"]
    assert client.post("/v1/me/shares", json={"uri": uri}).status_code == 401

    container.sharing.shares_per_hour = 2
    assert client.post("/v1/me/shares", json={"uri": uri}, headers=h).status_code == 201
    limited = client.post("/v1/me/shares", json={"uri": uri}, headers=h)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "share link limit reached (2 per hour)" in limited.json()["error"]["message"]
    bob = client.post("/v1/me/shares", json={"uri": uri}, headers=world["bob"]["headers"])
    assert bob.status_code == 201  # per user


# Private objects ------------------------------------------------------------------------------
def test_private_objects_never_leak_through_any_public_route(
    client: TestClient, container: Container, world: dict[str, Any], no_network: list[Any]
) -> None:
    s: Seeded = world["seeded"]
    ada, bob = world["ada"], world["bob"]
    secret_track = s.tracks["Secret Demo"]  # Ada's private upload...
    secret_album = s.albums["Demos"]  # ...alone on its album...
    secret_artist = s.artists["Bedroom Artist"]  # ...by an artist with nothing public
    add_rendition(container, secret_track)
    hidden = add_playlist(
        container, ada["user_id"], "Hidden Mixtape", [s.tracks["Halo"]], public=False, description="shh"
    )
    objects = [
        ("track", secret_track),
        ("album", secret_album),
        ("artist", secret_artist),
        ("playlist", hidden),
    ]
    secrets = ("Secret Demo", "Demos", "Bedroom Artist", "Hidden Mixtape", "shh")

    def no_secret(text: str, where: str) -> None:
        for word in secrets:
            assert word not in text, (where, word)

    # A public playlist of Ada's that holds her private upload shows none of it.
    mixed = add_playlist(container, ada["user_id"], "Mixed Bag", [s.tracks["Halo"], secret_track])
    r = client.get(f"/playlist/{mixed}")
    assert r.status_code == 200
    no_secret(r.text, "public playlist page")
    no_secret(client.get(f"/embed/playlist/{mixed}").text, "public playlist embed")
    no_secret(client.get(f"/user/{ada['user_id']}").text, "owner's profile")
    no_secret(client.get(f"/artist/{s.artists['Beyoncé']}").text, "artist page")

    unknown = {"track": new_id(), "album": new_id(), "artist": new_id(), "playlist": new_id()}
    anyone: list[dict[str, str]] = [{}, bob["headers"], ada["headers"]]
    for kind, id_ in objects:
        for path in (f"/{kind}/{id_}", f"/embed/{kind}/{id_}"):
            for headers in anyone:  # pages are the same for everyone
                r = client.get(path, headers=headers)
                assert r.status_code == 404, (path, r.status_code)
                assert r.headers["content-type"].startswith("text/html")
                no_secret(r.text, path)
            # ...and exactly like an id that never existed (nothing to probe).
            missing = client.get(path.replace(id_, unknown[kind])).text
            assert client.get(path).text.replace(id_, "X") == missing.replace(unknown[kind], "X"), path
        for url in (f"{BASE}/{kind}/{id_}", f"tonearm:{kind}:{id_}", f"{BASE}/embed/{kind}/{id_}"):
            r = client.get("/oembed", params={"url": url})
            assert r.status_code == 404, (url, r.text)
            no_secret(r.text, url)
        uri = f"tonearm:{kind}:{id_}"
        for headers in anyone[:2]:
            r = client.get("/v1/resolve", params={"uri": uri}, headers=headers)
            assert r.status_code == 404, (uri, r.text)
            assert r.json() == {"error": {"status": 404, "message": f"{kind} {id_} not found"}}
        mine = client.get("/v1/resolve", params={"uri": uri}, headers=ada["headers"])
        assert mine.status_code == 200, uri  # the owner resolves her own
        # Nobody can make a share link to it: the owner is told why, others see nothing.
        r = client.post("/v1/me/shares", json={"uri": uri}, headers=ada["headers"])
        assert r.status_code == 403, (uri, r.text)
        assert r.json()["error"]["message"] == f"this {kind} is private: make it public to share it"
        r = client.post("/v1/me/shares", json={"uri": uri}, headers=bob["headers"])
        assert r.status_code == 404 and r.json()["error"]["message"] == f"{kind} {id_} not found"
    assert client.get("/v1/me/shares", headers=ada["headers"]).json()["total"] == 0

    # A playlist shared while public, then made private: the link leads to a 404 page.
    later = add_playlist(container, ada["user_id"], "Hidden Mixtape", [s.tracks["Halo"]])
    code = client.post(
        "/v1/me/shares", json={"uri": f"tonearm:playlist:{later}"}, headers=ada["headers"]
    ).json()["code"]
    assert client.get(f"/s/{code}", follow_redirects=False).status_code == 302
    set_public(container, later, False)
    r = client.get(f"/s/{code}", follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    no_secret(r.text, "short link")
    assert client.head(f"/s/{code}").status_code == 404
    assert client.get(f"/playlist/{later}").status_code == 404
    assert client.get("/oembed", params={"url": f"{BASE}/s/{code}"}).status_code == 404
    assert (
        client.get("/v1/resolve", params={"uri": f"{BASE}/s/{code}"}, headers=bob["headers"]).status_code
        == 404
    )
    assert client.get(f"/v1/me/shares/{code}", headers=ada["headers"]).json()["clicks"] == 1
    # The preview of a private track is never handed out: no page, embed or oEmbed shows one.
    assert no_network == []


def test_routes_leave_the_app_and_api_alone(client: TestClient, world: dict[str, Any]) -> None:
    track = world["seeded"].tracks["Halo"]
    assert client.get(f"/v1/tracks/{track}").json()["external_urls"]["tonearm"] == f"{BASE}/track/{track}"
    index = client.get("/")
    assert index.status_code == 200 and "Tonearm" in index.text
    # The player refuses to be framed (only /embed/... may be).
    assert index.headers["x-frame-options"] == "DENY"
    csp = index.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/track").status_code == 404
    page, _ = crawl(client, "/track/not-an-id", expect=404)
    assert "Not found" in page.title
    slashed = client.get(f"/track/{track}/")  # the router's trailing-slash redirect
    assert slashed.status_code == 200 and slashed.url.path == f"/track/{track}"
