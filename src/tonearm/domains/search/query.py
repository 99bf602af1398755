"""What a listener typed into the search box, parsed.

The syntax is the Spotify Web API's: words, "quoted phrases" and field filters `artist:`,
`album:`, `track:`, `genre:` and `year:` (`year:1999` or `year:1990-1999`); a filter's value is
one word or a quoted phrase. Words are folded like the index (`ports.search.tokens`), so case,
accents and punctuation never matter. While the listener types (no space after the last word),
the last word also matches as a prefix. Each word tolerates typos by its length
(`allowed_edits`). Anything that is not a known filter is text: "Re:Birth" is two words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tonearm.kernel.errors import BadRequest
from tonearm.ports.search import Field, IndexQuery, Kind, Must, Term, allowed_edits, genre_key, tokens

MAX_QUERY_CHARS = 500
MAX_TERMS = 24  # words, phrase words and filter words together: bounds the work of one query
FILTERS = ("artist", "album", "track", "genre", "year")

# A filter (`name:"quoted value"` or `name:value`), a quoted phrase (an unbalanced quote runs to
# the end: the listener is still typing it), or a run of other characters.
_PIECE = re.compile(
    r'(?P<filter>\b(?P<name>[A-Za-z]+):(?:"(?P<fq>[^"]*)"?|(?P<fv>[^\s"]*)))'
    r'|"(?P<phrase>[^"]*)"?'
    r'|(?P<text>[^\s"]+)'
)
_YEAR = re.compile(r"^(\d{1,4})(?:-(\d{1,4}))?$")


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    words: tuple[Term, ...] = ()  # free words: each must match in some field
    phrases: tuple[tuple[Term, ...], ...] = ()
    artist: tuple[Term, ...] = ()
    album: tuple[Term, ...] = ()
    track: tuple[Term, ...] = ()
    genres: tuple[str, ...] = ()  # genre_key()s
    years: tuple[int, int] | None = None
    filters: frozenset[str] = field(default_factory=frozenset)  # the filter names used

    def for_kind(self, kind: Kind, viewer_id: str | None) -> IndexQuery | None:
        """The index query for one result type, or None when a filter cannot apply to it
        (`track:` never matches an artist): that type then has no results."""
        if not self.filters <= _APPLIES[kind]:
            return None
        free = _FREE_FIELDS[kind]
        must: list[Must] = [Must(free, (t,)) for t in self.words]
        must += [Must(free, p, phrase=len(p) > 1) for p in self.phrases]
        for name, target in _TARGETS[kind].items():
            must += [Must((target,), (t,)) for t in getattr(self, name)]
        return IndexQuery(
            kind=kind,
            must=tuple(must),
            genres=self.genres,
            years=self.years,
            viewer_id=viewer_id,
        )


# The filters that can apply to each result type (any other excludes the type), and the field
# each text filter looks in.
_APPLIES: dict[Kind, frozenset[str]] = {
    "track": frozenset(FILTERS),
    "album": frozenset({"artist", "album", "genre", "year"}),
    "artist": frozenset({"artist", "genre"}),
    "playlist": frozenset(),
}
_TARGETS: dict[Kind, dict[str, Field]] = {
    "track": {"artist": "artists", "album": "album", "track": "name"},
    "album": {"artist": "artists", "album": "name"},
    "artist": {"artist": "name"},
    "playlist": {},
}
_FREE_FIELDS: dict[Kind, tuple[Field, ...]] = {
    "track": ("name", "artists", "album", "genres", "description"),
    "album": ("name", "artists", "genres"),
    "artist": ("name", "genres", "description"),
    "playlist": ("name", "artists", "description"),  # artists: the owner's display name
}


def parse(q: str | None) -> ParsedQuery:
    """Parses the `q` parameter; raises BadRequest with a message fit for the listener."""
    if q is None or not q.strip():
        raise BadRequest("q is required: the words to search for")
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"q is too long: {len(q)} characters, at most {MAX_QUERY_CHARS}")
    typing = not q[-1].isspace()  # the last word is still being typed
    pieces = list(_PIECE.finditer(q))
    words: list[Term] = []
    phrases: list[tuple[Term, ...]] = []
    by_filter: dict[str, list[Term]] = {"artist": [], "album": [], "track": []}
    genres: list[str] = []
    years: tuple[int, int] | None = None
    used: set[str] = set()
    for n, m in enumerate(pieces):
        last = n == len(pieces) - 1
        name = (m.group("name") or "").lower()
        if m.group("filter") and name in FILTERS:
            raw = m.group("fq") if m.group("fq") is not None else m.group("fv")
            if not raw.strip():
                raise BadRequest(f'the {name}: filter needs a value, e.g. {name}:"{_EXAMPLES[name]}"')
            used.add(name)
            if name == "year":
                years = _years(raw)
            elif name == "genre":
                key = genre_key(raw)
                if not key:
                    raise BadRequest(f"genre:{raw} has no letters or digits")
                genres.append(key)
            else:
                quoted = m.group("fq") is not None
                closed = quoted and m.group(0).endswith('"') and len(m.group(0)) > len(name) + 2
                by_filter[name] += _terms(raw, prefix=last and typing and not closed)
            continue
        if m.group("filter"):  # `word:` that is no filter: plain text
            words += _terms(m.group("filter"), prefix=last and typing)
        elif m.group("phrase") is not None:
            open_ended = last and typing and not (len(m.group(0)) > 1 and m.group(0).endswith('"'))
            ws = tokens(m.group("phrase"))
            phrase = tuple(Term(w, prefix=open_ended and i == len(ws) - 1) for i, w in enumerate(ws))
            if phrase:
                phrases.append(phrase)
        else:
            words += _terms(m.group("text"), prefix=last and typing)
    parsed = ParsedQuery(
        words=tuple(words),
        phrases=tuple(phrases),
        artist=tuple(by_filter["artist"]),
        album=tuple(by_filter["album"]),
        track=tuple(by_filter["track"]),
        genres=tuple(dict.fromkeys(genres)),
        years=years,
        filters=frozenset(used),
    )
    n_terms = len(words) + sum(map(len, phrases)) + sum(map(len, by_filter.values())) + len(genres)
    if n_terms > MAX_TERMS:
        raise BadRequest(f"q has too many words: {n_terms}, at most {MAX_TERMS}")
    if n_terms == 0 and years is None:
        raise BadRequest("q has no words to search for (letters or digits)")
    return parsed


_EXAMPLES = {"artist": "Queen", "album": "A Night at the Opera", "track": "Yesterday", "genre": "hip hop",
             "year": "1990-1999"}  # fmt: skip


def _terms(text: str, *, prefix: bool) -> list[Term]:
    words = tokens(text)
    last = len(words) - 1
    return [
        Term(w, prefix=prefix and i == last, edits=allowed_edits(w, typing=prefix and i == last))
        for i, w in enumerate(words)
    ]


def _years(raw: str) -> tuple[int, int]:
    m = _YEAR.match(raw.strip())
    if not m:
        raise BadRequest(f"year:{raw} is not a year or a range of years (year:1999 or year:1990-1999)")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else first
    if first > last:
        raise BadRequest(f"year:{raw} ends before it starts")
    return first, last
