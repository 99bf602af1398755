"""The search index port: finds tracks, albums, artists and playlists by words.

The search domain parses what a listener typed (`domains/search/query.py`) into one `IndexQuery`
per kind; an adapter only has to answer those. Text reaches an adapter already folded and split
by `tokens()` below (accents and case folded, punctuation dropped), on both sides: documents
are indexed from `tokens(field)` and every `Term.text` is one such token. So every adapter agrees
on what a word is, and no user-typed metacharacter ever reaches an engine's query syntax.

Adapters (chosen by `search_url`, see bootstrap.py): `tantivy://` (embedded, on local disk),
`postgresql://` (full-text search plus pg_trgm, for scale-out) and `memory://` (a fast fake).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["track", "album", "artist", "playlist"]
KINDS: tuple[Kind, ...] = ("track", "album", "artist", "playlist")

Field = Literal["name", "artists", "album", "genres", "description"]
FIELDS: tuple[Field, ...] = ("name", "artists", "album", "genres", "description")

# How much a match in each field is worth, relative to the others. A title beats an artist name,
# which beats an album title; the description is searchable but weaker than everything else.
FIELD_WEIGHTS: dict[Field, float] = {
    "name": 4.0,
    "artists": 2.5,
    "album": 1.5,
    "genres": 1.0,
    "description": 0.5,
}
# Typos are tolerated where listeners type names: titles, artists and albums. Genres and
# descriptions match words spelled out (or, for the word being typed, prefixes): fuzzy matching a
# long description costs far more than it finds.
FUZZY_FIELDS: frozenset[Field] = frozenset({"name", "artists", "album"})
# The word being typed matches as a prefix in those fields from its first letter; in genres and
# descriptions only from SHORT_PREFIX + 1 letters on ("a" would match most descriptions).
SHORT_PREFIX = 3
# A word found only as a prefix or with typos is worth less than the same word spelled out.
PREFIX_FACTOR = 0.8
FUZZY_FACTOR = 0.5
# Popularity multiplies text relevance by 1 + POPULARITY_WEIGHT * log10(1 + popularity): a track
# with a million plays gets x1.9, one with none x1. Bounded, so relevance still decides between a
# title match and a description match, and popularity decides between equally good matches.
POPULARITY_WEIGHT = 0.15


def blend(text_score: float, popularity: int) -> float:
    """The final rank of a document: its text relevance weighted by its popularity."""
    return text_score * (1.0 + POPULARITY_WEIGHT * math.log10(1 + max(popularity, 0)))


# Letters NFKD does not take apart, folded the way a listener types them.
_EXTRA_FOLDS = str.maketrans(
    {"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d",
     "ð": "d", "þ": "th", "\u0131": "i"}  # the last: dotless i
)  # fmt: skip
_APOSTROPHES = re.compile("['`\u2019\u02bc\u00b4]")  # ' ` and the typographic apostrophes
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower-cased, accents removed, compatibility forms expanded: "Beyoncé" -> "beyonce",
    "Motörhead" -> "motorhead", "Straße" -> "strasse", "ﬁ" -> "fi"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLDS))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def tokens(text: str) -> list[str]:
    """The words of `text` as every adapter indexes and searches them: folded, apostrophes
    dropped inside words ("Don't" -> "dont"), split on everything that is not a letter or digit."""
    return _WORD.findall(_APOSTROPHES.sub("", fold(text)))


def genre_key(name: str) -> str:
    """How genres are compared: "Hip-Hop", "hip hop" and "HIP HOP" are one genre."""
    return " ".join(tokens(name))


def allowed_edits(word: str, *, typing: bool = False) -> int:
    """Typos tolerated in a word of this length: none up to 3 letters (a typo there is another
    word), one up to 6, two from 7 ("bohemain" -> "bohemian" is one transposition). A word still
    being typed (matched as a prefix too) gets one letter less of slack: "hea" with a typo would
    match nearly every word beginning with any two letters."""
    n = len(word) - (1 if typing else 0)
    return 0 if n <= 3 else 1 if n <= 6 else 2


@dataclass(frozen=True, slots=True)
class SearchDoc:
    """What the index knows of one catalog object. The id is the catalog's base-62 id."""

    kind: Kind
    id: str
    name: str  # track title, album title, artist name, playlist name
    artists: tuple[str, ...] = ()  # a track's or album's artists; a playlist's owner (display name)
    album: str = ""  # a track's album title
    genres: tuple[str, ...] = ()
    description: str = ""  # a track's description, an artist's bio, a playlist's description
    year: int | None = None  # release year (tracks, albums)
    popularity: int = 0  # plays (tracks; summed for albums and artists); 0 for playlists (no followers yet)
    public: bool = True
    owner_id: str | None = None  # the only user who finds it when it is not public

    def text(self, field: Field) -> str:
        if field == "name":
            return self.name
        if field == "artists":
            return ", ".join(self.artists)
        if field == "album":
            return self.album
        if field == "genres":
            return ", ".join(self.genres)
        return self.description


