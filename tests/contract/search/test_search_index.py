"""One contract for every search index adapter: what a listener expects of search.

Queries go through the real parser (domains/search/query.py), so these tests read like what a
listener types. The same catalog and the same expectations hold for every adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.search.conftest import ADAPTERS, make_index
from tonearm.domains.search.query import parse
from tonearm.kernel.errors import BadRequest
from tonearm.ports.search import Hits, Kind, SearchDoc, SearchIndex, tokens


def T(id_: str, name: str, *artists: str, **kw: object) -> SearchDoc:
    return SearchDoc("track", id_, name, artists=tuple(artists), **kw)  # type: ignore[arg-type]


CATALOG: list[SearchDoc] = [
    T(
        "boh",
        "Bohemian Rhapsody",
        "Queen",
        album="A Night at the Opera",
        genres=("Rock",),
        year=1975,
        popularity=1_000_000,
    ),
    T(
        "bohcover",
        "Bohemian Rhapsody",
        "The Cover Band",
        album="Covers Vol. 1",
        genres=("Pop",),
        year=2005,
        popularity=120,
    ),
    T(
        "pastiche",
        "Opera Pastiche",
        "Someone Else",
        description="a tribute to bohemian rhapsody and the opera",
        genres=("Classical",),
        year=2010,
        popularity=5_000_000,
    ),
    T(
        "dejavu",
        "Déjà Vu",
        "Beyoncé",
        "Jay-Z",
        album="B'Day",
        genres=("R&B", "Pop"),
        year=2006,
        popularity=400_000,
    ),
    T(
        "ace",
        "Ace of Spades",
        "Motörhead",
        album="Ace of Spades",
        genres=("Heavy Metal",),
        year=1980,
        popularity=300_000,
    ),
    T(
        "hoppipolla",
        "Hoppípolla",
        "Sigur Rós",
        album="Takk...",
        genres=("Post-Rock",),
        year=2005,
        popularity=200_000,
    ),
    T(
        "yesterday",
        "Yesterday",
        "The Beatles",
        album="Help!",
        genres=("Rock", "Pop"),
        year=1965,
        popularity=800_000,
    ),
    T(
        "yesterday2",
        "Yesterday Once More",
        "Carpenters",
        album="Now & Then",
        genres=("Pop",),
        year=1973,
        popularity=2_000_000,
    ),
    T(
        "teen",
        "Smells Like Teen Spirit",
        "Nirvana",
        album="Nevermind",
        genres=("Grunge", "Rock"),
        year=1991,
        popularity=700_000,
    ),
    T(
        "mambo",
        "Mambo No. 5",
        "Lou Bega",
        album="A Little Bit of Mambo",
        genres=("Pop", "Latin"),
        year=1999,
        popularity=500_000,
    ),
    T("oops", "Oops!... I Did It Again", "Britney Spears", genres=("Pop",), year=2000, popularity=600_000),
    T("lovemedo", "Love Me Do", "The Beatles", genres=("Rock",), year=1962, popularity=100_000),
    T("dolove", "Do Love Me", "Someone Else", genres=("Pop",), year=2019, popularity=900_000),
    T("moonlight", "Moonlight", "Quiet Pianist", genres=("Classical",), year=2015, popularity=10),
    T(
        "moondesc",
        "Sonata Vibes",
        "Loud Band",
        description="moonlight on the water",
        genres=("Ambient",),
        year=2016,
        popularity=10_000_000,
    ),
    T("cat", "Cat", "Animals", genres=("Hip Hop",), year=2001, popularity=50),
    T("car", "Car", "Vehicles", genres=("hip-hop",), year=2001, popularity=5_000),
    T(
        "secret",
        "Bohemian Secret Demo",
        "Bedroom Artist",
        public=False,
        owner_id="owner1",
        year=2024,
        popularity=0,
    ),
    SearchDoc(
        "artist", "queen", "Queen", genres=("Rock",), description="British rock band", popularity=5_000_000
    ),
    SearchDoc("artist", "queenadreena", "Queenadreena", genres=("Alternative Rock",), popularity=1_000),
    SearchDoc("artist", "beatles", "The Beatles", genres=("Rock", "Pop"), popularity=9_000_000),
    SearchDoc("artist", "hidden", "Bedroom Artist", public=False, owner_id="owner1"),
    SearchDoc(
        "album",
        "opera",
        "A Night at the Opera",
        artists=("Queen",),
        genres=("Rock",),
        year=1975,
        popularity=1_500_000,
    ),
    SearchDoc(
        "album", "help", "Help!", artists=("The Beatles",), genres=("Rock",), year=1965, popularity=900_000
    ),
    SearchDoc("playlist", "pl1", "Rainy Day Rock", description="rock for a rainy day", popularity=10),
    # Playlists as the library makes them (playlist_search.py): the owner's display name in
    # `artists`, popularity 0.
    SearchDoc("playlist", "roadtrip", "Midnight Motorway", artists=("Ada Lovelace",),
              description="synthwave for long night drives"),
    SearchDoc("playlist", "sunday", "Sunday Morning", artists=("Midnight Jones",), description="slow songs"),
    SearchDoc("playlist", "late", "Late Songs", artists=("Bob",), description="for after midnight"),
]  # fmt: skip


@pytest.fixture(params=ADAPTERS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    idx = make_index(request.param, tmp_path, request)
    idx.upsert(CATALOG)
    idx.commit(1)
    yield idx
    idx.close()


def hits(index: SearchIndex, q: str, kind: Kind = "track", *, viewer: str | None = None, limit: int = 50,
         offset: int = 0) -> Hits:  # fmt: skip
    query = parse(q).for_kind(kind, viewer)
    assert query is not None
    return index.search(query, limit=limit, offset=offset)


def find(index: SearchIndex, q: str, kind: Kind = "track", *, viewer: str | None = None) -> list[str]:
    return hits(index, q, kind, viewer=viewer).ids


# Relevance -----------------------------------------------------------------------------------


def test_exact_title_ranks_first(index: SearchIndex) -> None:
    assert find(index, "yesterday ")[0] == "yesterday"  # over the more played "Yesterday Once More"
    assert find(index, "bohemian rhapsody ")[:2] == ["boh", "bohcover"]  # same title: the popular one


def test_a_title_beats_a_description_however_popular(index: SearchIndex) -> None:
    assert find(index, "moonlight ") == ["moonlight", "moondesc"]
    assert find(index, "bohemian rhapsody ")[-1] == "pastiche"  # found by its description, ranked last


def test_typos_still_find_it(index: SearchIndex) -> None:
    assert find(index, "bohemain rapsody ")[0] == "boh"  # a transposition and a missing letter
    assert find(index, "nirvna ") == ["teen"]
    assert find(index, "smells like teen sprit ")[0] == "teen"


def test_short_words_tolerate_no_typo(index: SearchIndex) -> None:
    assert find(index, "cat ") == ["cat"]  # "car" is another word, not a typo
    assert find(index, "car ") == ["car"]


def test_accents_and_case_fold(index: SearchIndex) -> None:
    assert find(index, "deja vu ") == ["dejavu"]
    assert find(index, "BEYONCE ") == ["dejavu"]
    assert find(index, "motorhead ") == ["ace"]
    assert find(index, "sigur ros hoppipolla ") == ["hoppipolla"]
    assert find(index, "Déjà VU ") == ["dejavu"]


def test_as_you_type_prefix_on_the_last_word(index: SearchIndex) -> None:
    assert find(index, "bohemian rhap")[:2] == ["boh", "bohcover"]
    assert find(index, "smells like te")[0] == "teen"
    assert find(index, "yest")[:2] == ["yesterday", "yesterday2"]
    assert find(index, "boh rhapsody ") == []  # only the word being typed is a prefix


def test_quoted_phrase_keeps_word_order(index: SearchIndex) -> None:
    assert find(index, '"love me do"') == ["lovemedo"]
    assert set(find(index, "love me do ")) == {"lovemedo", "dolove"}


def test_every_word_must_match(index: SearchIndex) -> None:
    assert find(index, "bohemian nirvana ") == []


def test_punctuation_and_metacharacters_are_just_text(index: SearchIndex) -> None:
    assert find(index, "oops!... i did it again ") == ["oops"]
    assert find(index, "mambo no. 5 ") == ["mambo"]
    for q in ["%", "a%b _x_ ' OR 1=1 --", "(.*)+[", "*", "\\", "a:b:c", "r&b ", "NOT rock"]:
        if tokens(q):
            hits(index, q)  # may find nothing; must not fail
        else:
            with pytest.raises(BadRequest, match="no words"):
                parse(q)


# Filters -------------------------------------------------------------------------------------


def test_genre_filter(index: SearchIndex) -> None:
    assert find(index, "genre:grunge") == ["teen"]
    assert set(find(index, 'genre:"hip hop"')) == {"cat", "car"}  # "Hip Hop" and "hip-hop" are one genre
    assert find(index, "genre:rock bohemian ") == ["boh"]  # not the pop cover
    assert find(index, "genre:polka") == []


def test_year_filter(index: SearchIndex) -> None:
    assert set(find(index, "year:1990-1999")) == {"teen", "mambo"}
    assert find(index, "year:1999") == ["mambo"]
    assert find(index, "bohemian year:2000-2010 ") == ["bohcover", "pastiche"]


def test_field_filters(index: SearchIndex) -> None:
    assert find(index, "artist:queen") == ["boh"]
    assert find(index, "bohemian artist:queen ") == ["boh"]
    assert find(index, 'album:"a night at the opera"') == ["boh"]
    assert find(index, "track:yesterday") == ["yesterday", "yesterday2"]
    assert find(index, "artist:beatles track:love ") == ["lovemedo"]
    assert find(index, "track:beatles") == []  # the artist is not the title


def test_filters_alone_rank_by_popularity(index: SearchIndex) -> None:
    assert find(index, "genre:rock")[:3] == ["boh", "yesterday", "teen"]


# Visibility ----------------------------------------------------------------------------------


def test_private_documents_only_for_their_owner(index: SearchIndex) -> None:
    assert "secret" not in find(index, "bohemian ")
    assert "secret" not in find(index, "bohemian ", viewer="someone-else")
    assert "secret" in find(index, "bohemian ", viewer="owner1")
    assert find(index, "bedroom ", "artist") == []
    assert find(index, "bedroom ", "artist", viewer="owner1") == ["hidden"]


# Kinds ---------------------------------------------------------------------------------------


def test_other_kinds(index: SearchIndex) -> None:
    assert find(index, "queen", "artist") == ["queen", "queenadreena"]  # typing: a prefix too
    assert find(index, "queen ", "artist") == ["queen"]
    assert find(index, "opera ", "album") == ["opera"]
    assert find(index, "beatles ", "album") == ["help"]  # by its artist
    assert find(index, "rainy ", "playlist") == ["pl1"]
    assert find(index, "artist:queen", "album") == ["opera"]
    assert find(index, "genre:rock", "artist")[:2] == ["beatles", "queen"]


def test_playlists_by_name_owner_and_description(index: SearchIndex) -> None:
    assert find(index, "midnight motorway ", "playlist") == ["roadtrip"]
    assert find(index, "midnigth motrway ", "playlist") == ["roadtrip"]  # typos, as in titles
    assert find(index, "midnight mot", "playlist") == ["roadtrip"]  # the word being typed
    assert find(index, "lovelace ", "playlist") == ["roadtrip"]  # by its owner
    assert find(index, "lovleace ", "playlist") == ["roadtrip"]
    assert find(index, "night drives ", "playlist") == ["roadtrip"]  # by its description
    assert find(index, "synthwave driv", "playlist") == ["roadtrip"]
    assert find(index, "synthwav drives ", "playlist") == []  # no typos in descriptions
    # The name first, then the owner, then the description.
    assert find(index, "midnight ", "playlist") == ["roadtrip", "sunday", "late"]
    # Playlists are found as playlists only, and field filters do not apply to them.
    assert find(index, "motorway ") == [] and find(index, "lovelace ", "artist") == []
    assert parse("artist:lovelace").for_kind("playlist", None) is None
    assert parse("genre:rock").for_kind("playlist", None) is None
    index.delete([("playlist", "roadtrip")])  # made private, or deleted
    index.commit(3)
    assert find(index, "midnight motorway ", "playlist") == []
    assert hits(index, "lovelace ", "playlist").total == 0
    assert find(index, "midnight ", "playlist") == ["sunday", "late"]
    assert index.count("playlist") == 3


# Paging --------------------------------------------------------------------------------------


def test_paging_is_consistent(index: SearchIndex) -> None:
    everything = hits(index, "genre:pop")
    assert everything.total == len(everything.ids) == 7
    assert everything.scores == sorted(everything.scores, reverse=True)
    pages = [hits(index, "genre:pop", limit=3, offset=o) for o in (0, 3, 6)]
    assert [i for p in pages for i in p.ids] == everything.ids
    assert all(p.total == 7 for p in pages)
    assert hits(index, "genre:pop", offset=100).ids == []


# Changes -------------------------------------------------------------------------------------


def test_upsert_delete_and_commit(index: SearchIndex) -> None:
    index.upsert([T("new", "Brand New Song", "Fresh Artist", popularity=1)])
    index.delete([("track", "teen"), ("track", "never-was")])
    index.upsert([T("yesterday", "Tomorrow", "The Beatles", year=1965, popularity=800_000)])  # renamed
    index.commit(7)
    assert index.applied_seq() == 7
    assert find(index, "brand new ") == ["new"]
    assert find(index, "nirvana ") == []
    assert find(index, "yesterday ") == ["yesterday2"]
    assert find(index, "tomorrow ") == ["yesterday"]
    assert index.count("track") == len([d for d in CATALOG if d.kind == "track"])  # +1 -1


def test_popularity_changes_the_order(index: SearchIndex) -> None:
    index.upsert([T("bohcover", "Bohemian Rhapsody", "The Cover Band", popularity=90_000_000)])
    index.commit(2)
    assert find(index, "bohemian rhapsody ")[:2] == ["bohcover", "boh"]


def test_rebuild_swaps_atomically(index: SearchIndex) -> None:
    builder = index.rebuild()
    builder.add([T("only", "Only Song", "Solo")])
    assert find(index, "bohemian ")[:1] == ["boh"]  # the live index answers meanwhile
    builder.finish(42)
    assert index.applied_seq() == 42
    assert find(index, "only ") == ["only"]
    assert find(index, "bohemian ") == []
    aborted = index.rebuild()
    aborted.add([T("never", "Never Song", "Nobody")])
    aborted.abort()
    assert find(index, "never ") == [] and find(index, "only ") == ["only"]


@pytest.mark.parametrize("kind", ADAPTERS)
def test_empty_index_answers(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    idx = make_index(kind, tmp_path / kind, request)
    assert idx is not None
    try:
        assert idx.applied_seq() == 0
        assert hits(idx, "anything ").total == 0
        assert hits(idx, "genre:rock").ids == []
    finally:
        idx.close()
