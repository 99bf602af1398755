"""The listener's play queue on the server: play, next, previous, queue (Spotify's player API)."""
