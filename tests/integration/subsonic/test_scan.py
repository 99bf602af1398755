"""startScan rescans the server's music folder in a job; getScanStatus shows it from any process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_settings, make_tone
from tests.integration.subsonic.conftest import make_listener
from tests.subsonic import check, error_code
from tonearm import migrate
from tonearm.bootstrap import Container, bootstrap
from tonearm.http.app import create_app


@pytest.fixture
def scanning(tmp_path: Path, db_url: str) -> Iterator[tuple[Container, TestClient, Path]]:
    music = tmp_path / "music"
    music.mkdir()
    migrate.upgrade(db_url)
    c = bootstrap(make_settings(tmp_path, db_url, search_url="memory://", library_dir=music))
    try:
        with TestClient(create_app(c, start_workers=False)) as client:
            yield c, client, music
    finally:
        c.close()


def test_a_scan_imports_new_files_and_reports_progress(
    scanning: tuple[Container, TestClient, Path], have_ffmpeg: None
) -> None:
    c, client, music = scanning
    admin = make_listener(c, "admin@example.com", role="admin")
    listener = make_listener(c, "me@example.com")

    def call(method: str, who: str) -> dict[str, Any]:
        answer: dict[str, Any] = check(
            method, client.get(f"/rest/{method}", params={"apiKey": who, "f": "json"})
        )
        return answer

    for i in range(2):
        make_tone(
            music / f"{i}.flac",
            seconds=2,
            freq=330 + 110 * i,
            tags={"title": f"Scanned {i}", "artist": "Folder"},
        )
    assert error_code(call("startScan", listener.api_key)) == 50
    started = call("startScan", admin.api_key)
    assert started["scanStatus"] == {"scanning": True, "count": 0, "folderCount": 1}
    # Asking again while it is queued answers the same scan, not a second one.
    assert call("startScan", admin.api_key)["scanStatus"]["scanning"] is True
    c.worker(name="test").drain()
    status = call("getScanStatus", listener.api_key)["scanStatus"]
    assert status["scanning"] is False and status["count"] == 2 and "lastScan" in status
    scan = c.scans.status()
    assert (scan["found"], scan["imported"], scan["failed"]) == (2, 2, 0)
    songs = check(
        "search3",
        client.get("/rest/search3", params={"apiKey": listener.api_key, "f": "json", "query": "Scanned"}),
    )
    assert sorted(s["title"] for s in songs["searchResult3"].get("song", [])) == ["Scanned 0", "Scanned 1"]

    # A rescan reads only what changed.
    make_tone(music / "2.flac", seconds=2, freq=660, tags={"title": "Scanned 2", "artist": "Folder"})
    call("startScan", admin.api_key)
    c.worker(name="test").drain()
    scan = c.scans.status()
    assert (scan["found"], scan["imported"], scan["unchanged"]) == (1, 1, 2)