@dataclass(frozen=True, slots=True)
class Term:
    """One folded word (a `tokens()` token) to find."""

    text: str
    prefix: bool = False  # as-you-type: also matches words that start with `text`
    # Typos tolerated in FUZZY_FIELDS (optimal string alignment: Levenshtein where swapping two
    # neighbours is one edit), 0..2. With `prefix`, a word matches when one of its prefixes is
    # within that distance ("bohemain rhap" finds "Bohemian Rhapsody").
    edits: int = 0


@dataclass(frozen=True, slots=True)
class Must:
    """A condition every hit meets: `terms[0]` occurs in one of `fields`, or with `phrase`, the
    terms occur one after the other, in that order, in one of `fields` (exact words, no typos;
    a prefix `Term` at the end of a phrase may be honoured as a prefix)."""

    fields: tuple[Field, ...]
    terms: tuple[Term, ...]
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class IndexQuery:
    kind: Kind
    must: tuple[Must, ...] = ()  # all of them; none: every document that passes the filters
    genres: tuple[str, ...] = ()  # genre_key()s; a hit carries each of them
    years: tuple[int, int] | None = None  # inclusive; documents without a year never pass
    viewer_id: str | None = None  # sees public documents and the private ones they own


@dataclass(frozen=True, slots=True)
class Hits:
    ids: list[str]  # best first
    scores: list[float]  # blend()-ed, comparable within one adapter (suggestions mix kinds)
    total: int  # all hits, not just this page


class SearchUnavailable(Exception):
    """The index cannot answer now (down, corrupt, timed out); the caller falls back."""


class IndexBuilder(Protocol):
    def add(self, docs: Sequence[SearchDoc]) -> None: ...

    def finish(self, seq: int) -> None:
        """MUST replace the whole live index with what was added, atomically for searchers
        (they see the old index, then the new one, never a mix or nothing), recording `seq`
        as the change-log position the new index reflects."""
        ...

    def abort(self) -> None:
        """MUST discard what was added; the live index is untouched."""
        ...


class SearchIndex(Protocol):
    def search(self, query: IndexQuery, *, limit: int, offset: int) -> Hits:
        """MUST return the documents of `query.kind` that meet every `Must` (see its docstring),
        carry every genre, fall in the years and are visible to the viewer, ranked by
        `blend(text relevance, popularity)` best first, `offset` and `limit` applied after
        ranking. Text relevance MAY be computed the engine's way (BM25, ts_rank) but MUST weigh
        fields by FIELD_WEIGHTS, prefer shorter fields for the same matches (an exact title
        beats a longer title containing it), and weigh prefix and fuzzy matches down by
        PREFIX_FACTOR and FUZZY_FACTOR. With no `must`, ranking is by popularity alone.
        MUST raise SearchUnavailable, not something else, when it cannot answer."""
        ...

    def upsert(self, docs: Sequence[SearchDoc]) -> None:
        """MUST add or replace documents by (kind, id); visible to searches after `commit`."""
        ...

    def delete(self, keys: Iterable[tuple[Kind, str]]) -> None:
        """MUST remove documents by (kind, id) (absent ones are fine); effective after `commit`."""
        ...

    def commit(self, seq: int) -> None:
        """MUST make every upsert and delete so far visible to searches in every process within
        a second, and record `seq` (the change-log position they reflect) durably with them."""
        ...

    def applied_seq(self) -> int:
        """The `seq` of the last commit or finished rebuild; 0 for a new, empty index."""
        ...

    def version(self) -> object:
        """MUST return a hashable token that changes whenever what this process's searches see
        may have changed (a commit, a rebuild, in any process): at once for this process's own
        commits, within a fraction of a second for others' (tantivy: with its reader reloads;
        PostgreSQL: VERSION_TTL_S), and never before searches can see the change. Cheap enough
        to ask before every search. Answers are cached by it: while it stays equal, an answer
        given under it is still right, give or take that fraction of a second."""
        ...

    def rebuild(self) -> IndexBuilder:
        """A builder for a complete new index, while this one keeps answering searches."""
        ...

    def try_lead(self) -> bool:
        """MUST return True in at most one process at a time when the engine allows a single
        writer (the caller then applies changes); MAY return True everywhere otherwise."""
        ...

    def count(self, kind: Kind) -> int:
        """Documents of this kind, public or not (for /metrics and reindex checks)."""
        ...

    def close(self) -> None: ...
