"""The web app's static files: gzipped for browsers that ask, byte-identical once decoded."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tonearm.http.app import WEB_DIR


def test_static_files_are_gzipped_when_asked(client: TestClient) -> None:
    original = (WEB_DIR / "static" / "player.js").read_bytes()
    r = client.get("/static/player.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < len(original) / 2
    assert r.content == original  # httpx decodes it
    plain = client.get("/static/player.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == original
    # Revalidation still works: a 304 with no body.
    again = client.get(
        "/static/player.js", headers={"If-None-Match": r.headers["etag"], "Accept-Encoding": "gzip"}
    )
    assert again.status_code == 304 and again.content == b""
