"""Fixtures from tests/services.py (real Redis / Postgres, migrated databases, rows)."""

from tests.services import (  # noqa: F401 - fixtures are found by name
    any_database_url,
    db_factory,
    postgres_url,
    private_redis,
    redis_url,
    sqlite_factory,
    sqlite_url,
)
