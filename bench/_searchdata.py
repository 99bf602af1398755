"""A synthetic catalog for the search benchmarks, with word statistics like a real one.

Titles draw on a vocabulary whose frequencies follow Zipf's law (a few hundred common English
song words, then tens of thousands of invented but pronounceable words, some accented); artists
and albums are pools shared by many tracks; genres are a long-tailed list of ~300; ~30% of the
tracks have descriptions from a larger vocabulary; popularity is a power law (most tracks are
barely played, a few have millions of plays); ~2% are private uploads. Everything is
deterministic for a seed, and drawn in bulk with numpy: 1,000,000 tracks take ~10 s.

    catalog(n, seed)          tracks, albums and artists, consistent with each other
    generate(n, seed)         every document of catalog(n, seed): tracks, then albums, then artists
    artists_and_albums(n, s)  the albums and artists of catalog(n, seed)
    queries(cat, n, seed)     an as-you-type workload: what a search box sends, keystroke by keystroke
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tonearm.ports.search import SearchDoc

COMMON = """love night heart baby time life day world girl man dream fire light rain blue home
away dance song rock soul sun moon star road river sky city summer winter wild free gold black
white red young old fall run back down high low little big good bad last first end forever never
always one two three you me we my your our all alone together again tonight tomorrow yesterday
morning midnight paradise heaven angel devil ghost shadow lover friend stranger king queen boy
child mother father sister brother kiss touch feel cry smile tears fear hope faith blood bone
stone glass paper silver diamond ocean sea wave shore island mountain valley desert storm
thunder lightning wind snow ice spring autumn garden flower rose wine whiskey sugar honey
electric neon radio television highway train station street avenue boulevard bridge tower
castle kingdom empire revolution freedom war peace battle soldier hero legend story memory
secret mystery magic miracle wonder beautiful broken lonely crazy happy sad lost found hold
break burn shine fly walk talk sing play stay leave come go heartbeat sunshine moonlight
starlight daylight twilight sunset sunrise rhapsody symphony serenade ballad blues lullaby
anthem requiem nocturne overture prelude fugue sonata concerto waltz tango samba mambo bolero
disco funk groove rhythm melody harmony echo silence noise""".split()  # noqa: SIM905 - a word list reads best as text
# Words from other languages, as titles carry them (accents are folded by the index).
FOREIGN = """amour cœur été déjà señor corazón niño mañana canción noche día sueño
fräulein über schön straße mädchen müde tränen glück café naïve fiancée résumé élan
søster ærlig smørrebrød ångest förälskad hoppípolla björk sigur rós ça ne jamais toujours
garçon crème brûlée piñata señorita mamá papá adiós gracias amor vida alma luz
saudade coração não irmã canção""".split()  # noqa: SIM905
GENRES_BASE = """rock pop jazz blues soul funk disco house techno trance ambient folk country metal punk
reggae ska dub hip hop rap classical opera gospel latin salsa bossa nova grunge indie emo drill
grime garage jungle drum bass trip dubstep electro synth wave shoegaze post hardcore
psychedelic progressive alternative lounge chill lofi afrobeat highlife kpop jpop cantopop
flamenco fado tango cumbia bachata merengue zouk kizomba""".split()  # noqa: SIM905 - a word list reads best as text
SYLLABLES = "ka ri to na me lo su vi ra el an or in ta de mo li sa ne po ku zo ba ni fe go ha ji".split()  # noqa: SIM905
ACCENTED = "é è à ü ö ñ ç å ø í ó".split()  # noqa: SIM905


def _invented(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """n distinct pronounceable words of 2-4 syllables, 4% of them with an accented letter."""
    words: dict[str, None] = {}
    while len(words) < n:
        k = 2 * (n - len(words)) + 64
        lengths = rng.choice(np.array([2, 2, 3, 3, 4]), size=k)
        syl = rng.integers(0, len(SYLLABLES), size=(k, 4))
        accent = rng.random(k) < 0.04
        accent_at = rng.integers(0, 8, size=k)
        accent_ch = rng.integers(0, len(ACCENTED), size=k)
        for i in range(k):
            w = "".join(SYLLABLES[s] for s in syl[i, : lengths[i]])
            if accent[i]:
                j = int(accent_at[i]) % len(w)
                w = w[:j] + ACCENTED[accent_ch[i]] + w[j + 1 :]
            if w not in taken:
                words[w] = None
            if len(words) == n:
                break
    return list(words)


def _zipf(n: int, s: float = 1.07) -> np.ndarray:
    p = 1.0 / np.power(np.arange(1, n + 1) + 2.7, s)
    return p / p.sum()


@dataclass
class Catalog:
    tracks: list[SearchDoc]
    albums: list[SearchDoc]
    artists: list[SearchDoc]

    def all(self) -> list[SearchDoc]:
        return self.tracks + self.albums + self.artists


def _phrases(rng: np.random.Generator, pool: list[str], p: np.ndarray, lengths: np.ndarray) -> list[str]:
    """One phrase per entry of `lengths`: that many words from `pool`, drawn with probabilities p."""
    picked = np.asarray(pool, dtype=object)[rng.choice(len(pool), size=int(lengths.sum()), p=p)].tolist()
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    return [" ".join(picked[s:e]) for s, e in zip(starts, ends, strict=True)]


def catalog(n: int, seed: int = 1) -> Catalog:
    """n tracks, with ~n/10 albums and ~n/8 artists consistent with them."""
    enabled = gc.isenabled()
    gc.disable()  # millions of new objects, none of them garbage: collections would only rescan them
    try:
        return _catalog(n, seed)
    finally:
        if enabled:
            gc.enable()


def _catalog(n: int, seed: int) -> Catalog:
    rng = np.random.default_rng(seed)
    taken = set(COMMON) | set(FOREIGN)
    vocab = COMMON + FOREIGN + _invented(rng, 40_000, taken)
    desc_vocab = vocab + _invented(np.random.default_rng(seed + 1), 30_000, set(vocab))
    pyrng = random.Random(seed)
    genres = list(GENRES_BASE)
    while len(genres) < 300:
        a, b = pyrng.sample(GENRES_BASE, 2)
        g = f"{a} {b}" if pyrng.random() < 0.5 else f"{a}-{b}"
        if g not in genres:
            genres.append(g)
    genres = [g.title() if pyrng.random() < 0.5 else g for g in genres]
    titled = [w.title() for w in vocab]
    title_p, desc_p, genre_p = _zipf(len(vocab)), _zipf(len(desc_vocab), 1.0), _zipf(len(genres), 1.2)

    n_artists, n_albums = max(1, n // 8), max(1, n // 10)
    artist_names = _phrases(rng, titled, title_p, rng.choice(np.array([1, 1, 2, 2, 3]), size=n_artists))
    album_names = _phrases(rng, titled, title_p, rng.choice(np.array([1, 2, 2, 3, 4]), size=n_albums))
    album_artist = rng.integers(0, n_artists, size=n_albums)
    album_years = rng.integers(1950, 2027, size=n_albums)

    titles = _phrases(rng, titled, title_p, rng.choice(np.array([1, 1, 2, 2, 2, 3, 3, 4, 5, 6]), size=n))
    has_desc = rng.random(n) < 0.3
    descs = iter(_phrases(rng, desc_vocab, desc_p, rng.integers(0, 26, size=int(has_desc.sum()))))
    n_genres = rng.choice(np.array([1, 1, 2, 3]), size=n)
    genre_idx = rng.choice(len(genres), size=int(n_genres.sum()), p=genre_p)
    genre_draws = np.asarray(genres, dtype=object)[genre_idx]
    genre_ends = np.cumsum(n_genres).tolist()
    pops = np.minimum((rng.pareto(1.1, size=n) * 20).astype(np.int64), 50_000_000)
    track_album = rng.integers(0, n_albums, size=n)
    track_artist = album_artist[track_album]
    featured = np.where(rng.random(n) < 0.1, rng.integers(0, n_artists, size=n), -1)
    public = rng.random(n) >= 0.02
    owners = rng.integers(0, 1000, size=n)

    album_pop = np.bincount(track_album, weights=pops, minlength=n_albums).astype(np.int64).tolist()
    artist_pop = np.bincount(track_artist, weights=pops, minlength=n_artists).astype(np.int64).tolist()
    artist_genres: list[dict[str, None]] = [{} for _ in range(n_artists)]
    genre_lists = genre_draws.tolist()
    tracks: list[SearchDoc] = []
    start = 0
    for t, (al, ar, feat, end, pub, pop, has_d, year) in enumerate(
        zip(
            track_album.tolist(),
            track_artist.tolist(),
            featured.tolist(),
            genre_ends,
            public.tolist(),
            pops.tolist(),
            has_desc.tolist(),
            album_years[track_album].tolist(),
            strict=True,
        )
    ):
        gs = tuple(dict.fromkeys(genre_lists[start:end]))
        start = end
        artist_genres[ar].update(dict.fromkeys(gs))
        tracks.append(
            SearchDoc(
                "track",
                f"t{t}",
                titles[t],
                artists=(artist_names[ar],) if feat < 0 else (artist_names[ar], artist_names[feat]),
                album=album_names[al],
                genres=gs,
                description=next(descs) if has_d else "",
                year=year,
                popularity=pop,
                public=pub,
                owner_id=None if pub else f"u{owners[t]}",
            )
        )
    albums = [
        SearchDoc(
            "album",
            f"al{i}",
            album_names[i],
            artists=(artist_names[album_artist[i]],),
            year=int(album_years[i]),
            popularity=album_pop[i],
        )
        for i in range(n_albums)
    ]
    artists = [
        SearchDoc(
            "artist", f"ar{i}", artist_names[i], genres=tuple(artist_genres[i])[:5], popularity=artist_pop[i]
        )
        for i in range(n_artists)
    ]
    return Catalog(tracks, albums, artists)


def generate(n: int, seed: int = 1) -> Iterator[SearchDoc]:
    """Every document (tracks, then albums, then artists) of `catalog(n, seed)`."""
    yield from catalog(n, seed).all()


def artists_and_albums(n: int, seed: int = 1) -> Iterator[SearchDoc]:
    """The albums, then the artists, of `catalog(n, seed)` (its tracks are `catalog(n, seed).tracks`)."""
    cat = catalog(n, seed)
    yield from cat.albums
    yield from cat.artists


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # two neighbours swapped


def queries(cat: Catalog, n: int, seed: int = 2) -> list[str]:
    """An as-you-type workload: what a search box sends, keystroke by keystroke, while listeners
    look for tracks and artists (biased towards popular ones, as real searches are); ~10% of the
    searches carry a typo in their longer words, ~10% add a filter (genre: or year:)."""
    rng = random.Random(seed)
    by_pop = sorted(cat.tracks, key=lambda d: -d.popularity)
    out: list[str] = []
    while len(out) < n:
        doc = (
            by_pop[min(int(rng.paretovariate(0.6)) - 1, len(by_pop) - 1)]
            if rng.random() < 0.7
            else rng.choice(cat.tracks)
        )
        target = doc.name if rng.random() < 0.7 else doc.artists[0]
        typed_words = target.lower().split()[:4]
        if rng.random() < 0.1:
            typed_words = [_typo(w, rng) for w in typed_words]
        prefix = ""
        if rng.random() < 0.1:
            prefix = (
                f'genre:"{doc.genres[0]}" '
                if doc.genres and rng.random() < 0.5
                else f"year:{(doc.year or 2000) // 10 * 10}-{(doc.year or 2000) // 10 * 10 + 9} "
            )
        text = " ".join(typed_words)
        for end in range(1, len(text) + 1):
            if text[end - 1] != " ":
                out.append(prefix + text[:end])
        out.append(prefix + text + " ")
    return out[:n]
