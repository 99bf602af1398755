"""The demo catalog: plausible, consistent, varied and deterministic."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict

import pytest

from tonearm.demo.catalog import RHAPSODY_TITLE, DemoTrack, demo_catalog
from tonearm.demo.synth import GENRES, genre_profile

ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


@pytest.fixture(scope="module")
def catalog() -> list[DemoTrack]:
    return demo_catalog()


def _albums(tracks: list[DemoTrack]) -> dict[tuple[str, str], list[DemoTrack]]:
    albums: dict[tuple[str, str], list[DemoTrack]] = defaultdict(list)
    for t in tracks:
        albums[(t.album_artist, t.album)].append(t)
    return albums


def test_has_200_tracks_with_unique_valid_isrcs(catalog: list[DemoTrack]) -> None:
    assert len(catalog) == 200
    isrcs = [t.isrc for t in catalog]
    assert len(set(isrcs)) == 200
    assert all(ISRC.match(i) for i in isrcs)


def test_about_25_artists_each_with_1_to_3_albums_of_4_to_10_tracks(catalog: list[DemoTrack]) -> None:
    artists = {t.album_artist for t in catalog}
    assert 22 <= len(artists) <= 28
    albums = _albums(catalog)
    per_artist = Counter(artist for artist, _ in albums)
    assert set(per_artist.values()) <= {1, 2, 3}
    assert max(per_artist.values()) >= 2
    assert all(4 <= len(tracks) <= 10 for tracks in albums.values())


def test_albums_are_consistent(catalog: list[DemoTrack]) -> None:
    for (artist, album), tracks in _albums(catalog).items():
        assert len({t.release_date for t in tracks}) == 1, album
        assert len({t.genres for t in tracks}) == 1, album
        assert len({t.embed_cover for t in tracks}) == 1, album
        assert len({t.cover_seed for t in tracks}) == 1, album
        assert all(t.artist == artist or t.artist.startswith(f"{artist} feat. ") for t in tracks)
        by_disc: dict[int, list[int]] = defaultdict(list)
        for t in tracks:
            by_disc[t.disc_number].append(t.track_number)
        assert sorted(by_disc) == list(range(1, len(by_disc) + 1)), album
        for numbers in by_disc.values():
            assert sorted(numbers) == list(range(1, len(numbers) + 1)), album
        assert len({t.title for t in tracks}) == len(tracks), album


def test_every_genre_is_used(catalog: list[DemoTrack]) -> None:
    assert {t.spec.genre for t in catalog} == set(GENRES)
    assert {g for t in catalog for g in t.genres} == set(GENRES)
    for t in catalog:
        assert t.genres[0] == t.spec.genre
        low, high = genre_profile(t.spec.genre).bpm_range
        assert low <= t.spec.bpm <= high
        assert t.spec.mode in genre_profile(t.spec.genre).modes
        assert 0 <= t.spec.root <= 11
        assert t.spec.duration_s == 30.0


def test_release_dates_spread_over_the_decades(catalog: list[DemoTrack]) -> None:
    dates = [dt.date.fromisoformat(t.release_date) for t in catalog]
    assert all(dt.date(1985, 1, 1) <= d <= dt.date(2026, 12, 31) for d in dates)
    assert min(dates).year <= 1992
    assert max(dates).year >= 2018
    assert len({d.year // 10 for d in dates}) >= 4


def test_planted_fixtures(catalog: list[DemoTrack]) -> None:
    assert [t.title for t in catalog].count(RHAPSODY_TITLE) == 1
    assert sum("rhapsody" in t.title.lower() for t in catalog) == 1
    names = {t.album_artist for t in catalog}
    assert {"Café Lumière", "Sigur Ósk"} <= names
    assert any(t.artist != t.album_artist for t in catalog)  # "feat." credits
    assert any(t.disc_number == 2 for t in catalog)
    explicit = sum(t.explicit for t in catalog)
    assert 3 <= explicit <= 30
    covers = [tracks[0].embed_cover for tracks in _albums(catalog).values()]
    assert 0.25 <= sum(covers) / len(covers) <= 0.75


def test_titles_and_descriptions_are_varied(catalog: list[DemoTrack]) -> None:
    titles = [t.title for t in catalog]
    assert len(set(titles)) == len(titles)
    descriptions = [t.description for t in catalog]
    assert len(set(descriptions)) == len(descriptions)
    assert len({d.split(" ")[0] for d in descriptions}) >= 10
    for t in catalog:
        assert 20 <= len(t.description) <= 300
        assert f"{round(t.spec.bpm)} BPM" in t.description
        assert t.description.count(".") + t.description.count(":") >= 1


def test_is_deterministic_for_a_seed(catalog: list[DemoTrack]) -> None:
    assert demo_catalog() == catalog
    assert demo_catalog(seed=8) != catalog
    assert demo_catalog(20, seed=3, duration_s=5.0) == demo_catalog(20, seed=3, duration_s=5.0)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 9, 13, 50, 333])
def test_any_size(n: int) -> None:
    tracks = demo_catalog(n, seed=n, duration_s=5.0)
    assert len(tracks) == n
    assert len({t.isrc for t in tracks}) == n
    assert all(t.spec.duration_s == 5.0 for t in tracks)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_tracks"):
        demo_catalog(-1)
    with pytest.raises(ValueError, match="duration_s"):
        demo_catalog(10, duration_s=0)
