"""Server-rendered HTML: the public pages (Open Graph and Twitter card tags for crawlers, readable
without JavaScript), the embeddable player, and error pages.

Jinja2 with autoescape on: every title, name and description is text, so a track called
`<script>` shows as those characters. The pages load nothing from elsewhere; their one style
sheet and the embed's one script are inline and allowed by hash in the Content-Security-Policy.
Pages refuse to be framed; embeds may be framed by anyone (that is what they are for).
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup

from tonearm.domains.sharing.service import (
    EMBED_HEIGHT,
    EMBED_LIST_LIMIT,
    EMBED_WIDTH,
    PublicObject,
    TrackLine,
)

OG_TYPES = {
    "track": "music.song",
    "album": "music.album",
    "artist": "profile",  # Open Graph has no musician type; music:musician points at profiles
    "playlist": "music.playlist",
    "user": "profile",
}
KIND_LABELS = {
    "track": "Song",
    "album": "Album",
    "artist": "Artist",
    "playlist": "Playlist",
    "user": "Profile",
}
PAGE_CACHE = "public, max-age=60"  # short: an item made private leaves shared caches within a minute

_CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;
background:#121212;color:#eee}a{color:#8fd3ff}main{max-width:860px;margin:0 auto;padding:24px}
.head{display:flex;gap:24px;align-items:flex-end;flex-wrap:wrap}.head img{width:232px;height:232px;
object-fit:cover;border-radius:6px;background:#333}.kind{text-transform:uppercase;font-size:12px;
letter-spacing:.1em;color:#aaa;margin:0}h1{margin:.2em 0;font-size:40px;line-height:1.1;
overflow-wrap:anywhere}.muted{color:#aaa}.open{display:inline-block;margin-top:12px;padding:10px 22px;
border-radius:999px;background:#1db954;color:#000;font-weight:600;text-decoration:none}
audio{width:100%;margin-top:20px}ol{padding-left:2em}li{padding:6px 0;border-bottom:1px solid #222}
.dur{float:right;color:#aaa}footer{text-align:center;padding:24px;color:#777}
""".strip()

_EMBED_CSS = """
*{box-sizing:border-box}html,body{margin:0;height:100%}body{font:14px/1.4 system-ui,-apple-system,
"Segoe UI",sans-serif;background:#282828;color:#fff;overflow:hidden;display:flex;flex-direction:column}
.top{display:flex;gap:12px;align-items:center;padding:12px}.top img{width:96px;height:96px;
border-radius:6px;object-fit:cover;background:#444;flex:none}.meta{flex:1;min-width:0}
.meta a{color:#fff;text-decoration:none}.t{font-weight:700;font-size:16px;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;display:block}.by{color:#bbb;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.brand{font-size:12px;color:#bbb!important}button{flex:none;width:48px;height:48px;border-radius:50%;
border:0;background:#fff;color:#000;font-size:18px;cursor:pointer}button:disabled{opacity:.4;cursor:default}
ol{list-style:none;margin:0;padding:0 12px 12px;overflow-y:auto;flex:1}li{display:flex;gap:8px;
padding:6px 8px;border-radius:4px;cursor:pointer}li:hover,li.on{background:#3e3e3e}li.off{cursor:default;
color:#888}.n{width:1.5em;color:#bbb}.name{flex:1;min-width:0;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}.d{color:#bbb}
""".strip()

