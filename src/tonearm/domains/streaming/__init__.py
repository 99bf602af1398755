"""The streaming domain: playback grants and signed byte delivery."""
