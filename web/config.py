"""Configuration, flowing one way: defaults -> instance file -> ``DLGRADE_*`` environment
-> the mapping given to ``create_app`` (tests, ``dlgrade serve``).

The instance file is ``dlgrade.toml`` in Flask's instance folder (``instance/`` beside
the package, or ``$DLGRADE_INSTANCE_PATH``) (top-level keys: ``data_dir = "..."`` means
``DLGRADE_DATA_DIR``; upper-case keys are taken as they are) or ``instance/dlgrade.py``
(upper-case names). The merged ``app.config`` is turned into one typed
:class:`tasks.settings.Settings`; nothing below the web layer reads ``app.config``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from tasks.settings import Settings

DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 14 * 24 * 3600,
}
# Multipart framing on top of the file itself; the exact per-assignment limit is
# enforced while the archive is stored (web.uploads), this only stops huge bodies.
FORM_OVERHEAD_BYTES = 1 << 20


def init_app(app: Flask, overrides: Mapping[str, Any] | None) -> Settings:
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(instance_file(Path(app.instance_path)))
    app.config.from_mapping(environment(os.environ))
    if overrides:
        app.config.from_mapping(overrides)
    settings = Settings.from_mapping(app.config)
    app.config["SECRET_KEY"] = settings.secret_key
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask defines the key as None
        app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    return settings


def instance_path() -> str | None:
    """The instance folder: ``$DLGRADE_INSTANCE_PATH``, else Flask's default."""
    given = os.environ.get("DLGRADE_INSTANCE_PATH")
    return str(Path(given).resolve()) if given else None


def instance_file(folder: Path) -> dict[str, Any]:
    """The keys of ``dlgrade.toml`` or, failing that, ``dlgrade.py`` in ``folder``."""
    toml = folder / "dlgrade.toml"
    if toml.is_file():
        with toml.open("rb") as fh:
            return {_key(name): value for name, value in tomllib.load(fh).items()}
    source = folder / "dlgrade.py"
    if source.is_file():
        namespace: dict[str, Any] = {"__file__": str(source)}
        exec(compile(source.read_bytes(), str(source), "exec"), namespace)
        return {name: value for name, value in namespace.items() if name.isupper()}
    return {}


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if name.startswith("DLGRADE_")}


def _key(name: str) -> str:
    return name if name.isupper() else f"DLGRADE_{name.upper()}"
