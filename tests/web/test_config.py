"""web/config.py: defaults -> instance file -> DLGRADE_* environment -> create_app mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.settings import ConfigError
from web import config, create_app


def test_instance_toml_keys(tmp_path: Path) -> None:
    (tmp_path / "dlgrade.toml").write_text('data_dir = "/srv/x"\nSESSION_COOKIE_SECURE = true\n')
    assert config.instance_file(tmp_path) == {"DLGRADE_DATA_DIR": "/srv/x",
                                              "SESSION_COOKIE_SECURE": True}


def test_instance_py(tmp_path: Path) -> None:
    (tmp_path / "dlgrade.py").write_text("DLGRADE_MAX_ATTEMPTS = 5\nlower = 1\n")
    assert config.instance_file(tmp_path) == {"DLGRADE_MAX_ATTEMPTS": 5}


def test_no_instance_file(tmp_path: Path) -> None:
    assert config.instance_file(tmp_path) == {}


def test_environment_only_takes_dlgrade_keys() -> None:
    assert config.environment({"DLGRADE_A": "1", "HOME": "/root"}) == {"DLGRADE_A": "1"}


def test_layers_override_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "dlgrade.toml").write_text("max_attempts = 7\nlease_seconds = 30\nembedded = 1\n")
    monkeypatch.setenv("DLGRADE_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("DLGRADE_LEASE_SECONDS", "45")
    app = create_app({"DLGRADE_DATA_DIR": str(tmp_path), "DLGRADE_MAX_UPLOAD_BYTES": "1000"})
    settings = app.extensions["dlgrade"].settings
    assert settings.max_attempts == 7  # instance file
    assert settings.lease_seconds == 45  # environment over instance file
    assert settings.max_upload_bytes == 1000  # create_app mapping
    assert app.config["SECRET_KEY"] == settings.secret_key
    app.extensions["dlgrade"].engine.dispose()


def test_production_needs_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLGRADE_SECRET_KEY", raising=False)
    monkeypatch.delenv("DLGRADE_EMBEDDED", raising=False)
    with pytest.raises(ConfigError, match="DLGRADE_SECRET_KEY is not set"):
        create_app({"DLGRADE_DATA_DIR": str(tmp_path), "DLGRADE_BROKER_URL": "redis://x"})
