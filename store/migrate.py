"""Schema migrations, run programmatically: ``upgrade(url)`` brings a database to head.

The scripts live in the top-level ``migrations`` package, found through the import
system, so this works from the repository and from an installed distribution alike.
A database made by ``Base.metadata.create_all`` before migrations existed (no
``alembic_version`` table, but every table present and matching) is stamped instead of
migrated.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from store.db import make_engine
from store.models import Base


class MigrationError(Exception):
    """The database cannot be brought to the current schema; the message says why."""


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """A Config pointing at the packaged scripts; the URL is passed as an attribute
    (not an ini option, where a ``%`` in a password would be taken for interpolation)."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise MigrationError("the migrations package has no revisions")
    return head


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision (idempotent)."""
    if _unversioned_but_current(url):
        command.stamp(alembic_config(url), "head")
        return
    command.upgrade(alembic_config(url), "head")


def _unversioned_but_current(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            if "alembic_version" in tables or not tables & set(Base.metadata.tables):
                return False
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    if differences:
        raise MigrationError(
            "the database has dlgrade tables but no migration history, and they differ from "
            f"the current schema ({len(differences)} differences); migrate it by hand"
        )
    return True
