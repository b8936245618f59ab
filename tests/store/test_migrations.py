"""store/migrate.py and migrations/: head matches store/models.py on SQLite and Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect
from sqlalchemy import text as sa_text

from grader.outcomes import Outcome
from grader.results import GradingResult
from grader.scoring import Late
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


LEGACY_DOCUMENT = {
    "score": 12.0, "execution_time": 1.5, "visibility": "visible", "stdout_visibility": "hidden",
    "output": "Submitted 2 days late: the score of 15 is reduced by 20% to 12.\n\nSeed 7.",
    "tests": [
        {"name": "A", "number": "1", "score": 10.0, "max_score": 10.0, "status": "passed",
         "output": "Passed.", "visibility": "visible", "tags": []},
        {"name": "B", "number": "2", "score": 5.0, "max_score": 10.0, "status": "failed",
         "output": "Time limit.", "visibility": "hidden", "tags": ["slow"],
         "extra_data": {"curves": {"loss": [1.0]}}},
    ],
}


def legacy_rows(url: str) -> None:
    """A late graded submission as the worker stored it before 0008 (the tables as they
    are at 0007, reflected)."""
    engine = make_engine(url)
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)

        def insert(table: str, **values: object) -> None:
            connection.execute(tables.tables[table].insert().values(**values))

        insert("users", id=1, email="a@example.edu", name="A", password_hash="x",
               role="student", created_at=stamp)
        insert("courses", id=1, slug="dl101", title="DL", timezone="UTC")
        insert("assignments", id=1, course_id=1, slug="hw", title="HW", queue="cpu",
               late_penalty_per_day=0.1, hidden_visible_after_due=True, students_choose=False)
        insert("submissions", id=1, assignment_id=1, user_id=1, status="done", attempt=1,
               archive_sha256="0" * 64, archive_size=1, filename="h.tgz", late_days=2,
               score=12.0, max_score=20.0, results=LEGACY_DOCUMENT, created_at=stamp)
        for position, (name, outcome, detail) in enumerate([("A", "passed", ""),
                                                            ("B", "timeout", "STAFF")]):
            insert("test_scores", submission_id=1, position=position, number=str(position + 1),
                   name=name, score=0.0, max_score=10.0, outcome=outcome, visibility="visible",
                   output="", staff_detail=detail)
    engine.dispose()


def stored(url: str) -> tuple[float, dict[str, Any]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        score, results = connection.execute(sa_text(
            "SELECT score, results FROM submissions WHERE id = 1")).one()
    engine.dispose()
    return float(score), results if isinstance(results, dict) else json.loads(results)


def test_0008_converts_stored_documents_to_records_and_back(any_database_url: str) -> None:
    command.upgrade(alembic_config(any_database_url), "0007_web_grading")
    legacy_rows(any_database_url)
    upgrade(any_database_url)
    score, record = stored(any_database_url)
    assert score == 15.0  # the graded points: the score that counts is computed when shown
    result = GradingResult.from_record(record)
    assert (record["record"], result.late) == (2, Late(2, 0.1))
    assert result.output == "Seed 7."  # the prose note is gone; lateness is a field
    assert [(t.outcome, t.staff_detail) for t in result.tests] == [
        (Outcome.PASSED, ""), (Outcome.TIMEOUT, "STAFF")]
    assert result.tests[1].extra_data == {"curves": {"loss": [1.0]}}
    assert result.to_gradescope()["score"] == 12.0
    command.downgrade(alembic_config(any_database_url), "0007_web_grading")
    score, document = stored(any_database_url)
    assert score == 12.0
    assert document == LEGACY_DOCUMENT
