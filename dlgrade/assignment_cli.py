"""``dlgrade assignments add PATH --course SLUG`` and ``dlgrade export-gradescope``.

``add`` validates a folder or archive (see ``store.assignment_folders``), stores it
immutably in the data dir and creates the course's assignment, or points an existing one
at the new version. Options not given keep an existing assignment's settings. Dates are
ISO 8601; without a UTC offset they are UTC. ``--verify`` first grades the folder's
solution/ (full marks required) and each bugs/<name>/ overlay (its tests must fail).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dlgrade.course_cli import add_new_assignment_command
from dlgrade.service_cli import CommandError, SubParsers, database, database_settings
from sandbox.select import BACKENDS, choose_backend

if TYPE_CHECKING:
    from grader.spec import AssignmentSpec
    from store.assignment_settings import Changes


def add_assignment_commands(listing: argparse.ArgumentParser) -> None:
    """``add`` under ``dlgrade assignments`` (which alone still lists the built-ins)."""
    actions = listing.add_subparsers(metavar="ACTION")
    add = actions.add_parser("add", help="add or update a course's assignment from a "
                             "folder or archive")
    add.add_argument("path", type=Path, help="assignment folder, .tar, .tar.gz or .zip")
    add.add_argument("--course", required=True, help="the course's slug")
    add.add_argument("--title", default=None, help="default: the spec's title")
    add.add_argument("--release", default=None, metavar="ISO", help="e.g. 2025-03-01T09:00")
    add.add_argument("--due", default=None, metavar="ISO", help="UTC unless an offset is given")
    add.add_argument("--late-due", default=None, metavar="ISO", help="end of the late window")
    add.add_argument("--late-penalty", type=float, default=None, metavar="FRACTION",
                     help="fraction of the score lost per late day (0.1 = 10%%)")
    add.add_argument("--daily-limit", type=int, default=None, metavar="N",
                     help="submissions per student per day")
    add.add_argument("--hidden-visible-after-due", action=argparse.BooleanOptionalAction,
                     default=None, help="show hidden tests once submissions close")
    add.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    add.add_argument("--verify", action="store_true",
                     help="grade solution/ and bugs/ first; refuse unless they behave")
    add.add_argument("--sandbox", choices=BACKENDS, default="auto", help="for --verify")
    add.add_argument("--spec", default="spec.toml", metavar="FILE",
                     help="which spec file of the folder grades (e.g. spec-course.toml); "
                          "it is stored as the assignment's spec.toml")
    add.set_defaults(run=run_assignments_add)
    add_new_assignment_command(actions)
    verify = actions.add_parser("verify", help="grade an assignment folder's solution/ and "
                                "bugs/ strictly and print a table per bug")
    verify.add_argument("path", type=Path, help="assignment folder or built-in slug")
    verify.add_argument("--spec", default="spec.toml", help="the spec file of the folder")
    verify.add_argument("--sandbox", choices=BACKENDS, default="auto")
    verify.add_argument("--no-hints", action="store_true",
                        help="do not require each bug's hint in its message")
    verify.add_argument("--seed", type=int, default=None,
                        help="fix the checks' secret seed (a failure says its seed)")
    verify.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="verify N times with different seeds: a check must catch "
                             "every bug on every draw, not only on one")
    verify.set_defaults(run=run_assignments_verify)


def add_export_command(commands: SubParsers[argparse.ArgumentParser]) -> None:
    export = commands.add_parser("export-gradescope",
                                 help="write a Gradescope autograder.zip for an assignment")
    export.add_argument("assignment", help="a built-in slug or an assignment folder")
    export.add_argument("-o", "--output", type=Path, required=True)
    export.set_defaults(run=run_export_gradescope)


def run_assignments_add(args: argparse.Namespace) -> int:
    from store.assignment_folders import FolderError, FolderLimits, add_folder, unpack, validate
    from store.assignment_settings import SettingsError, find_course, save_assignment
    from tasks.broker import grading_budget

    try:
        changes = _changes(args)
        with tempfile.TemporaryDirectory(prefix="dlgrade-add-") as scratch:
            source = _with_spec(args.path, args.spec, Path(scratch))
            if args.verify:
                _verify(validate(unpack(source, Path(scratch))), args.sandbox)
            settings = database_settings(args.data_dir)
            with database(args.data_dir) as db:
                course = find_course(db, args.course)
                stored = add_folder(source, settings.data_dir, course.slug,
                                    limits=FolderLimits(grading_s=grading_budget(settings)))
                row, created = save_assignment(db, course, stored, changes)
                db.commit()
    except (FolderError, SettingsError) as exc:
        raise CommandError(str(exc)) from None
    verb = "Added" if created else "Updated"
    print(f"{verb} {row.slug} in {course.slug} ({stored.spec.max_score:g} points, version "
          f"{stored.sha256[:12]}): {stored.path}")
    return 0


def _with_spec(source: Path, filename: str, scratch: Path) -> Path:
    """``source`` itself, or (``--spec FILE``) a copy of its folder in ``scratch`` whose
    spec.toml is FILE: the stored folder is graded by the spec the TA chose."""
    import shutil

    from store.assignment_folders import FolderError, unpack

    if filename == "spec.toml":
        return source
    if Path(filename).name != filename:
        raise FolderError(f"--spec names a file at the top of the folder, not {filename!r}.")
    folder = unpack(source, scratch)
    if not (folder / filename).is_file():
        raise FolderError(f"There is no {filename} at the top of the assignment folder.")
    chosen = scratch / "chosen"
    shutil.copytree(folder, chosen, symlinks=True)
    shutil.copyfile(folder / filename, chosen / "spec.toml")
    return chosen


def _changes(args: argparse.Namespace) -> Changes:
    from store.assignment_settings import Changes, parse_when

    changes = Changes()
    if args.title is not None:
        changes.title = args.title
    for option, name in (("release", "release_at"), ("due", "due_at"),
                         ("late_due", "late_due_at")):
        text = getattr(args, option)
        if text is not None:
            setattr(changes, name, parse_when(text, f"--{option.replace('_', '-')}"))
    if args.late_penalty is not None:
        changes.late_penalty_per_day = args.late_penalty
    if args.daily_limit is not None:
        changes.daily_limit = args.daily_limit
    if args.hidden_visible_after_due is not None:
        changes.hidden_visible_after_due = args.hidden_visible_after_due
    return changes


def _verify(spec: AssignmentSpec, sandbox: str, *, hints: bool = True,
            table: bool = False, seed: int | None = None, repeat: int = 1) -> None:
    """Strict verify; the per-bug table is printed on success (always with ``table``).
    With ``repeat`` > 1 it runs once per seed (``seed``, ``seed`` + 1, ... or fresh random
    ones) and every problem says the seed that shows it, for ``dlgrade check --seed``."""
    import secrets

    from grader.verify import render_report, verify_strict

    if repeat < 1:
        raise CommandError("--repeat must be at least 1.")
    backend = choose_backend(sandbox)
    problems: list[str] = []
    for run in range(repeat):
        run_seed = (seed + run if seed is not None
                    else None if repeat == 1 else secrets.randbelow(2**31))
        report = verify_strict(spec, backend, hints=hints, seed=run_seed)
        if repeat > 1:
            print(f"seed {run_seed}:")
        if table or not report.problems:
            print(render_report(report))
        shown = f"seed {run_seed}: " if run_seed is not None else ""
        problems += [shown + problem for problem in report.problems]
    if problems:
        raise CommandError("--verify refused the assignment:\n" + "\n".join(problems))
    print(f"Verified {spec.slug}: the solution scores {spec.max_score:g}/{spec.max_score:g}, "
          "every known bug loses exactly its tests"
          + (", and each hint appears" if hints else " (hints not required)")
          + (f", on {repeat} seeds." if repeat > 1 else "."))


def run_assignments_verify(args: argparse.Namespace) -> int:
    from grader.params import check_params
    from grader.spec import builtin_assignments, load_spec

    folder = Path(builtin_assignments().get(str(args.path), args.path))
    spec = check_params(load_spec(folder, args.spec), str(folder / args.spec))
    _verify(spec, args.sandbox, hints=not args.no_hints, table=True, seed=args.seed,
            repeat=args.repeat)
    return 0


def run_export_gradescope(args: argparse.Namespace) -> int:
    from grader.gradescope_export import ExportError, export_autograder
    from grader.params import check_params
    from grader.spec import resolve_assignment

    spec = check_params(resolve_assignment(args.assignment))
    try:
        written = export_autograder(spec, args.output)
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    print(f"Wrote {written} for {spec.slug}: upload it as the Gradescope autograder "
          "(Ubuntu 22.04 base image).")
    return 0
