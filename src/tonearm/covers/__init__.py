"""Generated cover art.

:func:`generate_cover` draws a deterministic, album-specific JPEG: a palette and one of several
styles are derived from a hash of ``seed``, and the title and subtitle are set in Pillow's built-in
scalable font.  Used by ingest when a file has no embedded art, and by the demo catalog.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["STYLES", "generate_cover"]

RGB = tuple[int, int, int]

_MIN_SIZE = 64
_MAX_SIZE = 4096
_MAX_TEXT_CHARS = 300
_JPEG_QUALITY = 88


def generate_cover(seed: str, title: str, subtitle: str = "", *, size: int = 640) -> bytes:
    """Return JPEG bytes of a ``size`` x ``size`` cover for ``seed``, with ``title``/``subtitle`` drawn on it.

    The same arguments always give the same bytes (for one Pillow version).  Different seeds give a
    different palette, style and layout.  Titles may be empty, very long, or contain any Unicode;
    characters the built-in font lacks are drawn as its missing-glyph box, never an error.
    """
    if not _MIN_SIZE <= size <= _MAX_SIZE:
        raise ValueError(f"size must be between {_MIN_SIZE} and {_MAX_SIZE}, got {size}")
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()
    rng = random.Random(digest)  # noqa: S311 - picks colours and shapes, not secrets
    palette = _palette(rng)
    style_name = STYLES[digest[0] % len(STYLES)]
    img = _STYLE_FUNCS[style_name](rng, palette, size)
    _draw_text(img, rng, palette, _clean(title), _clean(subtitle))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=_JPEG_QUALITY)
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# palette


class _Palette:
    __slots__ = ("accents", "background", "dark", "light")

    def __init__(self, background: RGB, accents: list[RGB], dark: RGB, light: RGB) -> None:
        self.background = background
        self.accents = accents
        self.dark = dark
        self.light = light


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _palette(rng: random.Random) -> _Palette:
    base = rng.random()
    scheme = rng.choice(("analogous", "complementary", "triadic", "split", "mono"))
    offsets = {
        "analogous": (0.0, 0.06, -0.06, 0.12),
        "complementary": (0.0, 0.5, 0.04, 0.54),
        "triadic": (0.0, 1 / 3, 2 / 3, 0.05),
        "split": (0.0, 0.42, 0.58, 0.03),
        "mono": (0.0, 0.0, 0.02, -0.02),
    }[scheme]
    sat = rng.uniform(0.45, 0.95)
    accents = [_hsv(base + off, sat * rng.uniform(0.7, 1.1), rng.uniform(0.55, 1.0)) for off in offsets]
    dark_bg = rng.random() < 0.6
    if dark_bg:
        background = _hsv(base + rng.uniform(-0.05, 0.05), rng.uniform(0.3, 0.8), rng.uniform(0.08, 0.25))
    else:
        background = _hsv(base + rng.uniform(-0.05, 0.05), rng.uniform(0.08, 0.3), rng.uniform(0.85, 0.97))
    dark = _hsv(base, 0.5, 0.1)
    light = _hsv(base, 0.06, 0.98)
    return _Palette(background, accents, dark, light)


def _luma(c: RGB) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _gradient(size: int, start: RGB, end: RGB, horizontal: bool = False) -> Image.Image:
    """A linear gradient from ``start`` to ``end``, top to bottom (or left to right).

    Built as one row/column and stretched with nearest-neighbour resampling: exact and fast.
    """
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]
    a = np.asarray(start, dtype=np.float32)
    b = np.asarray(end, dtype=np.float32)
    line = (a + (b - a) * t).round().astype(np.uint8)
    strip = line[None, :, :] if horizontal else line[:, None, :]
    return Image.fromarray(strip).resize((size, size), Image.Resampling.NEAREST)


# --------------------------------------------------------------------------------------------------
# styles


def _style_rings(rng: random.Random, pal: _Palette, size: int) -> Image.Image:
    img = _gradient(size, pal.background, _mix(pal.background, pal.accents[1], 0.35), rng.random() < 0.5)
    draw = ImageDraw.Draw(img)
    cx = size * rng.uniform(0.25, 0.75)
    cy = size * rng.uniform(0.2, 0.6)
    n = rng.randint(5, 11)
    max_r = size * rng.uniform(0.45, 0.8)
    for i in range(n):
        r = max_r * (1 - i / n)
        colour = (
            pal.accents[i % len(pal.accents)] if i % 2 == 0 else _mix(pal.background, pal.accents[0], 0.2)
        )
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    return img


def _style_stripes(rng: random.Random, pal: _Palette, size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), pal.background)
    draw = ImageDraw.Draw(img)
    angle = math.radians(rng.choice((0, 15, 30, 45, 60, 90, 120, 135, 150)))
    ux, uy = math.cos(angle), math.sin(angle)  # across the stripes
    vx, vy = -uy, ux  # along the stripes
    c = size / 2
    reach = size * 0.75  # half the diagonal, rounded up: stripes cover the whole canvas at any angle
    d = -reach
    i = 0
    while d < reach:
        w = size * rng.choice((0.03, 0.05, 0.08, 0.12, 0.2))
        if rng.random() < 0.7:
            colour = pal.accents[i % len(pal.accents)]
            p0 = (c + ux * d, c + uy * d)
            p1 = (c + ux * (d + w), c + uy * (d + w))
            draw.polygon(
                [
                    (p0[0] - vx * reach, p0[1] - vy * reach),
                    (p0[0] + vx * reach, p0[1] + vy * reach),
                    (p1[0] + vx * reach, p1[1] + vy * reach),
                    (p1[0] - vx * reach, p1[1] - vy * reach),
                ],
                fill=colour,
            )
        d += w
        i += 1
    return img


def _style_tiles(rng: random.Random, pal: _Palette, size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), pal.background)
    draw = ImageDraw.Draw(img)
    n = rng.choice((3, 4, 5, 6))
    cell = size / n
    for gy in range(n):
        for gx in range(n):
            x0, y0 = gx * cell, gy * cell
            x1, y1 = x0 + cell, y0 + cell
            fg = rng.choice(pal.accents)
            bg = rng.choice([pal.background, *pal.accents])
            draw.rectangle((x0, y0, x1, y1), fill=bg)
            shape = rng.randrange(5)
            if shape == 0:
                draw.ellipse((x0 + cell * 0.1, y0 + cell * 0.1, x1 - cell * 0.1, y1 - cell * 0.1), fill=fg)
            elif shape == 1:
                corner = rng.randrange(4)
                pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                del pts[corner]
                draw.polygon(pts, fill=fg)
            elif shape == 2:
                cx, cy = rng.choice(((x0, y0), (x1, y0), (x0, y1), (x1, y1)))
                draw.ellipse((cx - cell, cy - cell, cx + cell, cy + cell), fill=fg)
            elif shape == 3:
                draw.rectangle((x0, y0 + cell * 0.35, x1, y1 - cell * 0.35), fill=fg)
    # the quarter circles above spill into neighbouring cells on purpose: it looks less mechanical
    return img


def _style_blobs(rng: random.Random, pal: _Palette, size: int) -> Image.Image:
    small = max(32, size // 5)
    img = Image.new("RGB", (small, small), pal.background)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(5, 9)):
        r = small * rng.uniform(0.15, 0.45)
        cx = small * rng.uniform(0, 1)
        cy = small * rng.uniform(0, 1)
        sx = rng.uniform(0.6, 1.4)
        draw.ellipse((cx - r * sx, cy - r / sx, cx + r * sx, cy + r / sx), fill=rng.choice(pal.accents))
    img = img.filter(ImageFilter.GaussianBlur(small * 0.06))
    return img.resize((size, size), Image.Resampling.BILINEAR)


def _style_waves(rng: random.Random, pal: _Palette, size: int) -> Image.Image:
    img = _gradient(size, pal.background, _mix(pal.background, pal.accents[2], 0.5))
    draw = ImageDraw.Draw(img)
    layers = rng.randint(4, 8)
    step = max(4, size // 64)
    for k in range(layers):
        base_y = size * (0.3 + 0.7 * k / layers)
        amp = size * rng.uniform(0.02, 0.08)
        freq = rng.uniform(1.0, 3.5) * 2 * math.pi / size
        phase = rng.uniform(0, 6.28)
        pts = [(float(x), base_y + amp * math.sin(freq * x + phase)) for x in range(0, size + step, step)]
        pts += [(float(size), float(size)), (0.0, float(size))]
        colour = _mix(pal.accents[k % len(pal.accents)], pal.dark, 0.5 * k / layers)
        draw.polygon(pts, fill=colour)
    return img


def _style_sun(rng: random.Random, pal: _Palette, size: int) -> Image.Image:
    img = _gradient(size, pal.dark, pal.accents[1])
    draw = ImageDraw.Draw(img)
    cx = size * rng.uniform(0.35, 0.65)
    cy = size * rng.uniform(0.4, 0.55)
    r = size * rng.uniform(0.22, 0.32)
    box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
    d = box[2] - box[0]
    sun = Image.new("L", (d, d), 0)
    ImageDraw.Draw(sun).ellipse((0, 0, d - 1, d - 1), fill=255)
    img.paste(_gradient(d, pal.accents[0], pal.accents[3]), box[:2], sun)
    # horizontal cuts through the lower half of the sun
    y = cy
    gap = size * 0.012
    while y < cy + r:
        draw.rectangle((cx - r, y, cx + r, y + gap), fill=_mix(pal.dark, pal.accents[1], (y / size) ** 2))
        y += gap * 3
        gap *= 1.15
    horizon = cy + r * rng.uniform(0.4, 0.9)
    draw.rectangle((0, horizon, size, size), fill=pal.dark)
    grid = pal.accents[2]
    for i in range(-10, 11):
        draw.line(
            (cx + i * size * 0.03, horizon, cx + i * size * 0.25, size), fill=grid, width=max(1, size // 320)
        )
    yy, dy = horizon, size * 0.01
    while yy < size:
        draw.line((0, yy, size, yy), fill=grid, width=max(1, size // 320))
        dy *= 1.5
        yy += dy
    return img


_STYLE_FUNCS: dict[str, Callable[[random.Random, _Palette, int], Image.Image]] = {
    "rings": _style_rings,
    "stripes": _style_stripes,
    "tiles": _style_tiles,
    "blobs": _style_blobs,
    "waves": _style_waves,
    "sun": _style_sun,
}
STYLES: tuple[str, ...] = tuple(_STYLE_FUNCS)


# --------------------------------------------------------------------------------------------------
# text


def _clean(text: str) -> str:
    """Drop control characters and lone surrogates, collapse whitespace, bound the length."""
    kept = []
    for ch in text[: _MAX_TEXT_CHARS * 2]:
        cat = unicodedata.category(ch)
        if cat in ("Zl", "Zp") or ch in "\t\n\r\v\f":
            kept.append(" ")
        elif cat not in ("Cc", "Cs", "Co", "Cn"):
            kept.append(ch)
    return " ".join("".join(kept).split())[:_MAX_TEXT_CHARS]


# Pillow's built-in font (Aileron) only covers ASCII, so a system font with wide coverage is preferred
# when one is installed (Debian's fonts-dejavu-core is on most machines); otherwise accents are folded.
_FONT_CANDIDATES: dict[bool, tuple[str, ...]] = {
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ),
}

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=64)
def _font(px: int, bold: bool) -> tuple[Font, bool]:
    """The font at ``px`` pixels, and whether it covers non-ASCII letters."""
    for path in _FONT_CANDIDATES[bold]:
        try:
            return ImageFont.truetype(path, px), True
        except OSError:
            continue
    return ImageFont.load_default(size=px), False


def _fold(text: str) -> str:
    """For the ASCII-only built-in font: "Café Ósk" -> "Cafe Osk"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _text_width(font: Font, text: str) -> float:
    return float(font.getlength(text))


