"""Quality follows the plan's features: free streams up to 160 kb/s and is refused (and logged)
above it; high_quality opens 320 kb/s and the lossless original; features are data."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.premium import make_free, make_premium
from tonearm.bootstrap import Container
from tonearm.domains.billing.tables import plan_features

from .conftest import grant, listener, music, uploaded


def test_free_is_capped_refused_above_it_and_the_refusal_is_logged(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = listener(client)
    h = tok["headers"]
    track_id = uploaded(client, container, tmp_path, h)
    free = grant(client, track_id, h)
    assert {r["name"] for r in free["renditions"]} == {"aac_96", "aac_160"}
    assert free["quality_cap_kbps"] == 160 and free["lossless"] is False
    for fmt, what in (("aac_320", "320 kb/s"), ("mp3_320", "320 kb/s"), ("flac", "lossless")):
        r = client.get(f"/v1/tracks/{track_id}/playback", headers=h, params={"format": fmt})
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["reason"] == "premium_required" and err["max_kbps"] == 160
        assert f"format {fmt} ({what}) is above what your plan streams (up to 160 kb/s)" in err["message"]
    # What the plan allows is still granted on request.
    assert grant(client, track_id, h)["quality_cap_kbps"] == 160
    ok = client.get(f"/v1/tracks/{track_id}/playback", headers=h, params={"format": "opus_96"})
    assert ok.status_code == 200

    log = client.get("/v1/me/entitlements/log", headers=h).json()["items"]
    assert len(log) == 3
    assert {(d["action"], d["allowed"], d["reason"]) for d in log} == {("quality", False, "premium_required")}
    assert "asked for flac (lossless); plan free streams up to 160 kb/s" in [d["detail"] for d in log]


def test_premium_gets_320_and_the_original_until_it_lapses(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    tok = listener(client)
    h = tok["headers"]
    track_id = uploaded(client, container, tmp_path, h)
    make_premium(container, tok["user_id"])
    premium = grant(client, track_id, h)
    assert {r["name"] for r in premium["renditions"]} == {"aac_96", "aac_160", "aac_320", "original"}
    assert premium["quality_cap_kbps"] == 320 and premium["lossless"] is True
    r = client.get(f"/v1/tracks/{track_id}/playback", headers=h, params={"format": "mp3_320"})
    assert r.status_code == 200 and "mp3_320" in {x["name"] for x in r.json()["renditions"]}
    assert client.get("/v1/me/entitlements/log", headers=h).json()["items"] == []

    make_free(container, tok["user_id"])
    assert grant(client, track_id, h)["quality_cap_kbps"] == 160


def test_quality_comes_from_the_plans_features(client: TestClient, container: Container) -> None:
    tok = listener(client)
    (track_id,) = music(container, 1)
    with container.db.write() as conn:
        conn.execute(sa.insert(plan_features).values(plan_id="free", feature_id="high_quality"))
    container.entitlements.invalidate()
    body = grant(client, track_id, tok["headers"])
    assert body["quality_cap_kbps"] == 320
    assert client.get("/v1/me/entitlements", headers=tok["headers"]).json()["quality"] == {
        "max_kbps": 320,
        "lossless": True,
    }
