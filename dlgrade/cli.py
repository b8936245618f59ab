"""The ``dlgrade`` command line.

``dlgrade check ASSIGNMENT PATH`` grades a directory or an archive locally;
``dlgrade assignments`` lists the built-in assignments (``dlgrade assignments add``
adds a course's own, see dlgrade/assignment_cli.py); ``dlgrade handout SLUG -o DIR``
writes the starter code; ``dlgrade export-gradescope SLUG -o autograder.zip``. Exit
status 0 whenever grading ran, whatever the score; 2 with one sentence on stderr when it
could not run.

The service: ``dlgrade serve`` (one process: web, SQLite, built-in worker, demo
course), ``dlgrade web`` + ``dlgrade worker`` (production), ``dlgrade migrate``,
``dlgrade users add`` and ``dlgrade tokens create`` (see dlgrade/service_cli.py).
Students hand in through the API with ``dlgrade submit`` (dlgrade/submit_cli.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from dlgrade.assignment_cli import add_assignment_commands, add_export_command
from dlgrade.course_cli import add_course_commands
from dlgrade.lti_cli import add_lti_commands
from dlgrade.service_cli import CommandError as ServiceCommandError
from dlgrade.service_cli import add_service_commands
from dlgrade.submit_cli import SubmitError, add_submit_command
from grader.grade import grade_path, sandbox_config
from grader.params import check_params
from grader.results import GradingResult
from grader.spec import (
    AssignmentSpec,
    SpecError,
    builtin_assignments,
    load_spec,
    resolve_assignment,
)
from sandbox.output import neutralise
from sandbox.runtimes import RuntimeStore, RuntimeUnavailable, default_store_root
from sandbox.select import BACKENDS, DEFAULT_IMAGE, BackendUnavailable, choose_backend


class CommandError(Exception):
    """The command could not run; the message is the sentence to print."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (CommandError, ServiceCommandError, SubmitError, SpecError,
            BackendUnavailable) as exc:
        print(f"dlgrade: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlgrade", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="grade a handin (directory or archive) locally")
    check.add_argument("assignment", help="a built-in slug or an assignment folder")
    check.add_argument("path", type=Path, help="handin directory, .tar, .tar.gz, .tgz or .zip")
    check.add_argument("--json", action="store_true", help="print only Gradescope results.json")
    check.add_argument("--sandbox", choices=BACKENDS, default="auto")
    check.add_argument("--image", default=os.environ.get("DLGRADE_DOCKER_IMAGE") or DEFAULT_IMAGE,
                       metavar="TAG", help="the Docker sandbox's image (default: "
                       f"$DLGRADE_DOCKER_IMAGE, else {DEFAULT_IMAGE})")
    check.add_argument("--seed", type=int, default=None, help="fix the hidden-input seed")
    check.add_argument("--spec", default="spec.toml", metavar="FILE",
                       help="which spec file of the assignment folder grades (e.g. "
                            "spec-course.toml); default spec.toml")
    check.add_argument("--variant", default=None, metavar="NAME",
                       help="grade as this handout version (see the assignment's [[variants]]); "
                            "default: the spec's choice, usually recognised per handin")
    check.add_argument("--test", action="append", metavar="NAME", dest="tests",
                       help="grade only the test of this name (repeatable)")
    check.set_defaults(run=run_check)

    listing = commands.add_parser("assignments", help="list the built-in assignments, or "
                                  "add a course's own (assignments add PATH --course SLUG)")
    listing.set_defaults(run=run_assignments)
    add_assignment_commands(listing)
    add_export_command(commands)
    add_lti_commands(commands)

    handout = commands.add_parser("handout", help="write an assignment's starter code")
    handout.add_argument("assignment")
    handout.add_argument("-o", "--output", type=Path, required=True)
    handout.set_defaults(run=run_handout)
    add_sandbox_commands(commands)
    add_runtime_commands(commands)
    add_service_commands(commands)
    add_submit_command(commands)
    add_course_commands(commands)
    return parser


def run_check(args: argparse.Namespace) -> int:
    spec = resolve_assignment(args.assignment, args.spec)
    check_params(spec, str(spec.folder / args.spec))
    if args.variant is not None:
        spec = spec.pinned(args.variant)
    path: Path = args.path
    if not path.exists():
        raise CommandError(f"{path} does not exist.")
    only = selected_tests(spec, args.tests)
    backend = choose_backend(args.sandbox, docker_image=args.image)
    unlimited = getattr(backend, "unlimited", None)
    if unlimited:  # a local check may run so; a worker in production refuses (12.6)
        print(f"dlgrade: warning: the sandbox limits each process, not the whole sandbox "
              f"({unlimited}).", file=sys.stderr)
    result = grade_path(spec, path, backend, seed=args.seed, only=only)
    if result.rejected is not None:
        raise CommandError(result.rejected)
    if result.infrastructure_error:
        raise CommandError(f"the sandbox could not start, so nothing was graded "
                           f"({result.infrastructure_error}).")
    if args.json:
        print(json.dumps(result.to_gradescope(), indent=2))  # JSON escapes control characters
    else:
        if result.variant is not None:
            print(neutralise(result.output))
        print(neutralise(render_table(result)))
    return 0


def selected_tests(spec: AssignmentSpec, names: Sequence[str] | None) -> set[str] | None:
    """The test names ``--test`` chose (None: all); an unknown name is an error that lists
    the assignment's tests."""
    if not names:
        return None
    known = [test.name for test in spec.tests]
    unknown = [name for name in names if name not in known]
    if unknown:
        listed = "; ".join(known)
        raise CommandError(f"{spec.slug} has no test called {unknown[0]!r}; its tests are: "
                           f"{listed}.")
    return set(names)