def _wrap(text: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap; words wider than a line are broken; the last line gets an ellipsis if cut."""
    lines: list[str] = []
    current = ""
    words = text.split(" ")
    i = 0
    while i < len(words):
        word = words[i]
        candidate = f"{current} {word}" if current else word
        if _text_width(font, candidate) <= max_width:
            current = candidate
            i += 1
            continue
        if current:
            lines.append(current)
            current = ""
        else:  # a single word wider than the line: break it
            cut = len(word)
            while cut > 1 and _text_width(font, word[:cut]) > max_width:
                cut -= 1
            lines.append(word[:cut])
            words[i] = word[cut:]
        if len(lines) == max_lines:
            break
    if current and len(lines) < max_lines:
        lines.append(current)
        current = ""
    truncated = i < len(words) or bool(current)
    if truncated and lines:
        last = lines[-1]
        while last and _text_width(font, last + "…") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return lines


def _draw_text(img: Image.Image, rng: random.Random, pal: _Palette, title: str, subtitle: str) -> None:
    if not title and not subtitle:
        return
    size = img.width
    margin = size * 0.07
    max_w = size - 2 * margin
    title_px = max(10, round(size * rng.choice((0.075, 0.085, 0.095))))
    sub_px = max(8, round(size * 0.048))
    title_font, unicode_ok = _font(title_px, True)
    if not unicode_ok:
        title, subtitle = _fold(title), _fold(subtitle)
    title_lines = _wrap(title, title_font, max_w, 3) if title else []
    if len(title_lines) == 3:  # long titles: a smaller size so more of them fits
        title_px = max(10, round(title_px * 0.8))
        title_font, _ = _font(title_px, True)
        title_lines = _wrap(title, title_font, max_w, 3)
    sub_font, _ = _font(sub_px, False)
    sub_lines = _wrap(subtitle, sub_font, max_w, 1) if subtitle else []

    line_gap_t = title_px * 1.18
    line_gap_s = sub_px * 1.3
    block_h = len(title_lines) * line_gap_t + len(sub_lines) * line_gap_s
    at_top = rng.random() < 0.4
    pad = size * 0.035
    y0 = margin if at_top else size - margin - block_h
    panel = (0, round(y0 - pad), size, round(y0 + block_h + pad))

    # a translucent panel behind the text keeps it legible on any style
    region = img.crop(panel)
    panel_dark = rng.random() < 0.65
    shade = pal.dark if panel_dark else pal.light
    region = Image.blend(region, Image.new("RGB", region.size, shade), 0.72)
    img.paste(region, panel[:2])

    draw = ImageDraw.Draw(img)
    fg = pal.light if panel_dark else pal.dark
    accent = max(pal.accents, key=_luma) if panel_dark else min(pal.accents, key=_luma)
    if abs(_luma(accent) - _luma(shade)) < 110:
        accent = _mix(fg, accent, 0.35)
    y = y0
    for line in title_lines:
        draw.text((margin, y), line, font=title_font, fill=fg)
        y += line_gap_t
    for line in sub_lines:
        draw.text((margin, y + sub_px * 0.15), line, font=sub_font, fill=accent)
        y += line_gap_s
