"""The demo catalog: invented artists, albums and tracks, each with a :class:`TrackSpec` to synthesize.

Everything is generated from word lists and a seed, so the same seed always gives the same catalog.
No title or name belongs to a real recording.  A few fixtures are planted on purpose for later tests:
accented names ("Café Lumière", "Sigur Ósk", ...) for accent folding, a track titled exactly
"Midnight Rhapsody" for typo-tolerant search, "feat." credits where artist differs from album artist,
one two-disc album, and a handful of explicit tracks.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace

from tonearm.demo.synth import GENRES, TrackSpec, genre_profile

__all__ = ["RHAPSODY_TITLE", "DemoTrack", "demo_catalog"]

RHAPSODY_TITLE = "Midnight Rhapsody"
ISRC_PREFIX = "ZZTNA"  # ZZ: no country; TNA: Tonearm's invented registrant code


@dataclass(frozen=True, slots=True)
class DemoTrack:
    title: str
    artist: str
    album: str
    album_artist: str
    genres: tuple[str, ...]
    track_number: int
    disc_number: int
    release_date: str  # "YYYY-MM-DD"
    isrc: str  # ^[A-Z]{2}[A-Z0-9]{3}\d{7}$, unique in the catalog
    explicit: bool
    description: str
    spec: TrackSpec
    embed_cover: bool  # about half the albums carry embedded front-cover art

    @property
    def cover_seed(self) -> str:
        """The seed of this album's generated cover: the same for every track of the album."""
        return f"{self.album_artist}\u241f{self.album}\u241f{self.release_date[:4]}"


# --------------------------------------------------------------------------------------------------
# word lists

_FIRST = (
    "Mira", "Jonah", "Elise", "Tomas", "Noor", "Felix", "Ada", "Rafael", "Ines", "Kai", "Lena", "Otis",
    "Priya", "Milo", "Hana", "Arlo", "Vera", "Idris", "Nadia", "Emil", "Talia", "Ruben", "Yara", "Cass",
    "Juno", "Theo", "Marisol", "Dmitri", "Aiko", "Leandro",
)  # fmt: skip
_LAST = (
    "Vance", "Okafor", "Lindqvist", "Moreau", "Castell", "Whitlock", "Adeyemi", "Novak", "Hartmann",
    "Sato", "Reyes", "Halloran", "Ferreira", "Kowalski", "Brandt", "Calloway", "Marchetti", "Ashby",
    "Quill", "Delacroix", "Okonkwo", "Varga", "Ellison", "Nakamura", "Beaumont",
)  # fmt: skip
_BAND_ADJ = (
    "Velvet", "Neon", "Paper", "Silver", "Hollow", "Electric", "Golden", "Static", "Crimson", "Quiet",
    "Glass", "Lunar", "Wild", "Analog", "Northern", "Faded", "Cosmic", "Amber", "Restless", "Copper",
)  # fmt: skip
_BAND_NOUNS = (
    "Arcades", "Harbors", "Lanterns", "Satellites", "Foxes", "Engines", "Tides", "Orchards", "Machines",
    "Signals", "Comets", "Ghosts", "Pilots", "Rivers", "Gardens", "Parades", "Owls", "Cassettes",
    "Circuits", "Mirrors",
)  # fmt: skip
_MONIKERS = (
    "Koralle", "Halcyon", "Lowtide", "Kestrel", "Nightjar", "Polyglot", "Driftwood", "Solstice", "Juniper",
    "Aurora Tape", "Mothlight", "Tessellate", "Brightwater", "Overpass", "Palomino", "Quasar Kid",
    "Dune Radio", "Fernweh", "Kintsugi", "Low Orbit", "Marigold", "Paperplane", "Sundial", "Vantablue",
)  # fmt: skip
_ADJ = (
    "Silver", "Broken", "Electric", "Golden", "Hidden", "Endless", "Quiet", "Neon", "Velvet", "Burning",
    "Paper", "Crystal", "Distant", "Faded", "Hollow", "Lucid", "Restless", "Secret", "Slow", "Wild",
    "Midnight", "Summer", "Winter", "Silent", "Crimson", "Tender", "Cosmic",
    "Analog", "Northern", "Lonely", "Sunlit", "Rainy", "Blue", "Amber", "Gentle", "Heavy", "Fragile",
    "Infinite", "Naïve", "Soft", "Violet", "Weightless", "Frozen", "Liquid", "Open", "Last", "First",
)  # fmt: skip
_NOUN = (
    "Horizon", "Static", "Bloom", "Ember", "Harbor", "Satellite", "Meridian", "Monsoon", "Daydream",
    "Voltage", "Mirage", "Lantern", "Orbit", "Cascade", "Ritual", "Fever", "Paradise", "Prism", "Echo",
    "Tide", "Frontier", "Reverie", "Solace", "Aurora", "Pulse", "Gravity", "Nocturne", "Silhouette",
    "Carousel", "Kaleidoscope", "Avalanche", "Compass", "Odyssey", "Tapestry", "Wildfire", "Undertow",
    "Skyline", "Rooftop", "Radio", "Telegram", "Postcard", "Polaroid", "Cathedral", "Boulevard",
    "Lighthouse", "Window", "Garden", "Desert", "Ocean", "Heartbeat", "Memory", "Shadow", "Daylight",
    "Moonlight", "Sunrise", "Thunder", "Whisper", "Circuit", "Signal", "Engine", "Rêverie", "Façade",
    "Mañana", "Café", "Déjà Vu", "Fiesta", "Comet", "River", "Mountain", "Window Seat", "Afterglow",
    "Undercurrent", "Firefly", "Hologram", "Cassette", "Velocity", "Stardust", "Overture", "Lullaby",
)  # fmt: skip
_PLACE = (
    "Tokyo", "Lisbon", "Marrakech", "Reykjavík", "Montréal", "São Paulo", "Berlin", "Osaka", "Brooklyn",
    "Havana", "Kyoto", "Neon City", "the Valley", "the Harbor", "Room 404", "Sector 7", "the Coast",
    "Zürich", "Córdoba", "the Moon", "Atlantis", "the Suburbs", "Orbit", "the Deep End", "Kraków",
)  # fmt: skip
_VERBING = (
    "Chasing", "Falling", "Dancing", "Drifting", "Running", "Waiting", "Burning", "Floating", "Breaking",
    "Dreaming", "Calling", "Counting", "Fading", "Holding", "Leaving", "Finding", "Crossing", "Racing",
)  # fmt: skip

