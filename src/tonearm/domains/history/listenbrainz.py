"""A ListenBrainz-compatible listen submission API, so scrobblers can report to Tonearm.

Apps and browser extensions that scrobble to ListenBrainz (Web Scrobbler, Pano Scrobbler,
Navidrome-style clients, `liblistenbrainz`) take a custom API root: pointed at Tonearm with one
of the listener's API keys as the token, their listens land in the listener's history.

- `POST /1/submit-listens` (`Authorization: Token <API key>`) with ListenBrainz's JSON:
  `listen_type` single | playing_now | import and a `payload` of listens.
- `GET /1/validate-token` (the token in `Authorization: Token ...` or `?token=`).

Errors are ListenBrainz's shape, `{"code": 400, "error": "..."}`. A batch is validated whole,
as ListenBrainz does: one bad listen refuses the batch.

Each listen is matched to a track the listener can see: by a Tonearm id when the scrobbler
passes one (`additional_info.tonearm_track_id`, a `tonearm:track:<id>` URI, or an `origin_url`
on this server), else by ISRC, else by track and artist name compared case- and
space-insensitively (the release name breaks ties). A listen that matches nothing is not stored
(Tonearm's history is of its own catalog); the answer counts it under `unmatched`, beside
ListenBrainz's `"status": "ok"`, with `accepted` and `duplicates`. A listen of something the
server counted already (its own web player, a Subsonic app) is a duplicate and adds nothing:
see HistoryService.add_listens.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tonearm.bootstrap import Container
from tonearm.domains.accounts.credentials import FAILURES_PER_MINUTE, Caller, failures_key
from tonearm.domains.catalog.service import name_key, tracks_visible_to
from tonearm.domains.catalog.tables import albums, artists, track_artists, tracks
from tonearm.domains.history.service import ImportedPlay
from tonearm.kernel.errors import TonearmError

MAX_LISTENS = 1000  # ListenBrainz's MAX_LISTENS_PER_REQUEST
MAX_BODY_BYTES = 10_240 * MAX_LISTENS  # ListenBrainz's per-listen size times the listens
LISTEN_MINIMUM_TS = 1033430400  # ListenBrainz refuses listens before 2002-10-01
MAX_NAME = 1000
LISTEN_TYPES = ("single", "playing_now", "import")
_DAY_MS = 24 * 3600 * 1000
_ID = r"([0-9A-Za-z]{22})(?![0-9A-Za-z])"
_URI_RE = re.compile(r"^tonearm:track:" + _ID)
_FEATURING = re.compile(r"\s+(?:feat\.?|ft\.?|featuring|&|x|with)\s+|,\s*|;\s*", re.IGNORECASE)


class ListenBrainzError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _error(code: int, message: str) -> Response:
    return _answer({"code": code, "error": message}, code)


def _token(request: Request, *, query: bool) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "token" and value.strip():
            return value.strip()
        return ""  # present but not a token: invalid, not missing
    return request.query_params.get("token") if query else None


def _c(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


async def _authenticate(c: Container, request: Request, token: str) -> Caller | Response | None:
    """The key's owner, None for a wrong key, or a 429 for an address that failed too often (the
    same budget as Subsonic sign-ins: see credentials.FAILURES_PER_MINUTE)."""
    limit_key = failures_key(request.client.host if request.client else "?")
    wait = c.limiter.retry_after(limit_key, FAILURES_PER_MINUTE, 60)
    if wait > 0:
        response = _error(429, f"Too many invalid tokens from this address; try again in {int(wait) + 1} s.")
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    caller = await run_in_threadpool(c.credentials.authenticate_key, token)
    if caller is None:
        c.limiter.hit(limit_key)
    return caller


async def validate_token(request: Request) -> Response:
    c = _c(request)
    token = _token(request, query=True)
    if token is None:
        return _error(400, "You need to provide an Authorization token.")
    caller = await _authenticate(c, request, token)
    if isinstance(caller, Response):
        return caller
    if caller is None:
        return _answer({"code": 200, "message": "Token invalid.", "valid": False})
    return _answer({"code": 200, "message": "Token valid.", "valid": True, "user_name": caller.username})


async def submit_listens(request: Request) -> Response:
    c = _c(request)
    token = _token(request, query=False)
    if token is None:
        return _error(401, "You need to provide an Authorization header.")
    caller = await _authenticate(c, request, token)
    if isinstance(caller, Response):
        return caller
    if caller is None:
        return _error(401, "Invalid authorization token.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _error(413, f"Payload too large: at most {MAX_BODY_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"Payload too large: at most {MAX_BODY_BYTES} bytes.")
    try:
        listen_type, listens = parse_submission(bytes(body), c.clock.now())
        result = await run_in_threadpool(_submit, c, caller, listen_type, listens)
    except ListenBrainzError as err:
        return _error(err.code, err.message)
    except TonearmError as err:
        return _error(err.status if 400 <= err.status < 500 else 400, err.message)
    return _answer({"status": "ok", **result})


# Parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listen:
    """One listen of a submission, validated."""

    listened_at: int | None  # Unix seconds; None for playing_now
    artist_name: str
    track_name: str
    release_name: str | None
    additional_info: dict[str, Any]


def _bad(message: str) -> ListenBrainzError:
    return ListenBrainzError(400, message)


def parse_submission(body: bytes, now: dt.datetime) -> tuple[str, list[Listen]]:
    """The listen type and the listens of a submission, or ListenBrainzError(400) saying what is
    wrong, with ListenBrainz's rules: one listen for single and playing_now, a `listened_at` for
    every listen but playing_now, an artist and a track name for each."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _bad("Cannot parse JSON document: the body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise _bad("Invalid JSON document submitted: expected an object.")
    listen_type = doc.get("listen_type")
    if listen_type not in LISTEN_TYPES:
        raise _bad(f"JSON document requires a valid listen_type key ({', '.join(LISTEN_TYPES)}).")
    payload = doc.get("payload")
    if not isinstance(payload, list) or not payload:
        raise _bad("JSON document does not contain a non-empty payload list.")
    if listen_type != "import" and len(payload) != 1:
        raise _bad(f"JSON document should contain exactly one listen for listen_type {listen_type}.")
    if len(payload) > MAX_LISTENS:
        raise _bad(f"Too many listens: at most {MAX_LISTENS} per request.")
    latest = int(now.timestamp()) + 600
    listens = []
    for n, item in enumerate(payload):
        where = f"listen {n}" if len(payload) > 1 else "the listen"
        if not isinstance(item, dict):
            raise _bad(f"Invalid JSON document submitted: {where} is not an object.")
        meta = item.get("track_metadata")
        if not isinstance(meta, dict):
            raise _bad(f"JSON document does not contain top level track_metadata dict ({where}).")
        at = item.get("listened_at")
        if listen_type == "playing_now":
            if at is not None:
                raise _bad("JSON document must not contain listened_at while submitting playing_now.")
        elif at is None:
            raise _bad(f"JSON document must contain the key listened_at at the top level ({where}).")
        elif not isinstance(at, int) or isinstance(at, bool):
            raise _bad(f"JSON document must contain an int value for listened_at ({where}).")
        elif at < LISTEN_MINIMUM_TS:
            raise _bad(
                f"Value for key listened_at is too low. listened_at timestamp should be greater than "
                f"{LISTEN_MINIMUM_TS} (2002-10-01 00:00:00 UTC) ({where})."
            )
        elif at > latest:
            raise _bad(f"Value for key listened_at is too high: it is in the future ({where}).")
        names = {}
        for key in ("artist_name", "track_name"):
            value = meta.get(key)
            if not isinstance(value, str) or not value.strip():
                raise _bad(f"JSON document does not contain required track_metadata.{key} ({where}).")
            if len(value) > MAX_NAME:
                raise _bad(f"track_metadata.{key} is longer than {MAX_NAME} characters ({where}).")
            names[key] = value
        release = meta.get("release_name")
        if release is not None and not isinstance(release, str):
            raise _bad(f"track_metadata.release_name must be a string ({where}).")
        info = meta.get("additional_info") or {}
        if not isinstance(info, dict):
            raise _bad(f"track_metadata.additional_info must be an object ({where}).")
        listens.append(Listen(at, names["artist_name"], names["track_name"], release or None, info))
    return listen_type, listens


