"""Verified-by-content media toolkit: what the ingest pipeline calls for every uploaded file.

Every function here decides by content, never by file name; runs ffmpeg/ffprobe with fixed
argument lists (no shell), `file:` URLs, demuxer/protocol allow-lists and timeouts; and reports
unacceptable input as MediaError with a machine-readable `code`.
"""

from ._audiohash import audio_hash
from ._cut import Cut, cut_from
from ._errors import ERROR_CODES, MediaError
from ._features import AudioFeatures, audio_features
from ._hls import HlsIndex, Segment, dash_manifest, media_playlist, package_hls
from ._images import IMAGE_SIZES, Thumbnail, make_thumbnails
from ._loudness import Loudness, measure_loudness
from ._probe import AudioProbe, probe
from ._tags import Tags, read_tags
from ._transcode import LADDER, RenditionFile, RenditionSpec, transcode_ladder, transcode_one

__all__ = [
    "ERROR_CODES",
    "IMAGE_SIZES",
    "LADDER",
    "AudioFeatures",
    "AudioProbe",
    "Cut",
    "HlsIndex",
    "Loudness",
    "MediaError",
    "RenditionFile",
    "RenditionSpec",
    "Segment",
    "Tags",
    "Thumbnail",
    "audio_features",
    "audio_hash",
    "cut_from",
    "dash_manifest",
    "make_thumbnails",
    "measure_loudness",
    "media_playlist",
    "package_hls",
    "probe",
    "read_tags",
    "transcode_ladder",
    "transcode_one",
]
