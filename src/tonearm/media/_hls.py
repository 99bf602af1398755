"""package_hls()/media_playlist(): the AAC renditions as byte-range HLS (one fragmented MP4 each).

How it is done, and why
-----------------------
ffmpeg's mp4 muxer remuxes (`-c:a copy`) each rendition into a CMAF-style fragmented MP4: `ftyp`,
an empty `moov` (the init section), then `moof`+`mdat` fragments of about `grain` seconds
(`-frag_duration`), no `mfra` trailer. A tiny box reader then walks the file's top-level boxes and
builds the index from what is actually there: sample counts, sizes and durations from `tfhd`/`trun`
(and `trex` defaults), the time scale from `mdhd`, the codec string from the `esds`
AudioSpecificConfig. Segments are runs of whole fragments: the first segment is ONE fragment
(~`first_segment_s`, fast start), every later one `segment_s / grain` fragments. A segment made of
several `moof`+`mdat` pairs is a CMAF segment of several CMAF chunks, exactly what LL-HLS parent
segments are; HLS clients (AVPlayer, hls.js, ExoPlayer, ffmpeg) play them.

ffmpeg's own hls muxer (`-hls_segment_type fmp4 -hls_flags single_file`) was tried and rejected:
in ffmpeg 5.1 `-hls_init_time` applies to EVERY segment of a VOD playlist (all came out ~1 s), the
workaround (`-hls_list_size 1`) gives 1 s, 1 s, 3 s, 4 s, ... segments plus a `sidx` per segment,
and a single trailing AAC frame became its own 23 ms segment. Reading our own boxes is simpler
than parsing a quirky playlist and doubles as the check that the file is what the index says.

Alignment across renditions: the mp4 muxer cuts a fragment when the next packet's timestamp
reaches `grain` past the fragment's first one. Every AAC frame is a sync sample of 1024 samples
and all rungs of a source share one sample rate and frame count (transcode_ladder() makes them
so), so every rung is cut at the same frames, and grouping by fragment count keeps the segments
identical too, even for a rendition packaged later in a separate call.

Cost: one `moof` (~110 bytes) per fragment, i.e. ~0.9 kb/s at the default 1 s grain (about 1% of
the 96 kb/s rung). The fMP4 has no edit list, so the 1024 priming samples of the AAC encoder are
part of the first segment (23 ms of encoder delay at the start, as in most HLS audio).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from ._errors import MediaError
from ._run import SAFE_INPUT_OPTIONS, Deadline, file_url, run_tool
from ._transcode import _ffprobe

_JSON_VERSION: Final = 1

# RFC 6381 strings for MPEG-4 Audio (object type indication 0x40): "mp4a.40.<audio object type>".
# Validated because callers put them verbatim into CODECS="..." of master playlists.
_CODECS_RE: Final = re.compile(r"mp4a\.40\.[1-9][0-9]?")

# ISO/IEC 14496-3 samplingFrequencyIndex -> Hz.
_ASC_RATES: Final = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)

# Boxes are read into memory only when they are small metadata; anything larger is not ours.
_MAX_META_BOX: Final = 8 << 20

# Top-level boxes that may precede a fragment's moof (they then belong to that fragment's segment).
_FRAGMENT_PREFIX_BOXES: Final = frozenset({b"styp", b"sidx", b"prft", b"emsg", b"free", b"skip"})

# sample_is_non_sync_sample (ISO/IEC 14496-12 8.8.3.1).
_NON_SYNC: Final = 0x00010000

# A trailing segment shorter than this fraction of the fragment grain joins its predecessor.
_TINY_TAIL: Final = 0.5


@dataclass(frozen=True, slots=True)
class Segment:
    """One HLS media segment: `length` bytes at `offset` of the fMP4 file (EXT-X-BYTERANGE)."""

    duration_s: float
    offset: int
    length: int

    def __post_init__(self) -> None:
        if not (_is_number(self.duration_s) and math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"segment duration must be a positive number, not {self.duration_s!r}")
        if not (_is_int(self.offset) and self.offset >= 0 and _is_int(self.length) and self.length > 0):
            raise ValueError(f"bad segment byte range {self.length!r}@{self.offset!r}")


@dataclass(frozen=True, slots=True)
class HlsIndex:
    """Where everything is in one packaged fMP4 file; playlists are rendered from it per request.

    Invariants (checked at construction, so from_json() cannot produce anything else): the init
    section starts at byte 0; segments are contiguous, start right after it and end at
    `size_bytes`; `duration_s` is the sum of segment durations; the bit rates are the ones the
    segments imply:

    - `peak_bps` (BANDWIDTH): the largest bit rate of any single segment, rounded up. RFC 8216
      4.3.4.2 takes the peak over runs of segments lasting 0.5-1.5 target durations; a run's rate
      is a weighted mean of its segments' rates, so this is never lower than the RFC's value.
    - `average_bps` (AVERAGE-BANDWIDTH): the average segment bit rate of RFC 8216, i.e. the sizes
      of all media segments (NOT the init section, which is not a media segment and is loaded
      once) divided by the playlist duration, rounded up.
    """

    init_offset: int
    init_length: int
    segments: tuple[Segment, ...]
    codecs: str
    sample_rate: int
    channels: int
    peak_bps: int
    average_bps: int
    duration_s: float
    size_bytes: int

    def __post_init__(self) -> None:
        ints: tuple[object, ...] = (self.init_offset, self.init_length, self.sample_rate, self.channels)
        ints += (self.size_bytes, self.peak_bps, self.average_bps)
        if not all(_is_int(v) for v in ints):
            raise ValueError("HlsIndex integer fields must be ints")
        if self.init_offset != 0 or self.init_length <= 0:
            raise ValueError("the init section must start at byte 0 and be non-empty")
        if not isinstance(self.segments, tuple) or not self.segments:
            raise ValueError("an HlsIndex needs a non-empty tuple of segments")
        if not all(isinstance(s, Segment) for s in self.segments):
            raise ValueError("segments must be Segment objects")
        end = self.init_offset + self.init_length
        for i, seg in enumerate(self.segments):
            if seg.offset != end:
                raise ValueError(f"segment {i} starts at {seg.offset}, not where the one before ends ({end})")
            end = seg.offset + seg.length
        if end != self.size_bytes:
            raise ValueError(f"the last segment ends at {end}, not at the file size {self.size_bytes}")
        if not isinstance(self.codecs, str) or not _CODECS_RE.fullmatch(self.codecs):
            raise ValueError(f"unsupported codecs string {self.codecs!r}")
        if not 8000 <= self.sample_rate <= 96000 or not 1 <= self.channels <= 8:
            raise ValueError(f"implausible audio format {self.sample_rate} Hz x {self.channels}")
        total = sum(s.duration_s for s in self.segments)
        if not (_is_number(self.duration_s) and abs(self.duration_s - total) <= 1e-3):
            raise ValueError(f"duration {self.duration_s!r} is not the sum of the segments ({total:.6f})")
        if (self.peak_bps, self.average_bps) != _bit_rates(self.segments):
            raise ValueError("peak_bps/average_bps do not match the segments")

    def to_json(self) -> str:
        """Compact, versioned JSON; segments as [duration_s, offset, length] arrays."""
        return json.dumps(
            {
                "v": _JSON_VERSION,
                "init": [self.init_offset, self.init_length],
                "segments": [[s.duration_s, s.offset, s.length] for s in self.segments],
                "codecs": self.codecs,
                "sample_rate": self.sample_rate,
                "channels": self.channels,
                "peak_bps": self.peak_bps,
                "average_bps": self.average_bps,
                "duration_s": self.duration_s,
                "size_bytes": self.size_bytes,
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str) -> HlsIndex:
        """Parse to_json() output. MUST raise ValueError (never anything else) for any other input."""
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (TypeError, RecursionError) as exc:  # JSONDecodeError is a ValueError already
            raise ValueError(f"not an HLS index: {exc}") from None
        keys = {"v", "init", "segments", "codecs", "sample_rate", "channels"}
        keys |= {"peak_bps", "average_bps", "duration_s", "size_bytes"}
        if not isinstance(data, dict) or set(data) != keys:
            raise ValueError("not an HLS index: wrong JSON shape")
        if data["v"] != _JSON_VERSION or not _is_int(data["v"]):
            raise ValueError(f"unsupported HLS index version {data['v']!r}")
        init = data["init"]
        if not (isinstance(init, list) and len(init) == 2):
            raise ValueError("init must be [offset, length]")
        raw_segments = data["segments"]
        if not isinstance(raw_segments, list):
            raise ValueError("segments must be a list")
        segments = []
        for raw in raw_segments:
            if not (isinstance(raw, list) and len(raw) == 3):
                raise ValueError("each segment must be [duration_s, offset, length]")
            duration = float(raw[0]) if _is_number(raw[0]) else raw[0]
            segments.append(Segment(duration_s=duration, offset=raw[1], length=raw[2]))
        return cls(
            init_offset=init[0],
            init_length=init[1],
            segments=tuple(segments),
            codecs=data["codecs"],
            sample_rate=data["sample_rate"],
            channels=data["channels"],
            peak_bps=data["peak_bps"],
            average_bps=data["average_bps"],
            duration_s=float(data["duration_s"]) if _is_number(data["duration_s"]) else data["duration_s"],
            size_bytes=data["size_bytes"],
        )


def package_hls(
    sources: Sequence[tuple[Path, Path]],
    *,
    segment_s: float = 4.0,
    first_segment_s: float = 1.0,
    timeout_s: float = 120.0,
) -> list[HlsIndex]:
    """Remux (never re-encode: -c copy) each AAC .m4a source into a fragmented-MP4 file at its destination.

    `sources` are (source, destination) pairs, normally the AAC rungs of one track. MUST run ONE
    ffmpeg process for all of them, copy only the first audio stream, drop all metadata and
    chapters (bitexact), and write each destination atomically (a temporary dot-file in the same
    directory, then os.replace; the directory must exist). Segments: the first lasts about
    `first_segment_s` (fast start), later ones about `segment_s`, each rounded up to whole AAC
    frames; renditions of one source get identical boundaries whether packaged together or not,
    as long as the same `segment_s`/`first_segment_s` are used. Every output is verified: its
    boxes by the reader that builds the index (init at 0 covering ftyp+moov, contiguous segments
    ending at the file size, AAC sample entry, sync samples) and by ffprobe (codec aac, sample
    rate, channels, duration within 50 ms of the index). Returns one index per pair, in order; an
    empty `sources` returns [] without running anything.

    Raises MediaError("tool_failed") when ffmpeg fails (unreadable, truncated or non-MP4 source)
    or an output does not verify (e.g. a source that is not AAC), and MediaError("timeout") when
    the whole job exceeds `timeout_s`; then NO destination is written or replaced and no
    temporary file is left behind. ValueError for duplicate destinations, a destination that is
    also a source, or segment lengths outside 0.25 <= first_segment_s <= segment_s <= 30.
    """
    pairs = [(Path(src), Path(dst)) for src, dst in sources]
    if not pairs:
        return []
    if not 0.25 <= first_segment_s <= segment_s <= 30.0:
        raise ValueError("segment lengths must satisfy 0.25 <= first_segment_s <= segment_s <= 30")
    destinations = [os.path.abspath(dst) for _, dst in pairs]
    if len(set(destinations)) != len(destinations):
        raise ValueError("two sources have the same destination")
    if set(destinations) & {os.path.abspath(src) for src, _ in pairs}:
        raise ValueError("a destination is also a source")
    # The fragment grain divides segment_s evenly and is at most first_segment_s.
    per_segment = math.ceil(segment_s / first_segment_s - 1e-9)
    grain_s = segment_s / per_segment

    deadline = Deadline(timeout_s)
    token = secrets.token_hex(4)
    temps = [dst.with_name(f".{dst.name}.{token}.part") for _, dst in pairs]
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-xerror"]
    for src, _ in pairs:
        # Sources are MP4 by contract: forcing the demuxer means nothing is probed.
        args += [*SAFE_INPUT_OPTIONS, "-f", "mov", "-i", file_url(src)]
    for i, temp in enumerate(temps):
        args += [
            "-map",
            f"{i}:a:0",
            "-c:a",
            "copy",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            # empty_moov: the init section holds no samples; default_base_moof: fragments are
            # self-contained (CMAF); skip_trailer: no mfra after the last fragment.
            "-movflags",
            "+empty_moov+default_base_moof+cmaf+skip_trailer",
            "-frag_duration",
            str(round(grain_s * 1_000_000)),
            "-fflags",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-f",
            "mp4",
            file_url(temp),
        ]
    paths = [*(src for src, _ in pairs), *temps]
    try:
        result = run_tool(args, deadline=deadline, what="hls packaging", paths=paths)
        if result.returncode != 0:
            raise MediaError("tool_failed", f"ffmpeg failed to package HLS: {result.stderr or 'no output'}")
        indexes = []
        for (_, dst), temp in zip(pairs, temps, strict=True):
            try:
                index = _read_index(temp, per_segment, grain_s)
            except (_Malformed, ValueError) as exc:
                raise MediaError("tool_failed", f"the packaged {dst.name} does not verify: {exc}") from None
            _verify_probe(temp, dst.name, index, deadline)
            indexes.append(index)
        for (_, dst), temp in zip(pairs, temps, strict=True):
            os.replace(temp, dst)
        return indexes
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def media_playlist(index: HlsIndex, uri: str, *, version: int = 7) -> str:
    """Render the HLS VOD media playlist of one packaged file.

    `uri` (the file's URL, usually relative with a signed query string) is inserted verbatim into
    EXT-X-MAP and every segment line; the caller makes it safe. It MUST NOT be empty or contain a
    double quote or a line break (ValueError): those would break out of the playlist syntax.
    `version` >= 6 (EXT-X-MAP in a playlist that is not I-frames-only needs 6).
    """
    if not uri or any(c in uri for c in '"\r\n'):
        raise ValueError("the segment URI must be non-empty without quotes or line breaks")
    if not 6 <= version <= 12:
        raise ValueError("EXT-X-MAP with byte ranges needs EXT-X-VERSION 6 or later")
    durations = [f"{seg.duration_s:.5f}" for seg in index.segments]
    target = max(math.ceil(float(d)) for d in durations)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{uri}",BYTERANGE="{index.init_length}@{index.init_offset}"',
    ]
    for seg, duration in zip(index.segments, durations, strict=True):
        lines += [f"#EXTINF:{duration},", f"#EXT-X-BYTERANGE:{seg.length}@{seg.offset}", uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def dash_manifest(representations: Sequence[tuple[str, HlsIndex, str]]) -> str:
    """Render a static MPEG-DASH MPD over the same packaged files: one audio AdaptationSet, one
    Representation per (id, index, url), addressed with SegmentList byte ranges and a
    SegmentTimeline in samples (segments are not all the same length: the first one is short).
    URLs are XML-escaped here; ids must be plain names."""
    if not representations:
        raise ValueError("an MPD needs at least one representation")
    duration = max(index.duration_s for _, index, _ in representations)
    longest = max(seg.duration_s for _, index, _ in representations for seg in index.segments)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:full:2011" '
        f'type="static" mediaPresentationDuration="PT{duration:.3f}S" minBufferTime="PT{longest:.1f}S">',
        '  <Period id="0" start="PT0S">',
        '    <AdaptationSet id="0" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" '
        'startWithSAP="1">',
    ]
    for rid, index, url in representations:
        if not re.fullmatch(r"[A-Za-z0-9_]+", rid):
            raise ValueError(f"representation id {rid!r} must be a plain name")
        rate = index.sample_rate
        init_end = index.init_offset + index.init_length - 1
        out += [
            f'      <Representation id="{rid}" codecs="{index.codecs}" bandwidth="{index.peak_bps}" '
            f'audioSamplingRate="{rate}">',
            f'        <AudioChannelConfiguration schemeIdUri="{_CHANNEL_SCHEME}" value="{index.channels}"/>',
            f"        <BaseURL>{_xml_escape(url)}</BaseURL>",
            f'        <SegmentList timescale="{rate}">',
            f'          <Initialization range="{index.init_offset}-{init_end}"/>',
            "          <SegmentTimeline>",
        ]
        start = 0
        for seg in index.segments:
            d = round(seg.duration_s * rate)
            out.append(f'            <S t="{start}" d="{d}"/>')
            start += d
        out.append("          </SegmentTimeline>")
        out += [
            f'          <SegmentURL mediaRange="{seg.offset}-{seg.offset + seg.length - 1}"/>'
            for seg in index.segments
        ]
        out += ["        </SegmentList>", "      </Representation>"]
    out += ["    </AdaptationSet>", "  </Period>", "</MPD>"]
    return "\n".join(out) + "\n"


_CHANNEL_SCHEME: Final = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# Verification --------------------------------------------------------------------------------


def _verify_probe(path: Path, name: str, index: HlsIndex, deadline: Deadline) -> None:
    """An independent reader (ffprobe) MUST see the same audio the index describes."""
    info = _ffprobe(path, "stream=codec_name,sample_rate,channels:format=duration", deadline)
    stream = (info.get("streams") or [{}])[0]
    try:
        duration = float((info.get("format") or {}).get("duration", "nan"))
        rate = int(stream.get("sample_rate", 0))
    except (TypeError, ValueError):
        duration, rate = math.nan, 0
    found = (stream.get("codec_name"), rate, stream.get("channels"))
    if found != ("aac", index.sample_rate, index.channels) or not abs(duration - index.duration_s) <= 0.05:
        raise MediaError(
            "tool_failed",
            f"the packaged {name} does not verify: ffprobe sees {found} for {duration} s, the index"
            f" says aac {index.sample_rate} Hz x {index.channels} for {index.duration_s} s",
        )


# The box reader ------------------------------------------------------------------------------


class _Malformed(Exception):
    """The file is not the fragmented MP4 we asked ffmpeg for."""


@dataclass(frozen=True, slots=True)
class _Track:
    track_id: int
    timescale: int
    codecs: str
    sample_rate: int
    channels: int
    default_duration: int  # trex defaults
    default_size: int
    default_flags: int


@dataclass(frozen=True, slots=True)
class _Fragment:
    offset: int  # of its first box (moof, or a box that belongs before it)
    end: int  # end of its mdat
    decode_time: int  # tfdt
    duration: int  # in track time-scale units


def _read_index(path: Path, per_segment: int, grain_s: float) -> HlsIndex:
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        boxes = _top_level_boxes(f, size)
        ftyp = next(boxes, None)
        moov = next(boxes, None)
        if ftyp is None or moov is None or ftyp[0] != b"ftyp" or moov[0] != b"moov" or ftyp[1] != 0:
            raise _Malformed("it does not start with ftyp + moov")
        init_length = moov[1] + moov[2]
        track = _parse_moov(_read_payload(f, moov))
        fragments: list[_Fragment] = []
        start: int | None = None
        expected_time: int | None = None
        for kind, offset, box_size, header in boxes:
            if kind in _FRAGMENT_PREFIX_BOXES:
                start = offset if start is None else start
                continue
            if kind == b"moof":
                mdat = next(boxes, None)
                if mdat is None or mdat[0] != b"mdat":
                    raise _Malformed(f"the moof at {offset} is not followed by an mdat")
                decode_time, duration, data_start, data_size = _parse_moof(
                    _read_payload(f, (kind, offset, box_size, header)), offset, track
                )
                if (data_start, data_size) != (mdat[1] + mdat[3], mdat[2] - mdat[3]):
                    raise _Malformed(f"the samples of the moof at {offset} are not exactly its mdat")
                if expected_time is not None and decode_time != expected_time:
                    raise _Malformed(f"the fragment at {offset} does not continue the previous one")
                expected_time = decode_time + duration
                fragment_start = offset if start is None else start
                fragments.append(_Fragment(fragment_start, mdat[1] + mdat[2], decode_time, duration))
                start = None
                continue
            raise _Malformed(f"unexpected top-level box {kind!r} at {offset}")
        if start is not None:
            raise _Malformed("boxes after the last fragment")
    if not fragments:
        raise _Malformed("no fragments")
    return _build_index(track, fragments, init_length, size, per_segment, grain_s)


def _build_index(
    track: _Track, fragments: list[_Fragment], init_length: int, size: int, per_segment: int, grain_s: float
) -> HlsIndex:
    groups = [fragments[:1]]
    groups += [fragments[i : i + per_segment] for i in range(1, len(fragments), per_segment)]
    # A last segment of a few frames would be all moof overhead: it joins the one before (never
    # the first segment, which must stay short).
    tail = sum(fr.duration for fr in groups[-1])
    if len(groups) > 2 and tail < _TINY_TAIL * grain_s * track.timescale:
        groups[-2:] = [groups[-2] + groups[-1]]
    segments = tuple(
        Segment(
            duration_s=round(sum(fr.duration for fr in group) / track.timescale, 6),
            offset=group[0].offset,
            length=group[-1].end - group[0].offset,
        )
        for group in groups
    )
    total = sum(fr.duration for fr in fragments)
    peak, average = _bit_rates(segments)
    return HlsIndex(
        init_offset=0,
        init_length=init_length,
        segments=segments,
        codecs=track.codecs,
        sample_rate=track.sample_rate,
        channels=track.channels,
        peak_bps=peak,
        average_bps=average,
        duration_s=round(total / track.timescale, 6),
        size_bytes=size,
    )


_Box = tuple[bytes, int, int, int]  # type, offset, size (incl. header), header size


def _top_level_boxes(f: BinaryIO, file_size: int) -> Iterator[_Box]:
    offset = 0
    while offset < file_size:
        f.seek(offset)
        header = f.read(8)
        if len(header) < 8:
            raise _Malformed(f"truncated box header at {offset}")
        box_size, kind = struct.unpack(">I4s", header)
        header_size = 8
        if box_size == 1:
            large = f.read(8)
            if len(large) < 8:
                raise _Malformed(f"truncated box header at {offset}")
            (box_size,) = struct.unpack(">Q", large)
            header_size = 16
        elif box_size == 0:
            box_size = file_size - offset
        if box_size < header_size or offset + box_size > file_size:
            raise _Malformed(f"bad size {box_size} of box {kind!r} at {offset}")
        yield kind, offset, box_size, header_size
        offset += box_size


def _read_payload(f: BinaryIO, box: _Box) -> bytes:
    kind, offset, box_size, header_size = box
    if box_size > _MAX_META_BOX:
        raise _Malformed(f"{kind!r} box of {box_size} bytes is too large")
    f.seek(offset + header_size)
    data = f.read(box_size - header_size)
    if len(data) != box_size - header_size:
        raise _Malformed(f"truncated {kind!r} box")
    return data


def _children(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of the boxes packed in `data` (a container box's payload)."""
    pos = 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise _Malformed("truncated child box")
        box_size, kind = struct.unpack_from(">I4s", data, pos)
        header_size = 8
        if box_size == 1:
            if pos + 16 > len(data):
                raise _Malformed("truncated child box")
            (box_size,) = struct.unpack_from(">Q", data, pos + 8)
            header_size = 16
        elif box_size == 0:
            box_size = len(data) - pos
        if box_size < header_size or pos + box_size > len(data):
            raise _Malformed(f"bad size of child box {kind!r}")
        yield kind, data[pos + header_size : pos + box_size]
        pos += box_size


def _only(data: bytes, kind: bytes) -> bytes:
    found = [payload for k, payload in _children(data) if k == kind]
    if len(found) != 1:
        raise _Malformed(f"expected one {kind.decode('latin-1')} box, found {len(found)}")
    return found[0]


def _unpack(fmt: str, data: bytes, pos: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, pos)
    except struct.error:
        raise _Malformed("truncated box") from None


def _parse_moov(moov: bytes) -> _Track:
    trak = _only(moov, b"trak")
    tkhd = _only(trak, b"tkhd")
    (track_id,) = _unpack(">I", tkhd, 20 if tkhd[:1] == b"\x01" else 12)
    mdia = _only(trak, b"mdia")
    mdhd = _only(mdia, b"mdhd")
    (timescale,) = _unpack(">I", mdhd, 20 if mdhd[:1] == b"\x01" else 12)
    if _only(mdia, b"hdlr")[8:12] != b"soun":
        raise _Malformed("the track is not audio")
    stbl = _only(_only(mdia, b"minf"), b"stbl")
    if _unpack(">I", _only(stbl, b"stts"), 4)[0] != 0:
        raise _Malformed("the init section holds samples (moov is not empty)")
    stsd = _only(stbl, b"stsd")
    entries = list(_children(stsd[8:]))
    if _unpack(">I", stsd, 4)[0] != 1 or len(entries) != 1:
        raise _Malformed("expected exactly one sample description")
    kind, entry = entries[0]
    if kind != b"mp4a":
        raise _Malformed(f"the audio is {kind.decode('latin-1')!r}, not AAC (mp4a)")
    # AudioSampleEntry (version 0): 6 reserved + data_reference_index, 8 reserved, channelcount,
    # samplesize, pre_defined, reserved, samplerate 16.16; then child boxes.
    (entry_channels,) = _unpack(">H", entry, 16)
    if _unpack(">H", entry, 8)[0] != 0:
        raise _Malformed("unexpected QuickTime sound description version")
    codecs, sample_rate, channels = _parse_esds(_only(entry[28:], b"esds"))
    trex = [p for k, p in _children(_only(moov, b"mvex")) if k == b"trex"]
    if len(trex) != 1:
        raise _Malformed("expected one trex box")
    trex_track, _, duration, size, flags = _unpack(">IIIII", trex[0], 4)
    if trex_track != track_id or timescale <= 0:
        raise _Malformed("inconsistent track header")
    return _Track(track_id, timescale, codecs, sample_rate, channels or entry_channels, duration, size, flags)


def _parse_esds(esds: bytes) -> tuple[str, int, int]:
    """(RFC 6381 codecs, sample rate, channels) from an ES descriptor (ISO/IEC 14496-1 7.2.6)."""
    es = _descriptor(esds[4:], 0x03)
    (es_flags,) = _unpack(">B", es, 2)
    pos = 3
    if es_flags & 0x80:  # streamDependenceFlag
        pos += 2
    if es_flags & 0x40:  # URL_Flag
        pos += 1 + _unpack(">B", es, pos)[0]
    if es_flags & 0x20:  # OCRstreamFlag
        pos += 2
    config = _descriptor(es[pos:], 0x04)
    (object_type,) = _unpack(">B", config, 0)
    if object_type != 0x40:
        raise _Malformed(f"object type 0x{object_type:02x} is not MPEG-4 Audio")
    return _parse_asc(_descriptor(config[13:], 0x05))


def _descriptor(data: bytes, tag: int) -> bytes:
    """The payload of the descriptor with `tag` at the start of `data` (expandable size field)."""
    if not data or data[0] != tag:
        raise _Malformed(f"expected descriptor tag 0x{tag:02x}")
    length = 0
    pos = 1
    for _ in range(4):
        (byte,) = _unpack(">B", data, pos)
        pos += 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    if pos + length > len(data):
        raise _Malformed("truncated descriptor")
    return data[pos : pos + length]


def _parse_asc(asc: bytes) -> tuple[str, int, int]:
    """AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1): object type, sampling rate, channels."""
    bits = int.from_bytes(asc, "big")
    available = len(asc) * 8
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > available:
            raise _Malformed("truncated AudioSpecificConfig")
        pos += n
        return (bits >> (available - pos)) & ((1 << n) - 1)

    def object_type() -> int:
        value = take(5)
        return 32 + take(6) if value == 31 else value

    def rate() -> int:
        index = take(4)
        if index == 0xF:
            return take(24)
        if index >= len(_ASC_RATES):
            raise _Malformed(f"reserved samplingFrequencyIndex {index}")
        return _ASC_RATES[index]

    audio_object_type = object_type()
    sample_rate = rate()
    channel_config = take(4)
    if audio_object_type in (5, 29):  # SBR/PS (HE-AAC): the output runs at the extension rate
        sample_rate = rate()
    if audio_object_type == 0:
        raise _Malformed("null audio object type")
    channels = {7: 8}.get(channel_config, channel_config) if channel_config < 8 else 0
    return f"mp4a.40.{audio_object_type}", sample_rate, channels


def _parse_moof(moof: bytes, moof_offset: int, track: _Track) -> tuple[int, int, int, int]:
    """(decode time, duration, absolute offset of the sample data, its size) of one fragment."""
    trafs = [p for k, p in _children(moof) if k == b"traf"]
    if len(trafs) != 1:
        raise _Malformed(f"the moof at {moof_offset} has {len(trafs)} track fragments, not 1")
    traf = trafs[0]
    tfhd = _only(traf, b"tfhd")
    (tf_flags, track_id) = _unpack(">II", tfhd, 0)
    tf_flags &= 0xFFFFFF
    if track_id != track.track_id:
        raise _Malformed("a fragment of an unknown track")
    pos = 8
    base = moof_offset
    if tf_flags & 0x1:  # base-data-offset-present
        (base,) = _unpack(">Q", tfhd, pos)
        pos += 8
    elif not tf_flags & 0x20000:  # neither explicit nor default-base-is-moof
        raise _Malformed("fragment data offsets are not relative to the moof")
    if tf_flags & 0x2:  # sample-description-index-present
        pos += 4
    default_duration, default_size = track.default_duration, track.default_size
    default_flags = track.default_flags
    if tf_flags & 0x8:
        (default_duration,) = _unpack(">I", tfhd, pos)
        pos += 4
    if tf_flags & 0x10:
        (default_size,) = _unpack(">I", tfhd, pos)
        pos += 4
    if tf_flags & 0x20:
        (default_flags,) = _unpack(">I", tfhd, pos)
    tfdt = _only(traf, b"tfdt")
    (decode_time,) = _unpack(">Q" if tfdt[:1] == b"\x01" else ">I", tfdt, 4)

    duration = 0
    data_start: int | None = None
    data_end: int | None = None
    first = True
    for kind, trun in _children(traf):
        if kind != b"trun":
            continue
        (tr_flags, count) = _unpack(">II", trun, 0)
        tr_flags &= 0xFFFFFF
        pos = 8
        run_start = data_end
        if tr_flags & 0x1:
            (data_offset,) = _unpack(">i", trun, pos)
            pos += 4
            run_start = base + data_offset
        if run_start is None or (data_end is not None and run_start != data_end):
            raise _Malformed("fragment sample data is not contiguous")
        first_flags = None
        if tr_flags & 0x4:
            (first_flags,) = _unpack(">I", trun, pos)
            pos += 4
        # Per-sample records hold the present fields (duration, size, flags, composition offset)
        # in this order; absent ones take the defaults.
        present = [bit for bit in (0x100, 0x200, 0x400, 0x800) if tr_flags & bit]
        if count == 0 or pos + count * 4 * len(present) > len(trun):
            raise _Malformed("bad sample count in trun")
        table = _unpack(f">{count * len(present)}I", trun, pos)
        columns = {bit: table[j :: len(present)] for j, bit in enumerate(present)}
        duration += sum(columns[0x100]) if 0x100 in columns else default_duration * count
        run_size = sum(columns[0x200]) if 0x200 in columns else default_size * count
        if first_flags is None:
            first_flags = columns[0x400][0] if 0x400 in columns else default_flags
        if first and first_flags & _NON_SYNC:
            raise _Malformed("a fragment does not start with a sync sample")
        first = False
        data_start = run_start if data_start is None else data_start
        data_end = run_start + run_size
    if data_start is None or data_end is None or duration <= 0:
        raise _Malformed(f"the moof at {moof_offset} has no samples")
    return decode_time, duration, data_start, data_end - data_start


# Small helpers ---------------------------------------------------------------------------------


def _bit_rates(segments: Sequence[Segment]) -> tuple[int, int]:
    """(peak, average) segment bit rates in bit/s, rounded up; see HlsIndex."""
    peak = max(math.ceil(s.length * 8 / s.duration_s) for s in segments)
    average = math.ceil(sum(s.length for s in segments) * 8 / sum(s.duration_s for s in segments))
    return peak, average


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid number in an HLS index")