# Storing ---------------------------------------------------------------------------------------


def _submit(c: Container, caller: Caller, listen_type: str, listens: list[Listen]) -> dict[str, int]:
    matcher = TrackMatcher(c, caller.user_id)
    matched = [(listen, matcher.match(listen)) for listen in listens]
    unmatched = sum(1 for _, found in matched if found is None)
    if listen_type == "playing_now":
        listen, found = matched[0]
        if found is not None:
            info = listen.additional_info
            client = info.get("submission_client") or info.get("media_player") or "ListenBrainz"
            c.history.set_now_playing(caller.user_id, found[0], str(client), c.clock.now())
        return {"accepted": len(listens) - unmatched, "duplicates": 0, "unmatched": unmatched}
    plays = []
    for listen, found in matched:
        if found is None:
            continue
        assert listen.listened_at is not None
        track_id, duration_ms = found
        plays.append(
            ImportedPlay(
                track_id,
                dt.datetime.fromtimestamp(listen.listened_at, dt.UTC),
                _ms_played(listen.additional_info, duration_ms),
            )
        )
    result = c.history.add_listens(caller.user_id, plays)
    return {"accepted": result.added, "duplicates": result.duplicates, "unmatched": unmatched}


def _ms_played(info: dict[str, Any], track_ms: int) -> int:
    """How long the listen lasted, as the scrobbler says (`duration_ms`, `duration` in s), else
    the track's length."""
    for key, scale in (("duration_ms", 1), ("duration", 1000)):
        value = info.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value * scale <= _DAY_MS:
            return int(value * scale)
    return track_ms


