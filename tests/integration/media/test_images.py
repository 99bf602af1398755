"""make_thumbnails(): content-verified cover art, exact square JPEGs, bombs refused."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from tonearm.media import IMAGE_SIZES, MediaError, Thumbnail, make_thumbnails


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _gradient(width: int, height: int) -> Image.Image:
    ramp = Image.linear_gradient("L")
    channels = (
        ramp,
        ramp.transpose(Image.Transpose.ROTATE_90),
        ramp.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    )
    return Image.merge("RGB", [c.resize((width, height)) for c in channels])


def _decode(thumb: Thumbnail) -> Image.Image:
    image = Image.open(io.BytesIO(thumb.data))
    image.load()
    return image


def _png_header_only(width: int, height: int) -> bytes:
    """A structurally valid PNG declaring width x height, with a tiny (truncated) IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 1000)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _flip_byte_in_idat(png: bytes) -> bytes:
    data = bytearray(png)
    data[png.index(b"IDAT") + 20] ^= 0xFF  # verify() catches it through the chunk CRC
    return bytes(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_every_accepted_format_gives_exact_square_jpegs(fmt: str) -> None:
    data = _encode(_gradient(1000, 700), fmt)
    thumbs = make_thumbnails(data)
    assert [t.size for t in thumbs] == list(IMAGE_SIZES)
    for thumb in thumbs:
        assert (thumb.width, thumb.height) == (thumb.size, thumb.size)
        assert thumb.content_type == "image/jpeg"
        image = _decode(thumb)
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.size == (thumb.size, thumb.size)
        progressive = bool(image.info.get("progressive") or image.info.get("progression"))
        assert progressive == (thumb.size >= 600)  # only large covers pay for progressive scans
    assert len({t.data for t in thumbs}) == len(thumbs)


def test_small_art_is_upscaled_and_sizes_are_respected() -> None:
    thumbs = make_thumbnails(_encode(_gradient(40, 30), "PNG"), sizes=(500, 32))
    assert [(t.size, _decode(t).size) for t in thumbs] == [(500, (500, 500)), (32, (32, 32))]


def test_center_crop() -> None:
    # Wide image: red | green | blue thirds. The square crop keeps (most of) the green middle.
    image = Image.new("RGB", (300, 100), (255, 0, 0))
    image.paste((0, 255, 0), (100, 0, 200, 100))
    image.paste((0, 0, 255), (200, 0, 300, 100))
    (thumb,) = make_thumbnails(_encode(image, "PNG"), sizes=(64,))
    r, g, b = _decode(thumb).getpixel((32, 32))  # type: ignore[misc]
    assert g > 200 and r < 40 and b < 40
    r, g, b = _decode(thumb).getpixel((1, 32))  # type: ignore[misc]
    assert g > 180


def test_exif_orientation_is_applied() -> None:
    # Stored: top half red, bottom half blue. Orientation 6 = display rotated 90 degrees
    # clockwise, so red ends up on the right.
    image = Image.new("RGB", (200, 200), (255, 0, 0))
    image.paste((0, 0, 255), (0, 100, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    (thumb,) = make_thumbnails(_encode(image, "JPEG", exif=exif.tobytes()), sizes=(100,))
    shown = _decode(thumb)
    assert shown.getpixel((90, 50))[0] > 200  # type: ignore[index]
    assert shown.getpixel((10, 50))[2] > 200  # type: ignore[index]


def test_transparency_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (40, 40, 60, 60))
    for data in (_encode(image, "PNG"), _encode(image.convert("P"), "GIF", transparency=0)):
        (thumb,) = make_thumbnails(data, sizes=(100,))
        shown = _decode(thumb)
        assert min(shown.getpixel((5, 5))) > 245  # type: ignore[arg-type]


def test_other_modes() -> None:
    for image in (
        Image.new("CMYK", (50, 50), (0, 255, 255, 0)),
        Image.new("L", (50, 50), 128),
        Image.new("1", (50, 50), 1),
    ):
        fmt = "JPEG" if image.mode == "CMYK" else "PNG"
        (thumb,) = make_thumbnails(_encode(image, fmt), sizes=(16,))
        assert _decode(thumb).mode == "RGB"
    sixteen_bit = Image.new("I;16", (50, 50), 40000)
    (thumb,) = make_thumbnails(_encode(sixteen_bit, "PNG"), sizes=(16,))
    grey = _decode(thumb).getpixel((8, 8))[0]  # type: ignore[index]
    assert 140 < grey < 170  # 40000/65535 of white, not clipped to 255


def test_output_has_no_upload_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"
    data = _encode(_gradient(200, 200), "JPEG", exif=exif.tobytes())
    for thumb in make_thumbnails(data):
        assert b"SecretCameraMaker" not in thumb.data
        assert b"Exif" not in thumb.data


def test_pillow_bomb_20000_squared_is_image_too_large() -> None:
    with pytest.raises(MediaError) as info:
        make_thumbnails(_png_header_only(20000, 20000))
    assert info.value.code == "image_too_large"


def test_pixel_limit_is_checked_before_decoding() -> None:
    # 8000 x 8000 = 64 Mpx: below Pillow's own bomb threshold, above ours.
    with pytest.raises(MediaError) as info:
        make_thumbnails(_png_header_only(8000, 8000))
    assert info.value.code == "image_too_large"
    assert "8000x8000" in str(info.value)


def test_byte_limit() -> None:
    with pytest.raises(MediaError) as info:
        make_thumbnails(_encode(_gradient(100, 100), "PNG"), max_bytes=100)
    assert info.value.code == "image_too_large"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(random.Random(3).randbytes(10_000), id="random"),
        pytest.param(b"GIF89a" + b"\x00" * 5, id="truncated-gif-header"),
        pytest.param(_encode(_gradient(300, 300), "JPEG")[:2000], id="truncated-jpeg"),
        pytest.param(_encode(_gradient(300, 300), "TIFF"), id="tiff-not-allowed"),
        pytest.param(_encode(_gradient(64, 64), "ICO"), id="ico-not-allowed"),
        pytest.param(_flip_byte_in_idat(_encode(_gradient(100, 100), "PNG")), id="png-bad-crc"),
    ],
)
def test_bad_images(data: bytes) -> None:
    with pytest.raises(MediaError) as info:
        make_thumbnails(data)
    assert info.value.code == "bad_image"


def test_empty() -> None:
    with pytest.raises(MediaError) as info:
        make_thumbnails(b"")
    assert info.value.code == "empty"


@pytest.mark.parametrize("sizes", [(), (0,), (5000,), (64, 64), (1.5,)])
def test_invalid_sizes(sizes: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"."):
        make_thumbnails(_encode(_gradient(10, 10), "PNG"), sizes)
