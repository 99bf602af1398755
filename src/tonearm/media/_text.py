"""Normalizing untrusted tag text and tag values (dates, ISRCs, numbers, genres)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

TEXT_LIMIT: Final = 500
DESCRIPTION_LIMIT: Final = 5000
GENRE_LIMIT: Final = 100
MAX_GENRES: Final = 8

# C0/C1 controls (tab/newline/CR are turned into whitespace first), lone surrogates, the
# noncharacters U+FDD0..FDEF/U+FFFE/U+FFFF, and the bidi embedding/override/isolate controls: the
# latter let a tag visually reorder the UI text around it ("Trojan Source"-style spoofing).
_STRIP_RE: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufdd0-\ufdef\ufffe\uffff\ud800-\udfff]"
)
_SPACE_RE: Final = re.compile(r"\s+")
_INLINE_SPACE_RE: Final = re.compile(r"[^\S\n]+")
_MANY_NEWLINES_RE: Final = re.compile(r"\n{3,}")
_GENRE_SPLIT_RE: Final = re.compile(r"[;/,\x00]")
_WORD_START_RE: Final = re.compile(r"(^|[\s\-&(])(\w)")
_NUMBER_RE: Final = re.compile(r"^\s*(\d{1,6})(?!\d)")
_ISRC_RE: Final = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
_DATE_RE: Final = re.compile(r"^\s*(\d{4})(?:[-./](\d{1,2})(?:[-./](\d{1,2}))?)?(?![\d])")
_COMPACT_DATE_RE: Final = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})(?!\d)")
# Years outside this range are placeholders ("0000", "9999") in the wild, not release dates.
_MIN_YEAR: Final = 1000
_MAX_YEAR: Final = 2100
_TRUE_VALUES: Final = frozenset({"1", "true", "yes", "y", "explicit", "e"})


def clean(value: object, limit: int = TEXT_LIMIT) -> str | None:
    """One-line display text: NFC, controls stripped, whitespace collapsed, at most `limit` chars.

    HTML and script are kept verbatim as plain text: escaping is the renderer's job, and altering
    it here would corrupt legitimate titles such as "<3" or "Tom & Jerry".
    """
    text = _prepare(value, limit)
    if text is None:
        return None
    text = _SPACE_RE.sub(" ", text).strip()
    return _cap(text, limit)


def clean_multiline(value: object, limit: int = DESCRIPTION_LIMIT) -> str | None:
    """Like clean() but keeps paragraph breaks (at most one blank line) for descriptions."""
    text = _prepare(value, limit)
    if text is None:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_INLINE_SPACE_RE.sub(" ", line).strip() for line in text.split("\n")]
    text = _MANY_NEWLINES_RE.sub("\n\n", "\n".join(lines)).strip()
    return _cap(text, limit)


def _prepare(value: object, limit: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    # Bound the work on hostile megabyte-long tags before the O(n) passes below.
    text = text[: limit * 4 + 64]
    # Tabs/newlines become spaces (or stay newlines) instead of being deleted, so words don't merge.
    text = text.replace("\t", " ").replace("\x00", " ")
    text = _STRIP_RE.sub("", text)
    return unicodedata.normalize("NFC", text)


def _cap(text: str, limit: int) -> str | None:
    if len(text) > limit:
        text = text[:limit].rstrip()
    return text or None


def first_clean(values: Iterable[object], limit: int = TEXT_LIMIT) -> str | None:
    """The first value that is non-empty after cleaning."""
    for value in values:
        text = clean(value, limit)
        if text:
            return text
    return None


def join_clean(values: Iterable[object], limit: int = TEXT_LIMIT) -> str | None:
    """Several values (e.g. multi-valued ARTIST) joined with "; ", duplicates removed."""
    seen: dict[str, str] = {}
    for value in values:
        text = clean(value, limit)
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return clean("; ".join(seen.values()), limit) if seen else None


def parse_number(values: Iterable[object]) -> int | None:
    """Track/disc number: "3/12" -> 3, "03" -> 3; 0, negative, non-numeric or > 9999 -> None."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value
        else:
            match = _NUMBER_RE.match(str(value))
            number = int(match.group(1)) if match else None
        if number is not None and 1 <= number <= 9999:
            return number
    return None


def parse_date(values: Iterable[object]) -> str | None:
    """First valid date as "YYYY", "YYYY-MM" or "YYYY-MM-DD", keeping only the valid prefix.

    Accepts "2019", "2019-03-07T12:00:00Z", "2019/3/7", "20190307"; "2019-02-30" -> "2019-02".
    """
    for value in values:
        text = str(value)
        match = _COMPACT_DATE_RE.match(text) or _DATE_RE.match(text)
        if not match:
            continue
        year = int(match.group(1))
        if not _MIN_YEAR <= year <= _MAX_YEAR:
            continue
        month = int(match.group(2)) if match.group(2) else None
        day = int(match.group(3)) if match.group(3) else None
        if month is None or not 1 <= month <= 12:
            return f"{year:04d}"
        if day is None:
            return f"{year:04d}-{month:02d}"
        try:
            dt.date(year, month, day)
        except ValueError:
            return f"{year:04d}-{month:02d}"
        return f"{year:04d}-{month:02d}-{day:02d}"
    return None


def parse_isrc(values: Iterable[object]) -> str | None:
    """First valid ISRC, upper-cased, with the hyphens/spaces of the printed form removed."""
    for value in values:
        text = re.sub(r"[\s\-]", "", str(value)).upper()
        if _ISRC_RE.match(text):
            return text
    return None


def parse_flag(values: Iterable[object]) -> bool:
    """Explicit-content flags: "1", "true", "yes", "explicit" (iTunes advisory 1; 2 means clean)."""
    return any(str(value).strip().casefold() in _TRUE_VALUES for value in values)


def parse_genres(values: Iterable[object]) -> tuple[str, ...]:
    """Split on ';' '/' ',' and NUL, drop empties, dedupe case-insensitively, keep at most 8.

    Title-casing is light: only all-lowercase names are changed ("hip hop" -> "Hip Hop"), so
    deliberate casing like "IDM" or "J-Pop" survives.
    """
    genres: dict[str, str] = {}
    for value in values:
        for part in _GENRE_SPLIT_RE.split(str(value)):
            name = clean(part, GENRE_LIMIT)
            if not name:
                continue
            if name == name.lower():
                name = _WORD_START_RE.sub(lambda m: m.group(1) + m.group(2).upper(), name)
            key = name.casefold()
            if key not in genres:
                genres[key] = name
                if len(genres) == MAX_GENRES:
                    return tuple(genres.values())
    return tuple(genres.values())
