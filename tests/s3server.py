"""A real S3-compatible server for tests: moto's standalone server, run as a subprocess.

One server per test session (started on first use, stopped at exit); each test gets a fresh
bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import atexit
import functools
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Static test credentials: moto accepts any; they keep boto3 away from the developer's own.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@functools.cache
def endpoint() -> str:
    """The running server's base URL (started on the first call)."""
    port = _free_port()
    # Its request log, read back only if it fails to start; lives as long as the server (see stop).
    log = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    atexit.register(stop)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"moto server exited with {proc.returncode}: {err}")
        try:
            if httpx.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"moto server did not answer on {url} within 30 s")
        time.sleep(0.1)


def use_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)


@functools.cache
def client() -> S3Client:
    """A client for the test server, for setup and for looking behind the adapter's back."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint(),
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def new_bucket() -> str:
    """Creates an empty bucket on the test server and returns its name."""
    name = f"t-{secrets.token_hex(8)}"
    client().create_bucket(Bucket=name)
    return name
