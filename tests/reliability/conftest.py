"""Fixtures from tests/services.py and the worker harness (real Celery workers)."""

from tests.reliability.harness import clusters  # noqa: F401 - fixtures are found by name
from tests.services import (  # noqa: F401
    postgres_url,
    private_redis,
    redis_url,
)
