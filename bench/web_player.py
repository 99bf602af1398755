"""The web player in headless Chromium (Debian's) on loopback: what issue 8 is judged by.

* **first load**: the JavaScript and CSS the app page pulls in, as sent (the server's own
  encoding) and gzipped (what any compressing proxy or a future compressing server would send),
  and the time from navigation to an interactive home page (logged in: the album grid rendered,
  every cover image decoded). Target: < 250 KB compressed, interactive < 1 s.
* **click to audio**: from a click on a track row to the audio element's first `playing` event,
  for `--plays` different tracks in turn (each click asks for a grant and starts HLS). Target:
  median < 300 ms.

The catalog is `--tracks` short synthesized FLAC tracks imported with `tonearm import`; the server
is `tonearm serve` with its in-process workers, measured once every transcode is done.

    .venv/bin/python bench/web_player.py [--tracks 20] [--plays 20]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from _common import free_port, machine

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
TONEARM = str(Path(sys.executable).with_name("tonearm"))


def make_library(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        subprocess.run(
            [
                "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi",
                "-i", f"sine=frequency={220 + 20 * i}:duration=20",
                "-metadata", f"title=Bench Song {i}", "-metadata", "artist=Bench Band",
                "-metadata", f"album=Bench Album {i // 10}", "-metadata", f"track={i % 10 + 1}",
                str(folder / f"{i:03d}.flac"),
            ],
            check=True,
        )  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not become ready")


def wait_transcoded(base: str, n: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metrics = httpx.get(base + "/metrics").text
        done = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("tonearm_jobs_total{")
            and 'kind="ingest.track_renditions"' in line
            and 'outcome="done"' in line
        )
        if done >= n:
            return
        time.sleep(1)
    raise RuntimeError("transcodes did not finish")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=20)
    ap.add_argument("--plays", type=int, default=20)
    args = ap.parse_args()
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="tonearm-webbench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TONEARM_DATA_DIR": str(tmp / "data"),
        "TONEARM_PORT": str(port),
        "TONEARM_PUBLIC_URL": base,
        "TONEARM_SECRET_KEY": "b" * 40,
        "TONEARM_LOG_LEVEL": "WARNING",
    }
    make_library(tmp / "lib", args.tracks)
    subprocess.run([TONEARM, "import", str(tmp / "lib")], env=env, check=True, capture_output=True)
    subprocess.run(
        [
            TONEARM,
            "user",
            "create",
            "--email",
            "w@example.com",
            "--name",
            "Web",
            "--password",
            "web bench pw",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen([TONEARM, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base, proc)
        wait_transcoded(base, args.tracks)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
            )
            page = browser.new_page(bypass_csp=True)
            page.goto(f"{base}/#/login")
            page.fill("input[name=email]", "w@example.com")
            page.fill("input[name=password]", "web bench pw")
            page.click("button.primary")
            page.wait_for_selector(".grid .card img")

            # First load, logged in (tokens in localStorage), caches emptied.
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.clearBrowserCache")
            t0 = time.perf_counter()
            page.goto(f"{base}/", wait_until="commit")
            page.wait_for_selector(".grid .card img")
            page.wait_for_function("[...document.querySelectorAll('.grid .card img')].every(i => i.complete)")
            interactive_ms = (time.perf_counter() - t0) * 1000
            assets = page.evaluate(
                "performance.getEntriesByType('resource').filter(r => /\\.(js|css)(\\?|$)/.test(r.name))"
                ".map(r => r.name)"
            )
            sent = raw = gz = 0
            encodings = set()
            for url in assets:
                with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:  # as a browser asks
                    wire = b"".join(r.iter_raw())  # the bytes on the wire, before decoding
                    encodings.add(r.headers.get("content-encoding", "identity"))
                body = gzip.decompress(wire) if r.headers.get("content-encoding") == "gzip" else wire
                sent += len(wire)
                raw += len(body)
                gz += len(gzip.compress(body, 9))
            print(
                f"first load: {len(assets)} JS/CSS files, {sent / 1024:.0f} KB as sent "
                f"({'+'.join(sorted(encodings))}), {raw / 1024:.0f} KB decoded, {gz / 1024:.0f} KB at gzip -9"
                "  [target < 250 KB compressed]"
            )
            print(
                f"interactive (home with covers, logged in, cold cache): {interactive_ms:.0f} ms"
                "  [target < 1 s]"
            )

            # Click to audio.
            page.click(".grid .card >> nth=0")
            page.wait_for_selector("table.tracks tr.track")
            rows = page.locator("table.tracks tr.track").count()
            results: list[float] = []
            for k in range(args.plays):
                page.evaluate(
                    "() => { window.__benchPlaying = null; const a = document.querySelector('#audio');"
                    " a.pause(); a.addEventListener('playing',"
                    " () => { window.__benchPlaying = performance.now(); }, { once: true }); }"
                )
                row = page.locator("table.tracks tr.track td.dur").nth(k % rows)  # not a link
                row.evaluate("el => { window.__benchClick = performance.now(); }")
                row.click()
                page.wait_for_function("window.__benchPlaying !== null", timeout=15_000)
                results.append(page.evaluate("window.__benchPlaying - window.__benchClick"))
            results.sort()
            print(
                f"click to audio ({len(results)} plays): median {statistics.median(results):.0f} ms, "
                f"p90 {results[int(0.9 * (len(results) - 1))]:.0f} ms, max {results[-1]:.0f} ms"
                "  [target median < 300 ms]"
            )
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
