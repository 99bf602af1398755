"""Every Subsonic method, one module per group; importing this package registers them all."""

from tonearm.subsonic.handlers import browsing, lists, searching, system

__all__ = ["browsing", "lists", "searching", "system"]

# Media retrieval and scrobbling (media.py, scrobbling.py).
from tonearm.subsonic.handlers import media, scrobbling

__all__ += ["media", "scrobbling"]

# The listener's own data, users and scanning (annotation.py ... users.py, scan.py).
from tonearm.subsonic.handlers import annotation, playlists, queue, scan, sharing, users  # noqa: E402

__all__ += ["annotation", "playlists", "queue", "scan", "sharing", "users"]
