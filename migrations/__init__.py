"""Alembic migrations of the dlgrade database (run them with ``store.migrate.upgrade``)."""
