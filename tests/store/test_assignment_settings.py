"""Assignment settings and rows (store/assignment_settings.py): dates, late policy, limits,
each refusal with its exact sentence; create, update and the built-in guard."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from store.assignment_folders import add_folder
from store.assignment_settings import (
    Changes,
    SettingsError,
    apply,
    find_course,
    parse_when,
    save_assignment,
)
from store.db import SessionFactory
from store.models import Assignment, Course
from tests.tiny_assignment import write_tiny

DUE = datetime(2025, 3, 1, 23, 59, tzinfo=UTC)


def when(text: str) -> datetime | None:
    return parse_when(text, "--due")


def test_iso_dates_with_and_without_an_offset() -> None:
    assert when("2025-03-01T23:59") == DUE  # no offset: UTC
    assert when("2025-03-02T00:59+01:00") == DUE
    assert when("2025-03-01 23:59:00Z") == DUE
    assert when("") is None and parse_when(None, "--due") is None


def test_a_date_that_is_not_iso() -> None:
    with pytest.raises(SettingsError) as caught:
        when("next friday")
    assert str(caught.value) == ("--due: 'next friday' is not a date and time in ISO 8601 form, "
                                 "such as 2025-03-01T23:59 (UTC) or 2025-03-01T23:59+01:00.")


def row(**fields: object) -> Assignment:
    values: dict[str, object] = dict(title="T", release_at=None, due_at=DUE, late_due_at=None,
                                     late_penalty_per_day=0.0, daily_limit=None,
                                     hidden_visible_after_due=True)
    return Assignment(slug="x", **{**values, **fields})


@pytest.mark.parametrize("changes, message", [
    (Changes(late_due_at=DUE), "The late due date (2025-03-01 23:59 UTC) must be after the due "
                               "date (2025-03-01 23:59 UTC)."),
    (Changes(due_at=None, late_due_at=DUE), "A late due date needs a due date too."),
    (Changes(release_at=datetime(2025, 3, 2, tzinfo=UTC)),
     "The release date (2025-03-02 00:00 UTC) must be before the due date (2025-03-01 23:59 UTC)."),
    (Changes(late_penalty_per_day=1.5), "The late penalty is a fraction per day between 0 and 1 "
                                        "(0.1 is 10% a day), not 1.5."),
    (Changes(daily_limit=0), "The daily limit must be at least 1 submission (leave it empty for "
                             "no limit), not 0."),
    (Changes(title="  "), "The title must be between 1 and 200 characters."),
])
def test_settings_that_do_not_fit_together(changes: Changes, message: str) -> None:
    target = row()
    with pytest.raises(SettingsError) as caught:
        apply(target, changes)
    assert str(caught.value) == message
    assert target.due_at == DUE and target.title == "T"  # nothing was changed


def test_unset_fields_keep_their_value_and_are_checked_with_the_new_ones() -> None:
    target = row(late_due_at=datetime(2025, 3, 3, tzinfo=UTC))
    with pytest.raises(SettingsError, match="must be after the due date"):
        apply(target, Changes(due_at=datetime(2025, 3, 4, tzinfo=UTC)))
    apply(target, Changes(daily_limit=3, late_penalty_per_day=0.1))
    assert (target.daily_limit, target.late_penalty_per_day, target.due_at) == (3, 0.1, DUE)


def test_create_then_update_points_at_the_new_version(
    sqlite_factory: SessionFactory, tmp_path: Path
) -> None:
    folder = write_tiny(tmp_path / "tiny-hw")
    with sqlite_factory() as db:
        db.add(Course(slug="dl101", title="DL"))
        db.commit()
        course = find_course(db, "dl101")
        first = add_folder(folder, tmp_path / "data", "dl101")
        created, is_new = save_assignment(db, course, first, Changes(due_at=DUE, daily_limit=5))
        db.commit()
        assert is_new and (created.title, created.folder) == ("Tiny homework", str(first.path))
        (folder / "solution/answer.py").write_text("VALUE = 42\ndef double(x): return x + x\n")
        second = add_folder(folder, tmp_path / "data", "dl101")
        updated, is_new = save_assignment(db, course, second, Changes(title="Renamed"))
        db.commit()
        assert not is_new and updated.id == created.id
        assert (updated.folder, updated.title, updated.due_at, updated.daily_limit) == (
            str(second.path), "Renamed", DUE, 5)
        assert updated.queue == "cpu"


def test_a_builtin_of_the_course_is_not_replaced(
    sqlite_factory: SessionFactory, tmp_path: Path
) -> None:
    stored = add_folder(write_tiny(tmp_path / "tiny-hw"), tmp_path / "data", "dl101")
    with sqlite_factory() as db:
        course = Course(slug="dl101", title="DL")
        db.add(course)
        db.flush()
        db.add(Assignment(course_id=course.id, slug="tiny-hw", title="old", folder=None))
        db.flush()
        with pytest.raises(SettingsError) as caught:
            save_assignment(db, course, stored, Changes())
    assert str(caught.value) == ("dl101 already uses the built-in assignment 'tiny-hw'; choose "
                                 "another slug in spec.toml.")


def test_an_unknown_course(sqlite_factory: SessionFactory) -> None:
    with sqlite_factory() as db, pytest.raises(SettingsError) as caught:
        find_course(db, "nope")
    assert str(caught.value) == "There is no course 'nope'."