# Planted accented artists, with the genre each plays.
_ACCENTED_ARTISTS = (
    ("Café Lumière", "Jazz"),
    ("Sigur Ósk", "Ambient"),
    ("Niño Eléctrico", "Electronic"),
    ("Søren Åkesson Trio", "Lo-Fi"),
)

_RELATED: dict[str, tuple[str, ...]] = {
    "Electronic": ("Synthwave", "Downtempo", "House"),
    "House": ("Electronic", "Techno"),
    "Techno": ("Electronic", "House"),
    "Hip-Hop": ("Lo-Fi", "Downtempo"),
    "Lo-Fi": ("Hip-Hop", "Jazz", "Downtempo"),
    "Ambient": ("Downtempo", "Electronic"),
    "Rock": ("Pop",),
    "Pop": ("Electronic", "Rock"),
    "Jazz": ("Lo-Fi", "Downtempo"),
    "Drum and Bass": ("Electronic",),
    "Synthwave": ("Electronic", "Pop"),
    "Downtempo": ("Ambient", "Electronic", "Lo-Fi"),
}

_KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

_SECOND_SENTENCES = (
    "Made for late-night drives and empty streets.",
    "It starts sparse and opens up into a full groove.",
    "Good company for a rainy afternoon with headphones on.",
    "Builds patiently, then lets everything drop out for the outro.",
    "A slow-burner that rewards a second listen.",
    "Written for the hour just before sunrise.",
    "The B section flips the chords and lifts the melody higher.",
    "Sounds like a city waking up.",
    "Try it loud.",
    "Pairs well with coffee and a long to-do list.",
    "The kind of tune that sticks around after it ends.",
    "Recorded as if the tape machine were about to run out.",
    "Ideal for focus, reading or a long train ride.",
    "Equal parts nostalgia and forward motion.",
)


