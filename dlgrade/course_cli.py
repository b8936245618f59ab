"""``dlgrade courses add SLUG`` and ``dlgrade assignments new SLUG --from HANDOUT_DIR``.

``courses add`` creates a course (``assignments add --course`` needs one); on an embedded
(SQLite) data dir it first brings the schema up to date, as ``serve`` does, since it is
usually the first command run against a new data dir. ``assignments new`` writes an
assignment folder to fill in (``grader.scaffold``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from dlgrade.service_cli import CommandError, SubParsers, database, database_settings

COURSE_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def add_course_commands(commands: SubParsers[argparse.ArgumentParser]) -> None:
    courses = commands.add_parser("courses", help="manage courses").add_subparsers(
        required=True, metavar="ACTION")
    add = courses.add_parser("add", help="create a course")
    add.add_argument("slug", help="e.g. dl101 (letters, digits, dashes)")
    add.add_argument("--title", default=None, help="default: the slug")
    add.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    add.set_defaults(run=run_courses_add)


def add_new_assignment_command(actions: argparse._SubParsersAction[argparse.ArgumentParser],
                               ) -> None:
    new = actions.add_parser("new", help="write an assignment folder to fill in, from a "
                             "course's handout")
    new.add_argument("slug")
    new.add_argument("--from", dest="handout", type=Path, required=True,
                     help="the handout folder (starter code, and its local autograder)")
    new.add_argument("-o", "--output", type=Path, default=None, help="default: ./SLUG")
    new.set_defaults(run=run_assignments_new)


def run_courses_add(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from store.models import Course

    if not COURSE_SLUG.match(args.slug):
        raise CommandError(f"{args.slug!r} cannot name a course; use lower-case letters, "
                           "digits and dashes.")
    _prepare_embedded(args.data_dir)
    with database(args.data_dir) as db:
        if db.scalars(select(Course).where(Course.slug == args.slug)).first() is not None:
            raise CommandError(f"the course {args.slug!r} exists already.")
        db.add(Course(slug=args.slug, title=args.title or args.slug))
        db.commit()
    print(f"Added course {args.slug}. Next: dlgrade users add EMAIL --role staff --course "
          f"{args.slug}; dlgrade assignments add FOLDER --course {args.slug} --verify")
    return 0


def _prepare_embedded(data_dir: Path | None) -> None:
    """Create and migrate an embedded SQLite database (a no-op when it is up to date); a
    server database (Postgres) is left to ``dlgrade migrate``."""
    from store.migrate import MigrationError, upgrade

    settings = database_settings(data_dir)
    if not settings.database_url.startswith("sqlite"):
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.database_url)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None


def run_assignments_new(args: argparse.Namespace) -> int:
    from grader.scaffold import ScaffoldError, scaffold

    destination = args.output or Path(args.slug)
    try:
        folder = scaffold(args.slug, args.handout, destination)
    except ScaffoldError as exc:
        raise CommandError(str(exc)) from None
    print(f"Wrote {folder}/: spec.toml, checks.py, handout/, solution/, bugs/example/, "
          "course_tests/.\nNext: complete solution/ and the TODOs, then "
          f"dlgrade assignments verify {folder} (docs/writing-assignments.md).")
    return 0
