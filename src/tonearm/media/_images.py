"""make_thumbnails(): verify cover art by content and cut square JPEG thumbnails from it."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from PIL import Image, UnidentifiedImageError

from ._errors import MediaError

IMAGE_SIZES: Final[tuple[int, ...]] = (640, 300, 64)
MAX_THUMBNAIL_SIZE: Final = 4096

# Only these decoders may run on user bytes; Pillow would otherwise try every plugin it has
# (PSD, TGA, EPS via Ghostscript, ...), each one attack surface.
_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

_JPEG_OPTIONS: Final = {"quality": 85, "optimize": True}
# Progressive scans help a large cover paint early on a slow link, but cost ~40% more encode time;
# small thumbnails arrive in one packet anyway, so only the large sizes are progressive.
_PROGRESSIVE_FROM: Final = 600

# EXIF orientation -> the transpose that shows the picture upright.
_ORIENTATION: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG: Final = 0x0112


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """One square JPEG rendition of a cover picture."""

    size: int  # the requested edge length
    width: int
    height: int
    data: bytes
    content_type: str  # always "image/jpeg"


def make_thumbnails(
    data: bytes,
    sizes: Sequence[int] = IMAGE_SIZES,
    *,
    max_bytes: int = 16 * 1024 * 1024,
    max_pixels: int = 40_000_000,
) -> list[Thumbnail]:
    """Verify `data` as an image and return one square JPEG per entry of `sizes`, in that order.

    MUST accept only JPEG, PNG, WebP, GIF (first frame) and BMP, identified by content; check the
    pixel count from the header before decoding anything; apply the EXIF orientation; flatten
    transparency onto white; center-crop to a square and resize with Lanczos. Art smaller than a
    requested size IS upscaled, so every requested size always exists and clients never need a
    fallback (upscaled art is soft, not wrong). Output is JPEG (progressive from 600 px), quality 85,
    optimized Huffman tables, no metadata (EXIF/GPS/ICC from the upload are not copied).

    Raises MediaError with code:
      "empty"           `data` is empty;
      "image_too_large" more than `max_bytes` bytes or `max_pixels` pixels (decompression bombs,
                        including Pillow's own DecompressionBombWarning/Error);
      "bad_image"       not an accepted image format, or truncated/corrupt image data.
    ValueError if a size is not an int in 1..4096 or is repeated (programming errors).
    """
    targets = _validate_sizes(sizes)
    if not data:
        raise MediaError("empty", "the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise MediaError(
            "image_too_large", f"the image is {len(data)} bytes, over the {max_bytes}-byte limit"
        )

    # Turn the bomb warning into an exception for this call. catch_warnings is process-global and
    # not thread-safe, but a race can only make the warning print instead of raise, and the
    # explicit max_pixels check below rejects those images anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = _open_verified(data, max_pixels)
            return _render(image, targets)
        except (MediaError, MemoryError):
            raise  # MemoryError is the server's problem, not a verdict on the upload
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaError("image_too_large", f"the image is too large to decode: {exc}") from None
        except Exception as exc:  # Pillow's decoders raise many types on bad input
            raise MediaError("bad_image", f"the image cannot be decoded: {_describe(exc)}") from None


def _validate_sizes(sizes: Sequence[int]) -> list[int]:
    targets = list(sizes)
    if not targets:
        raise ValueError("no thumbnail sizes requested")
    for size in targets:
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_THUMBNAIL_SIZE:
            raise ValueError(f"thumbnail size must be an int in 1..{MAX_THUMBNAIL_SIZE}, not {size!r}")
    if len(set(targets)) != len(targets):
        raise ValueError("thumbnail sizes are repeated")
    return targets


def _open_verified(data: bytes, max_pixels: int) -> Image.Image:
    try:
        probe = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        raise MediaError("bad_image", "not a JPEG, PNG, WebP, GIF or BMP image") from None
    _check_dimensions(probe, max_pixels)
    # verify() checks structure (PNG chunk CRCs, ...) without decoding pixels; it leaves the
    # object unusable, hence the second open.
    probe.verify()
    image = Image.open(io.BytesIO(data), formats=_FORMATS)
    _check_dimensions(image, max_pixels)
    return image


def _check_dimensions(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise MediaError("bad_image", f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise MediaError(
            "image_too_large",
            f"the image is {width}x{height} = {width * height} pixels, over the {max_pixels}-pixel limit",
        )


def _render(image: Image.Image, targets: list[int]) -> list[Thumbnail]:
    orientation = _orientation(image)
    largest = max(targets)
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale while both sides stay >= the largest
        # thumbnail: by far the biggest saving for large cover photos.
        image.draft("RGB", (largest, largest))
    image.load()
    image = _normalize_mode(image)

    width, height = image.size
    side = min(width, height)
    # A centered square crop commutes with every EXIF orientation, so orientation is applied to
    # the small results instead of transposing the full-size image.
    box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)

    rendered: dict[int, Image.Image] = {}
    base, base_box, base_side = image, box, float(side)
    for size in sorted(targets, reverse=True):
        # reducing_gap lets Pillow shrink by an integer factor first; Lanczos does the rest.
        resized = base.resize((size, size), Image.Resampling.LANCZOS, box=base_box, reducing_gap=2.0)
        rendered[size] = resized
        # Smaller sizes are cut from this result when it is a real downscale (no invented
        # detail): each further step then touches far fewer pixels than the source has.
        if base_side > size:
            base, base_box, base_side = resized, (0.0, 0.0, float(size), float(size)), float(size)

    thumbnails = []
    for size in targets:
        out = _to_rgb(rendered[size])
        if orientation is not None:
            out = out.transpose(orientation)
        buffer = io.BytesIO()
        out.save(buffer, "JPEG", progressive=size >= _PROGRESSIVE_FROM, **_JPEG_OPTIONS)
        thumbnails.append(Thumbnail(size, out.width, out.height, buffer.getvalue(), "image/jpeg"))
    return thumbnails


def _orientation(image: Image.Image) -> Image.Transpose | None:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception:  # broken EXIF must not reject otherwise fine art
        return None
    return _ORIENTATION.get(value) if isinstance(value, int) else None


def _normalize_mode(image: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, RGB, LA or RGBA so Lanczos works and colours are right."""
    mode = image.mode
    if mode in ("L", "RGB", "LA", "RGBA"):
        return image
    if mode in ("P", "PA"):
        # Palette images must be expanded before resampling (Pillow would fall back to nearest).
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode.startswith("I;16") or mode == "I":
        # 16/32-bit greyscale: scale to 8 bits instead of clipping everything above 255 to white.
        wide = image.convert("I") if mode != "I" else image
        return wide.point(lambda value: value * (1 / 256)).convert("L")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK (Pillow undoes Adobe's inversion), YCbCr, LAB, HSV, F


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("LA", "RGBA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