# --------------------------------------------------------------------------------------------------
# generation


def demo_catalog(n_tracks: int = 200, *, seed: int = 7, duration_s: float = 30.0) -> list[DemoTrack]:
    """``n_tracks`` invented tracks by about ``n_tracks / 8`` artists, deterministic for ``seed``."""
    if n_tracks < 0:
        raise ValueError(f"n_tracks must be >= 0, got {n_tracks}")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if n_tracks == 0:
        return []
    rng = random.Random(seed)
    names = _Names(rng)

    artists = _make_artists(rng, names, max(1, round(n_tracks / 8)))
    sizes = _album_sizes(rng, len(artists), n_tracks)

    tracks: list[DemoTrack] = []
    used_titles: set[str] = set()
    rhapsody_album = _pick_rhapsody_album(artists, sizes)
    album_index = 0
    two_disc_done = False
    cover_flags: list[bool] = []
    for a_idx, (artist, genre) in enumerate(artists):
        year = rng.randint(1985, 2021)
        for size in sizes[a_idx]:
            profile = genre_profile(genre)
            genres: tuple[str, ...] = (genre,)
            if rng.random() < 0.4:
                genres = (genre, rng.choice(_RELATED[genre]))
            album = names.album_title(genre, size)
            date = _release_date(rng, min(year, 2026))
            year += rng.randint(1, 5)
            embed = rng.random() < 0.5
            cover_flags.append(embed)
            album_bpm = rng.uniform(*profile.bpm_range)
            two_disc = not two_disc_done and size >= 8  # one two-disc album per catalog
            two_disc_done = two_disc_done or two_disc
            per_disc = (size + 1) // 2 if two_disc else size
            rhapsody_at = rng.randrange(size) if album_index == rhapsody_album else -1
            for i in range(size):
                title = RHAPSODY_TITLE if i == rhapsody_at else names.track_title(genre, used_titles)
                used_titles.add(title)
                featured = None
                if (
                    genre in ("Hip-Hop", "Pop", "House", "Electronic", "Drum and Bass")
                    and rng.random() < 0.12
                ):
                    featured = rng.choice([a[0] for a in artists if a[0] != artist] or [names.person()])
                explicit = rng.random() < (0.3 if genre == "Hip-Hop" else 0.02)
                bpm = round(
                    min(max(album_bpm + rng.uniform(-4, 4), profile.bpm_range[0]), profile.bpm_range[1]), 1
                )
                spec = TrackSpec(
                    seed=rng.randrange(1 << 31),
                    genre=genre,
                    bpm=bpm,
                    root=rng.randrange(12),
                    mode=rng.choice(profile.modes),
                    duration_s=duration_s,
                )
                seq = len(tracks) + 1
                tracks.append(
                    DemoTrack(
                        title=title,
                        artist=f"{artist} feat. {featured}" if featured else artist,
                        album=album,
                        album_artist=artist,
                        genres=genres,
                        track_number=i % per_disc + 1,
                        disc_number=i // per_disc + 1,
                        release_date=date.isoformat(),
                        isrc=f"{ISRC_PREFIX}{date.year % 100:02d}{seq:05d}",
                        explicit=explicit,
                        description=_describe(rng, spec),
                        spec=spec,
                        embed_cover=embed,
                    )
                )
            album_index += 1

    return _ensure_variety(tracks, cover_flags)