class TrackMatcher:
    """Finds the track a listen is of, among those the listener can see; remembers answers for
    the batch (an import repeats the same songs)."""

    def __init__(self, c: Container, user_id: str) -> None:
        self.c = c
        self.user_id = user_id
        self.base = c.settings.public_url.rstrip("/")
        self._seen: dict[tuple[str, str, str], tuple[str, int] | None] = {}

    def _visible(self) -> sa.ColumnElement[bool]:
        return tracks_visible_to(self.user_id)

    def match(self, listen: Listen) -> tuple[str, int] | None:
        """(track id, duration in ms) or None."""
        info = listen.additional_info
        with self.c.db.read() as conn:
            track_id = self._tonearm_id(info)
            if track_id is not None:
                row = conn.execute(
                    sa.select(tracks.c.id, tracks.c.duration_ms).where(
                        tracks.c.id == track_id, self._visible()
                    )
                ).first()
                if row is not None:
                    return row.id, int(row.duration_ms or 0)
            isrc = info.get("isrc")
            if isinstance(isrc, str) and 0 < len(isrc) <= 20:
                row = conn.execute(
                    sa.select(tracks.c.id, tracks.c.duration_ms)
                    .where(tracks.c.isrc == isrc.strip().upper(), self._visible())
                    .order_by(tracks.c.created_at, tracks.c.id)
                    .limit(1)
                ).first()
                if row is not None:
                    return row.id, int(row.duration_ms or 0)
            key = (
                name_key(listen.artist_name),
                name_key(listen.track_name),
                name_key(listen.release_name or ""),
            )
            if key not in self._seen:
                self._seen[key] = self._by_names(conn, *key)
            return self._seen[key]

    def _tonearm_id(self, info: dict[str, Any]) -> str | None:
        direct = info.get("tonearm_track_id")
        if isinstance(direct, str) and re.fullmatch(r"[0-9A-Za-z]{22}", direct):
            return direct
        for field in ("track_uri", "tonearm_uri", "origin_url"):
            value = info.get(field)
            if not isinstance(value, str) or len(value) > 500:
                continue
            m = _URI_RE.match(value)
            if m is None and value.startswith(self.base + "/"):
                m = re.search(r"/track/" + _ID, value)
            if m is not None:
                return m.group(1)
        return None

    def _by_names(self, conn: sa.Connection, artist: str, title: str, release: str) -> tuple[str, int] | None:
        # The artist as named, else the first of several credited ("A feat. B", "A, B", "A & B").
        candidates = [artist]
        first = _FEATURING.split(artist, maxsplit=1)[0].strip()
        if first and first != artist:
            candidates.append(first)
        for name in candidates:
            artist_ids = list(
                conn.execute(sa.select(artists.c.id).where(artists.c.name_key == name[:500])).scalars()
            )
            if not artist_ids:
                continue
            credited = sa.select(track_artists.c.track_id).where(track_artists.c.artist_id.in_(artist_ids))
            rows = conn.execute(
                sa.select(tracks.c.id, tracks.c.title, tracks.c.duration_ms, albums.c.name.label("album"))
                .join(albums, albums.c.id == tracks.c.album_id)
                .where(
                    self._visible(),
                    sa.or_(tracks.c.id.in_(credited), albums.c.artist_id.in_(artist_ids)),
                )
                .order_by(tracks.c.created_at, tracks.c.id)
            ).all()
            same = [r for r in rows if name_key(r.title) == title]
            if same:
                best = next((r for r in same if release and name_key(r.album) == release), same[0])
                return best.id, int(best.duration_ms or 0)
        return None


ROUTES = [
    Route("/1/submit-listens", submit_listens, methods=["POST"]),
    Route("/1/validate-token", validate_token, methods=["GET"]),
]
