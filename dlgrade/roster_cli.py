"""``dlgrade roster`` (import a CSV roster, list, remove) and ``dlgrade users
reset-link`` (a password link to hand out when the service sends no e-mail).

The same store functions as the course's people page (:mod:`store.courses`,
:mod:`store.resets`). Links are printed with ``--url`` (the service's public address,
default ``$DLGRADE_PUBLIC_URL`` or http://127.0.0.1:8000/).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dlgrade.service_cli import CommandError, SubParsers, database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.models import Course

DEFAULT_URL = "http://127.0.0.1:8000/"


def add_roster_commands(commands: SubParsers[argparse.ArgumentParser]) -> None:
    roster = commands.add_parser("roster", help="a course's people: import a CSV, list, "
                                 "remove").add_subparsers(required=True, metavar="ACTION")
    load = roster.add_parser("import", help="enroll everyone in a CSV (email, name, role)")
    load.add_argument("course")
    load.add_argument("csv", type=Path)
    load.set_defaults(run=run_roster_import)
    listing = roster.add_parser("list", help="print the course's people (CSV)")
    listing.add_argument("course")
    listing.set_defaults(run=run_roster_list)
    remove = roster.add_parser("remove", help="take a person out of the course")
    remove.add_argument("course")
    remove.add_argument("email")
    remove.set_defaults(run=run_roster_remove)
    for parser in (load, listing, remove):
        parser.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
        parser.add_argument("--url", default=None, help="the service's public address")


def add_reset_link_command(users: SubParsers[argparse.ArgumentParser]) -> None:
    reset = users.add_parser("reset-link", help="print a single-use password link (24 h)")
    reset.add_argument("email")
    reset.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    reset.add_argument("--url", default=None, help="the service's public address")
    reset.set_defaults(run=run_reset_link)


def link(args: argparse.Namespace, raw: str) -> str:
    base = args.url or os.environ.get("DLGRADE_PUBLIC_URL") or DEFAULT_URL
    return f"{base.rstrip('/')}/password/reset/{raw}"


def _course(db: Session, slug: str) -> Course:
    from store.courses import find_course

    found = find_course(db, slug)
    if found is None:
        raise CommandError(f"there is no course {slug!r} (dlgrade courses add makes one).")
    return found


def run_roster_import(args: argparse.Namespace) -> int:
    from store.courses import CourseError, import_roster, parse_roster
    from store.resets import issue_reset

    try:
        text = args.csv.read_text(encoding="utf-8-sig")
        lines, problems = parse_roster(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {args.csv}: {exc}") from None
    except CourseError as exc:
        raise CommandError(str(exc)) from None
    with database(args.data_dir) as db:
        course = _course(db, args.course)
        report = import_roster(db, course, lines)
        report.problems[:0] = problems
        links = [(user.email, link(args, issue_reset(db, user))) for user in report.created]
        db.commit()
    print(f"{args.course}: {report.sentence()}")
    for problem in report.problems:
        print(f"  skipped {problem}")
    if links:
        print("Password links for the new accounts (each works once, for 24 hours):")
        for email, url in links:
            print(f"  {email}  {url}")
    return 0


def run_roster_list(args: argparse.Namespace) -> int:
    from store.courses import members

    with database(args.data_dir) as db:
        course = _course(db, args.course)
        print("email,name,role")
        for enrollment in members(db, course):
            print(f"{enrollment.user.email},{enrollment.user.name},{enrollment.role}")
    return 0


def run_roster_remove(args: argparse.Namespace) -> int:
    from store.courses import unenroll
    from store.users import find_user

    with database(args.data_dir) as db:
        course = _course(db, args.course)
        user = find_user(db, args.email)
        if user is None or not unenroll(db, course, user.id):
            raise CommandError(f"{args.email} is not in {args.course}.")
        db.commit()
    print(f"Removed {args.email} from {args.course} (their submissions are kept).")
    return 0


def run_reset_link(args: argparse.Namespace) -> int:
    from store.resets import issue_reset
    from store.users import find_user

    with database(args.data_dir) as db:
        user = find_user(db, args.email)
        if user is None:
            raise CommandError(f"there is no user {args.email!r}.")
        raw = issue_reset(db, user)
        db.commit()
    print(link(args, raw))
    return 0