# Reads its data from the DOM (never from template values), so it is one fixed string with one hash.
_EMBED_JS = """
(function () {
  var audio = document.getElementById("audio"), button = document.getElementById("play");
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-src]")), current = null;
  function show(playing) {
    button.textContent = playing ? "\\u275a\\u275a" : "\\u25b6";
    button.setAttribute("aria-label", playing ? "Pause" : "Play");
  }
  function load(row) {
    rows.forEach(function (r) { r.classList.toggle("on", r === row); });
    current = row; audio.src = row.getAttribute("data-src");
  }
  function play() { var p = audio.play(); if (p && p.catch) p.catch(function () { show(false); }); }
  button.addEventListener("click", function () {
    if (!current && rows.length) load(rows[0]);
    if (audio.paused) play(); else audio.pause();
  });
  rows.forEach(function (row) {
    if (row.tagName === "LI") row.addEventListener("click", function () { load(row); play(); });
  });
  audio.addEventListener("play", function () { show(true); });
  audio.addEventListener("pause", function () { show(false); });
  audio.addEventListener("ended", function () {
    var i = rows.indexOf(current);
    if (i >= 0 && i + 1 < rows.length) { load(rows[i + 1]); play(); } else show(false);
  });
})();
""".strip()

_PAGE = """<!doctype html>
<html lang="en" prefix="og: https://ogp.me/ns# music: https://ogp.me/ns/music# profile: https://ogp.me/ns/profile#">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ o.name }}{% if byline %} · {{ byline }}{% endif %} | Tonearm</title>
<meta name="description" content="{{ o.description }}">
<link rel="canonical" href="{{ o.url }}">
{% for prop, value in og %}<meta property="{{ prop }}" content="{{ value }}">
{% endfor %}{% for name, value in twitter %}<meta name="{{ name }}" content="{{ value }}">
{% endfor %}{% if oembed -%}
<link rel="alternate" type="application/json+oembed" href="{{ oembed }}"
 title="{{ o.name }}">
{% endif %}<style>{{ css }}</style>
</head>
<body>
<main>
<div class="head">
{% if o.image %}<img src="{{ o.image.url }}" width="{{ o.image.width }}" height="{{ o.image.height }}"
 alt="{{ o.name }}">{% endif %}
<div>
<p class="kind">{{ label }}</p>
<h1>{{ o.name }}</h1>
<p class="muted">
{%- for a in o.artists %}{% if not loop.first %}, {% endif -%}
<a href="{{ a.url }}">{{ a.name }}</a>{% endfor %}
{%- if o.owner %}<a href="{{ o.owner.url }}">{{ o.owner.name }}</a>{% endif %}
{%- if o.album %} · <a href="{{ o.album.url }}">{{ o.album.name }}</a>{% endif %}
{%- if o.release_date %} · {{ o.release_date[:4] }}{% endif %}
{%- if o.kind not in ("track", "user") %} · {{ o.total_tracks }} song
{{- "" if o.total_tracks == 1 else "s" }}{% endif %}
{%- if o.duration_ms %} · {{ duration(o.duration_ms) }}{% endif %}</p>
{% if o.kind == "playlist" and o.description %}<p class="muted">{{ o.description }}</p>{% endif %}
<a class="open" href="{{ player }}">Open in Tonearm</a>
</div>
</div>
{% if o.preview %}<audio controls preload="none" src="{{ o.preview.url }}"></audio>
{% endif %}{% if o.kind != "track" and o.tracks %}<h2>{{ "Popular" if o.kind == "artist" else "Tracks" }}</h2>
<ol>
{% for t in o.tracks %}<li><a href="{{ t.url }}">{{ t.name }}</a>
{%- if t.explicit %} <span class="muted">E</span>{% endif %}
<span class="dur">{{ duration(t.duration_ms) }}</span><br><span class="muted">
{%- for a in t.artists %}{% if not loop.first %}, {% endif -%}
<a href="{{ a.url }}">{{ a.name }}</a>{% endfor %}
{%- if o.kind != "album" and t.album %} · <a href="{{ t.album.url }}">{{ t.album.name }}</a>{% endif -%}
</span></li>
{% endfor %}</ol>
{% if o.total_tracks > o.tracks|length and o.kind != "artist" -%}
<p class="muted">and {{ o.total_tracks - o.tracks|length }} more in Tonearm</p>
{% endif %}
{% endif %}{% if o.kind == "user" %}<h2>Public playlists</h2>
{% if o.playlists %}<ul>
{% for p in o.playlists %}<li><a href="{{ p.url }}">{{ p.name }}</a></li>
{% endfor %}</ul>{% else %}<p class="muted">No public playlists yet.</p>{% endif %}
{% endif %}</main>
<footer><a href="{{ home }}">Tonearm</a></footer>
</body>
</html>
"""

