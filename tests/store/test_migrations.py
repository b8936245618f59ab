"""store/migrate.py and migrations/: head matches store/models.py on SQLite and Postgres."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect

from store.db import make_engine
from store.migrate import (
    MigrationError,
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from store.models import Base


def differences(url: str, metadata: MetaData = Base.metadata) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_head_matches_the_models(any_database_url: str) -> None:
    upgrade(any_database_url)
    assert current_revision(any_database_url) == head_revision()
    assert differences(any_database_url) == []


def test_the_comparison_would_notice_a_difference(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    Table("extra", changed, Column("id", Integer, primary_key=True))
    changed.tables["users"].append_column(Column("shoe_size", Integer))
    found = differences(sqlite_url, changed)
    assert sorted(str(d[0]) for d in found) == ["add_column", "add_table"]  # type: ignore[index]


def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    upgrade(sqlite_url)
    assert current_revision(sqlite_url) == head_revision()


def test_downgrade_to_base_and_back(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    command.downgrade(alembic_config(sqlite_url), "base")
    engine = make_engine(sqlite_url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(sqlite_url)
    assert differences(sqlite_url) == []


def test_a_database_made_by_create_all_is_adopted(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    upgrade(sqlite_url)
    assert current_revision(sqlite_url) == head_revision()


def test_an_unversioned_database_that_differs_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    Base.metadata.tables["users"].create(engine)
    engine.dispose()
    with pytest.raises(MigrationError, match="no migration history"):
        upgrade(sqlite_url)


def test_the_scripts_are_found_through_the_package() -> None:
    location = Path(str(files("migrations")))
    assert (location / "env.py").is_file()
    assert alembic_config("sqlite://").get_main_option("script_location") == str(location)
    assert (location / "script.py.mako").is_file()


def test_an_ini_file_in_the_repository_points_at_the_same_scripts() -> None:
    root = Path(__file__).resolve().parents[2]
    assert "script_location = %(here)s/migrations" in (root / "alembic.ini").read_text()
