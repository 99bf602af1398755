"""Tonearm: self-hosted music streaming that does what Spotify Premium does, on a server you own."""

__version__ = "0.1.0"