_EMBED = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ o.name }} | Tonearm</title>
<style>{{ css }}</style>
</head>
<body>
<div class="top">
{% if o.image %}<img src="{{ (o.images|selectattr("width", "le", 300)|first or o.image).url }}"
 alt="">{% endif %}
<div class="meta">
<a class="t" href="{{ o.url }}" target="_blank" rel="noopener">{{ o.name }}</a>
<div class="by">{{ byline }}</div>
<a class="brand" href="{{ player }}" target="_blank" rel="noopener">Open in Tonearm</a>
</div>
<button id="play" type="button" aria-label="Play"{% if not playable %} disabled{% endif %}>&#9654;</button>
</div>
<audio id="audio" preload="none"></audio>
{% if o.kind == "track" %}{% if o.preview %}<span hidden data-src="{{ o.preview.url }}"></span>{% endif %}
{% else %}<ol>
{% for t in lines %}<li{% if t.preview %} data-src="{{ t.preview.url }}"{% else %} class="off"{% endif %}>
<span class="n">{{ loop.index }}</span><span class="name">{{ t.name }}
<span class="d">· {{ t.artists|map(attribute="name")|join(", ") }}</span></span>
<span class="d">{{ duration(t.duration_ms) }}</span></li>
{% endfor %}</ol>
{% endif %}<script>{{ script }}</script>
</body>
</html>
"""

_ERROR = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }} | Tonearm</title>
<style>{{ css }}</style>
</head>
<body>
<main>
<p class="kind">{{ status }}</p>
<h1>{{ title }}</h1>
<p class="muted">{{ message }}</p>
<a class="open" href="{{ home }}" target="_top">Go to Tonearm</a>
</main>
</body>
</html>
"""

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader({"page.html": _PAGE, "embed.html": _EMBED, "error.html": _ERROR}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def duration(ms: int) -> str:
    s = round(ms / 1000)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _byline(o: PublicObject) -> str:
    if o.artists:
        return ", ".join(a.name for a in o.artists)
    if o.owner is not None:
        return o.owner.name
    return KIND_LABELS[o.kind]


class Pages:
    """Renders pages and embeds for one server (its public URL makes every link absolute)."""

    def __init__(self, public_url: str) -> None:
        self.base = public_url.rstrip("/")
        origin = _origin(self.base)
        common = (
            f"default-src 'none'; img-src 'self' {origin}; media-src *; base-uri 'none'; form-action 'none'"
        )
        self.page_headers = {
            "Content-Security-Policy": f"{common}; style-src {_hash(_CSS)}; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        self.embed_headers = {
            "Content-Security-Policy": (
                f"{common}; style-src {_hash(_EMBED_CSS)}; script-src {_hash(_EMBED_JS)}; frame-ancestors *"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        # Error pages use the page style; an embed's error page must stay frameable.
        self.embed_error_headers = self.embed_headers | {
            "Content-Security-Policy": f"{common}; style-src {_hash(_CSS)}; frame-ancestors *"
        }

    def page(self, o: PublicObject, player_url: str) -> str:
        return _ENV.get_template("page.html").render(
            o=o,
            byline=_byline(o) if o.kind not in ("artist", "user") else "",
            label=KIND_LABELS[o.kind],
            og=self.open_graph(o),
            twitter=self.twitter(o),
            oembed=self.oembed_link(o),
            player=player_url,
            home=f"{self.base}/",
            duration=duration,
            css=Markup(_CSS),  # noqa: S704 (a constant of this module, allowed by its hash)
        )

    def embed(self, o: PublicObject, player_url: str) -> str:
        lines = o.tracks[:EMBED_LIST_LIMIT]
        return _ENV.get_template("embed.html").render(
            o=o,
            lines=lines,
            byline=_byline(o),
            playable=o.preview is not None,
            player=player_url,
            duration=duration,
            css=Markup(_EMBED_CSS),  # noqa: S704 (constants of this module, allowed by their hashes)
            script=Markup(_EMBED_JS),  # noqa: S704
        )

    def error(self, status: int, message: str) -> str:
        title = {404: "Not found", 410: "This link has expired"}.get(status, "Something is not right")
        return _ENV.get_template("error.html").render(
            status=status,
            title=title,
            message=message,
            home=f"{self.base}/",
            css=Markup(_CSS),  # noqa: S704 (a constant of this module)
        )

    def oembed_link(self, o: PublicObject) -> str | None:
        if o.kind not in EMBED_HEIGHT:
            return None
        return f"{self.base}/oembed?url={quote(o.url, safe='')}&format=json"

    def open_graph(self, o: PublicObject) -> list[tuple[str, str]]:
        """`og:*` and `music:*` properties, in the order the Open Graph protocol lists them."""
        tags = [
            ("og:site_name", "Tonearm"),
            ("og:type", OG_TYPES[o.kind]),
            ("og:title", o.name),
            ("og:description", o.description),
            ("og:url", o.url),
        ]
        if o.image is not None:
            tags += [
                ("og:image", o.image.url),
                ("og:image:width", str(o.image.width)),
                ("og:image:height", str(o.image.height)),
                ("og:image:alt", o.name),
            ]
        if o.preview is not None:
            tags += [("og:audio", o.preview.url), ("og:audio:type", o.preview.content_type)]
            if o.preview.url.startswith("https:"):
                tags.append(("og:audio:secure_url", o.preview.url))
        if o.kind == "track":
            tags.append(("music:duration", str(round((o.duration_ms or 0) / 1000))))
            if o.album is not None:
                tags += [
                    ("music:album", o.album.url),
                    ("music:album:disc", str(o.disc_number)),
                    ("music:album:track", str(o.track_number)),
                ]
            tags += [("music:musician", a.url) for a in o.artists]
        elif o.kind == "album":
            tags += [("music:musician", a.url) for a in o.artists]
            if o.release_date and len(o.release_date) == 10:
                tags.append(("music:release_date", o.release_date))
            tags += _songs(o.tracks, numbered=False)
        elif o.kind == "playlist":
            tags += _songs(o.tracks, numbered=True)
            if o.owner is not None:
                tags.append(("music:creator", o.owner.url))
        return tags

    def twitter(self, o: PublicObject) -> list[tuple[str, str]]:
        embeddable = o.kind in EMBED_HEIGHT
        tags = [
            ("twitter:card", "player" if embeddable else "summary"),
            ("twitter:title", o.name),
            ("twitter:description", o.description),
        ]
        if o.image is not None:
            tags += [("twitter:image", o.image.url), ("twitter:image:alt", o.name)]
        if embeddable:
            tags += [
                ("twitter:player", f"{self.base}/embed/{o.kind}/{o.id}"),
                ("twitter:player:width", str(EMBED_WIDTH)),
                ("twitter:player:height", str(EMBED_HEIGHT[o.kind])),
            ]
            if o.preview is not None:
                tags += [
                    ("twitter:player:stream", o.preview.url),
                    ("twitter:player:stream:content_type", o.preview.content_type),
                ]
        return tags


def _songs(lines: tuple[TrackLine, ...], *, numbered: bool) -> list[tuple[str, str]]:
    """`music:song` with its structured properties right after it, as the protocol requires."""
    out: list[tuple[str, str]] = []
    for n, t in enumerate(lines, start=1):
        out.append(("music:song", t.url))
        if not numbered:
            out.append(("music:song:disc", str(t.disc_number)))
        out.append(("music:song:track", str(n if numbered else t.track_number)))
    return out