class _Names:
    """Unique artist names and titles from the word lists."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.artists: set[str] = {name for name, _ in _ACCENTED_ARTISTS}
        self.albums: set[str] = set()

    def person(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def artist(self, genre: str) -> str:
        rng = self.rng
        for attempt in range(200):
            roll = rng.random()
            if genre == "Jazz":
                name = f"{self.person()} {rng.choice(('Quartet', 'Trio', 'Ensemble', 'Quintet'))}"
                if roll < 0.4:
                    name = self.person()
            elif genre == "Hip-Hop":
                word = rng.choice(_MONIKERS + _BAND_ADJ)
                noun = rng.choice(_NOUN)
                name = rng.choice((f"MC {word}", f"Lil {word}", f"{word} the {noun}", rng.choice(_MONIKERS)))
            elif genre in ("Rock", "Synthwave") and roll < 0.7:
                name = f"The {rng.choice(_BAND_ADJ)} {rng.choice(_BAND_NOUNS)}"
            elif genre in ("Electronic", "House", "Techno", "Drum and Bass") and roll < 0.7:
                word = rng.choice(_MONIKERS)
                name = rng.choice(
                    (word, f"DJ {word}", f"{word} & {rng.choice(_FIRST)}", f"{word} Collective")
                )
            elif genre in ("Ambient", "Downtempo", "Lo-Fi") and roll < 0.6:
                name = rng.choice((rng.choice(_MONIKERS), f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"))
            elif roll < 0.5:
                name = self.person()
            else:
                name = f"{rng.choice(_FIRST)} & the {rng.choice(_BAND_NOUNS)}"
            if attempt > 100:
                name = f"{name} {attempt}"
            if name not in self.artists:
                self.artists.add(name)
                return name
        raise AssertionError("unreachable: a numbered name is always new")  # pragma: no cover

    def album_title(self, genre: str, size: int) -> str:
        rng = self.rng
        for attempt in range(200):
            template = rng.randrange(9)
            adj, noun, noun2, place = (
                rng.choice(_ADJ),
                rng.choice(_NOUN),
                rng.choice(_NOUN),
                rng.choice(_PLACE),
            )
            title = (
                f"{adj} {noun}",
                noun,
                f"The {noun} Sessions",
                f"Songs from {place}",
                f"{noun} of the {noun2}",
                f"{place} {noun}",
                f"{adj} {noun}",
                f"Live at {place}" if genre in ("Jazz", "Rock") else f"{noun} & {noun2}",
                f"{rng.choice(_VERBING)} {place}",
            )[template]
            if size <= 5 and rng.random() < 0.3:
                title += " EP"
            if attempt > 100:
                title = f"{title} {attempt}"
            if title not in self.albums and RHAPSODY_TITLE.lower() not in title.lower():
                self.albums.add(title)
                return title
        raise AssertionError("unreachable")  # pragma: no cover

    def track_title(self, genre: str, used: set[str]) -> str:
        rng = self.rng
        remixy = genre in ("House", "Techno", "Electronic", "Drum and Bass")
        for attempt in range(300):
            adj, noun, noun2 = rng.choice(_ADJ), rng.choice(_NOUN), rng.choice(_NOUN)
            place, verb = rng.choice(_PLACE), rng.choice(_VERBING)
            template = rng.randrange(12)
            title = (
                f"{adj} {noun}",
                f"{verb} the {noun}",
                f"{noun} in {place}",
                f"Last {noun} to {place}",
                f"{noun} & {noun2}",
                f"The {adj} {noun}",
                noun,
                f"{verb} {place}",
                f"Night {noun}",
                f"{adj} {noun}",
                f"{noun} ({adj} Mix)" if remixy else f"{noun} Interlude",
                f"{noun} No. {rng.randint(2, 9)}",
            )[template]
            if attempt > 200:
                title = f"{title} {attempt}"
            if title not in used and title.lower() != RHAPSODY_TITLE.lower() and noun != noun2:
                return title
        raise AssertionError("unreachable")  # pragma: no cover


def _make_artists(rng: random.Random, names: _Names, count: int) -> list[tuple[str, str]]:
    """(name, main genre) for ``count`` artists.

    Genres are dealt from shuffled decks, so every genre has an artist once there are 12 of them.
    The planted accented artists join only when there are enough artists to cover every genre too.
    """
    fixed = list(_ACCENTED_ARTISTS)[: min(len(_ACCENTED_ARTISTS), max(0, count - len(GENRES)))]
    deck: list[str] = []
    while len(deck) < count - len(fixed):
        batch = list(GENRES)
        rng.shuffle(batch)
        deck.extend(batch)
    artists = list(fixed)
    artists += [(names.artist(g), g) for g in deck[: count - len(fixed)]]
    rng.shuffle(artists)
    return artists


def _album_sizes(rng: random.Random, n_artists: int, total: int) -> list[list[int]]:
    """Track counts of each artist's albums: 1-3 albums of 4-10 tracks, adding up to exactly ``total``."""
    low, high = min(4, total), 10
    n_albums = min(max(round(total / 6), n_artists, -(-total // high)), 3 * n_artists, max(1, total // low))
    counts = [1] * n_artists
    while sum(counts) < n_albums:
        counts[rng.choice([i for i, c in enumerate(counts) if c < 3])] += 1
    while sum(counts) > n_albums:  # only when there are more artists than albums fit: drop artists
        counts[counts.index(max(counts))] -= 1
    sizes = [[rng.randint(low, high) for _ in range(k)] for k in counts]
    slots = [(a, b) for a, albums in enumerate(sizes) for b in range(len(albums))]
    current = sum(map(sum, sizes))
    while current != total:
        a, b = rng.choice(slots)
        if current < total and sizes[a][b] < high:
            sizes[a][b] += 1
            current += 1
        elif current > total and sizes[a][b] > low:
            sizes[a][b] -= 1
            current -= 1
    return sizes


def _pick_rhapsody_album(artists: list[tuple[str, str]], sizes: list[list[int]]) -> int:
    """Index (in catalog order) of the album that carries "Midnight Rhapsody": the first jazz album."""
    index = 0
    for (_name, genre), albums in zip(artists, sizes, strict=True):
        if albums and genre == "Jazz":
            return index
        index += len(albums)
    return 0


def _release_date(rng: random.Random, year: int) -> dt.date:
    last = dt.date(year, 9, 30) if year >= 2026 else dt.date(year, 12, 31)
    start = dt.date(year, 1, 1)
    return start + dt.timedelta(days=rng.randrange((last - start).days + 1))


def _key_name(spec: TrackSpec) -> str:
    return f"{_KEYS[spec.root % 12]} {spec.mode}"


def _describe(rng: random.Random, spec: TrackSpec) -> str:
    profile = genre_profile(spec.genre)
    mood = rng.choice(profile.moods)
    inst1, inst2 = rng.sample(profile.instruments, 2)
    genre = spec.genre.lower()
    bpm = round(spec.bpm)
    key = _key_name(spec)
    first = rng.choice(
        (
            f"A {mood} {genre} track at {bpm} BPM in {key}, built on {inst1} and {inst2}.",
            f"{mood.capitalize()} {genre} in {key}: {inst1} over {inst2}, moving at {bpm} BPM.",
            f"{inst1[0].upper() + inst1[1:]} and {inst2} carry this {mood} {bpm} BPM {genre} piece.",
            f"At {bpm} BPM, {inst1} and {inst2} meet in a {mood} {genre} tune in {key}.",
            f"{inst1[0].upper() + inst1[1:]}, {inst2} and a {mood} mood, in {key} at {bpm} BPM.",
            f"Some {mood} {genre}: {inst1}, {inst2}, {bpm} BPM, {key}.",
        )
    )
    if rng.random() < 0.7:
        return f"{first} {rng.choice(_SECOND_SENTENCES)}"
    return first


def _ensure_variety(tracks: list[DemoTrack], cover_flags: list[bool]) -> list[DemoTrack]:
    """Guarantee a mix the tests and the demo rely on: some explicit tracks, covers both embedded and not."""
    if len(tracks) >= 20 and sum(t.explicit for t in tracks) < 3:
        candidates = [i for i, t in enumerate(tracks) if t.spec.genre == "Hip-Hop" and not t.explicit]
        candidates += [i for i, t in enumerate(tracks) if not t.explicit and i not in candidates]
        for i in candidates[: 3 - sum(t.explicit for t in tracks)]:
            tracks[i] = replace(tracks[i], explicit=True)
    if len(cover_flags) >= 2 and len(set(cover_flags)) == 1:
        first_album = (tracks[0].album_artist, tracks[0].album)
        tracks = [
            replace(t, embed_cover=not t.embed_cover) if (t.album_artist, t.album) == first_album else t
            for t in tracks
        ]
    return tracks
