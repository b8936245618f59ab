"""Alembic environment: works from the repository (``alembic -c alembic.ini``) and from an
installed package (``store.migrate.upgrade``).

The URL comes from ``config.attributes["url"]`` (programmatic use), else
``sqlalchemy.url`` in the ini file, else ``DLGRADE_DATABASE_URL``. On Postgres the run
holds an advisory lock, so a web and a worker starting together migrate once.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, text

from store.db import make_engine
from store.models import Base

MIGRATION_LOCK = 7_406_315_201  # any constant; the same in every process

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    url = url or os.environ.get("DLGRADE_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set DLGRADE_DATABASE_URL or sqlalchemy.url")
    return str(url)


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection, url=url, target_metadata=target_metadata,
        compare_type=True, render_as_batch=True,  # batch: SQLite cannot ALTER most things
        literal_binds=connection is None,
    )


def run_offline() -> None:
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            migrate(connection)
    finally:
        engine.dispose()


def migrate(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
    try:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