def render_table(result: GradingResult) -> str:
    """A readable table of the tests, then each failing test's message."""
    width = max([len(t.name) for t in result.tests] + [4])
    lines = [f"{'#':>2}  {'test':<{width}}  {'score':>11}  outcome", "-" * (width + 32)]
    for test in result.tests:
        score = f"{test.score:g}/{test.max_score:g}"
        lines.append(f"{test.number:>2}  {test.name:<{width}}  {score:>11}  {test.outcome}")
    lines.append("-" * (width + 32))
    total = f"{result.score:g}/{result.max_score:g}"
    lines.append(f"{'':>2}  {'total':<{width}}  {total:>11}  "
                 f"({result.execution_time:.1f} s, sandbox: {result.sandbox})")
    for test in result.tests:
        if not test.passed:
            lines.append(f"\n[{test.number}] {test.name}\n{_indent(test.output)}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def run_assignments(args: argparse.Namespace) -> int:
    for slug, folder in builtin_assignments().items():
        spec = load_spec(folder)
        print(f"{slug:<24} {spec.max_score:>6g} points  {spec.title}")
    return 0


def run_handout(args: argparse.Namespace) -> int:
    spec = resolve_assignment(args.assignment)
    source = spec.folder / "handout"
    if not source.is_dir():
        raise CommandError(f"{spec.slug} has no handout folder.")
    target: Path = args.output
    if target.exists() and any(target.iterdir()):
        raise CommandError(f"{target} is not empty; choose a new directory.")
    shutil.copytree(source, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"Wrote the {spec.slug} starter code to {target}")
    return 0


def add_sandbox_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dlgrade sandbox build-local [--tag T]`` and ``dlgrade sandbox reap``."""
    sandbox = commands.add_parser("sandbox", help="manage the Docker sandbox on this host")
    actions = sandbox.add_subparsers(required=True, metavar="ACTION")
    build = actions.add_parser("build-local", help="build the registry-free local image")
    build.add_argument("--tag", default="dlgrade-sandbox:local")
    build.set_defaults(run=run_sandbox_build)
    reap = actions.add_parser("reap", help="remove sandbox containers left by dead workers")
    reap.add_argument("--older-than", type=float, default=24.0, metavar="HOURS",
                      help="also remove any sandbox older than this (default 24)")
    reap.set_defaults(run=run_sandbox_reap)


def add_runtime_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dlgrade runtimes list [--keys]`` and ``dlgrade runtimes build [ASSIGNMENT ...]``."""
    runtimes = commands.add_parser("runtimes", help="the sandbox runtimes (NumPy / PyTorch "
                                   "versions) the assignments need: docs/runtimes.md")
    actions = runtimes.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each assignment's runtime and where it comes from")
    listing.add_argument("assignments", nargs="*", help="slugs or folders (default: built-in)")
    listing.add_argument("--keys", action="store_true", help="only the runtime keys, one a line")
    listing.set_defaults(run=run_runtimes_list)
    build = actions.add_parser("build", help="build the runtimes this worker lacks, now")
    build.add_argument("assignments", nargs="*", help="slugs or folders (default: built-in)")
    build.add_argument("--store", type=Path, default=None, help="the runtime store "
                       "(default: DLGRADE_RUNTIME_DIR, else ~/.cache/dlgrade/runtimes)")
    build.set_defaults(run=run_runtimes_build)


def _runtime_specs(names: Sequence[str]) -> list[AssignmentSpec]:
    return [resolve_assignment(name) for name in names or list(builtin_assignments())]


def _store(path: Path | None) -> RuntimeStore:
    root = path or Path(os.environ.get("DLGRADE_RUNTIME_DIR") or default_store_root())
    return RuntimeStore(root)


def run_runtimes_list(args: argparse.Namespace) -> int:
    requests = {spec.slug: sandbox_config(spec, Path(".")).runtime_request()
                for spec in _runtime_specs(args.assignments)}
    if args.keys:
        print("\n".join(sorted({request.key for request in requests.values()})))
        return 0
    for slug, request in requests.items():
        print(f"{slug:<24} {request.key:<28} {request.describe()}")
    return 0


def run_runtimes_build(args: argparse.Namespace) -> int:
    store = _store(args.store)
    for spec in _runtime_specs(args.assignments):
        request = sandbox_config(spec, Path(".")).runtime_request()
        try:
            runtime = store.resolve(request)
        except RuntimeUnavailable as exc:
            raise CommandError(f"{spec.slug}: {exc}") from None
        print(f"{spec.slug}: {runtime.describe()}")
    return 0


def _docker_client() -> object:
    from sandbox import docker_engine  # imports docker-py: only when asked for

    try:
        return docker_engine.connect()
    except docker_engine.DockerUnavailable as exc:
        raise CommandError(f"{exc}; start dockerd (scripts/start-dockerd.sh) first.") from None


def run_sandbox_build(args: argparse.Namespace) -> int:
    from sandbox import docker_images

    image = docker_images.build_local_image(_docker_client(), args.tag)
    print(f"Built {args.tag} ({image[:19]}): the host's Python is mounted into it read-only.")
    return 0


def run_sandbox_reap(args: argparse.Namespace) -> int:
    from sandbox import docker_reaper

    removed = docker_reaper.reap_orphans(_docker_client(), older_than=args.older_than * 3600)
    print(f"Removed {len(removed)} orphaned sandbox container(s){': ' if removed else '.'}"
          f"{', '.join(removed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
