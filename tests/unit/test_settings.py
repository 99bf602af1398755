"""Settings come from tonearm.toml and TONEARM_* variables; the environment wins; derived URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tonearm.config import Settings


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "tonearm.toml"
    toml.write_text('port = 9000\npublic_url = "https://music.example"\naac_coder = "twoloop"\n')
    monkeypatch.setenv("TONEARM_CONFIG", str(toml))
    monkeypatch.setenv("TONEARM_PORT", "9100")
    monkeypatch.setenv("TONEARM_DATA_DIR", str(tmp_path / "d"))
    s = Settings()
    assert s.port == 9100  # the environment wins over the file
    assert s.public_url == "https://music.example" and s.aac_coder == "twoloop"
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'd' / 'tonearm.db').resolve()}"
    assert s.resolved_blob_url == f"file://{(tmp_path / 'd' / 'blobs').resolve()}"


def test_secret_is_generated_once_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONEARM_CONFIG", str(tmp_path / "absent.toml"))
    s = Settings(data_dir=tmp_path)
    first = s.resolved_secret_key()
    assert len(first) >= 40 and s.resolved_secret_key() == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TONEARM_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("TONEARM_AAC_CODER", "turbo")
    with pytest.raises(ValidationError):
        Settings()
