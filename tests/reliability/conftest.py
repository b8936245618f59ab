"""Fixtures from tests/services.py, the worker harness (real Celery workers) and the rest
of the production shape (gunicorn, a Postgres of the test's own, tmpfs mounts)."""

from tests.reliability.harness import clusters  # noqa: F401 - fixtures are found by name
from tests.reliability.stack import private_postgres, tmpfs_mounts, webs  # noqa: F401
from tests.services import (  # noqa: F401
    postgres_url,
    private_redis,
    redis_url,
)
