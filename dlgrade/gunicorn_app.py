"""``dlgrade web``: the Flask app under gunicorn, started programmatically.

Each gunicorn worker builds its own app (no preloading), so no database connection or
broker connection crosses a fork. Settings come from the ``DLGRADE_*`` environment.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class WebApplication(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from web import create_app

        return create_app()
