"""Fixtures from tests/services.py (migrated SQLite databases)."""

from tests.services import sqlite_factory, sqlite_url  # noqa: F401 - fixtures are found by name
