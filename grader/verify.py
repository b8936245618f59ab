"""Proving an assignment folder before students see it: its solution/ must earn full
marks and each known-bug variant in bugs/<name>/ (see ``grader.known_bugs``: edits and
files applied to the solution, with an ``expect.toml`` listing ``fails = [test names]``)
must lose points on those tests.

The built-in assignments are held to the same standard by their tests in tests/grader.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.grade import grade_path
from grader.known_bugs import BugError, KnownBug, build_handin, known_bugs
from grader.results import GradingResult
from grader.spec import AssignmentSpec
from sandbox.backend import Backend


def verify_assignment(
    spec: AssignmentSpec, backend: Backend, *, seed: int | None = None
) -> list[str]:
    """Every way the folder falls short, as sentences; empty when it behaves."""
    solution = spec.folder / "solution"
    if not solution.is_dir():
        return ["There is no solution/ folder to verify."]
    problems = _solution_problems(grade_path(spec, solution, backend, seed=seed))
    try:
        bugs = known_bugs(spec.folder)
    except BugError as exc:
        return [*problems, str(exc)]
    for bug in bugs:
        problems += _bug_problems(spec, solution, bug, backend, seed)
    return problems


def _solution_problems(result: GradingResult) -> list[str]:
    if result.rejected is not None:
        return [f"solution/ could not be graded: {result.rejected}"]
    return [
        f"solution/ scores {test.score:g}/{test.max_score:g} on {test.name!r}: "
        f"{_first_line(test.output)}"
        for test in result.tests if test.score < test.max_score
    ]


def _bug_problems(
    spec: AssignmentSpec, solution: Path, bug: KnownBug, backend: Backend, seed: int | None
) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="dlgrade-bug-") as scratch:
        try:
            handin = build_handin(solution, bug, Path(scratch) / "handin")
        except BugError as exc:
            return [str(exc)]
        result = grade_path(spec, handin, backend, seed=seed)
    scores = {test.name: test for test in result.tests}
    return [
        f"bugs/{bug.name} should fail {name!r}, but it scores full marks there."
        for name in bug.fails if name in scores and scores[name].score >= scores[name].max_score
    ]


def _first_line(text: str) -> str:
    """The message's first line; one that ends with a colon ("1 of 1 course tests
    failed:") brings the next line along, which says what failed."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


@dataclass
class BugRow:
    """One known bug's line of the strict report: the tests it should and did lose."""

    name: str
    expected: list[str]
    lost: list[str]
    hint: str
    hint_found: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class StrictReport:
    solution_problems: list[str]
    bugs: list[BugRow]

    @property
    def problems(self) -> list[str]:
        return [*self.solution_problems, *(p for row in self.bugs for p in row.problems)]


def verify_strict(
    spec: AssignmentSpec, backend: Backend, *, seed: int | None = None, hints: bool = True
) -> StrictReport:
    """Like :func:`verify_assignment`, and more: each bug must lose exactly the tests its
    expect.toml lists (every other test keeps full marks), and its hint must appear in the
    message of the first test it fails (unless ``hints`` is False)."""
    solution = spec.folder / "solution"
    if not solution.is_dir():
        return StrictReport(["There is no solution/ folder to verify."], [])
    problems = _solution_problems(grade_path(spec, solution, backend, seed=seed))
    try:
        bugs = known_bugs(spec.folder)
    except BugError as exc:
        return StrictReport([*problems, str(exc)], [])
    rows = [_strict_row(spec, solution, bug, backend, seed, hints) for bug in bugs]
    return StrictReport(problems, rows)


def _strict_row(spec: AssignmentSpec, solution: Path, bug: KnownBug, backend: Backend,
                seed: int | None, hints: bool) -> BugRow:
    row = BugRow(bug.name, list(bug.fails), [], bug.hint, not bug.hint)
    names = {test.name for test in spec.tests}
    row.problems += [f"bugs/{bug.name} lists {name!r}, which is not a test of {spec.slug}."
                     for name in bug.fails if name not in names]
    with tempfile.TemporaryDirectory(prefix="dlgrade-bug-") as scratch:
        try:
            handin = build_handin(solution, bug, Path(scratch) / "handin")
        except BugError as exc:
            row.problems.append(str(exc))
            return row
        result = grade_path(spec, handin, backend, seed=seed)
    lost = [test for test in result.tests if test.score < test.max_score]
    row.lost = [test.name for test in lost]
    row.problems += [f"bugs/{bug.name} should fail {name!r}, but it scores full marks there."
                     for name in bug.fails if name in names and name not in row.lost]
    row.problems += [f"bugs/{bug.name} also loses points on {test.name!r}, which its "
                     f"expect.toml does not list: {_first_line(test.output)}"
                     for test in lost if test.name not in bug.fails]
    first = next((test for test in lost if test.name in bug.fails), None)
    if bug.hint and first is not None:
        row.hint_found = bug.hint in first.output
        if hints and not row.hint_found:
            row.problems.append(f"bugs/{bug.name}: the hint {bug.hint!r} is not in the "
                                f"message of {first.name!r}: {_first_line(first.output)}")
    return row


def render_report(report: StrictReport) -> str:
    """The per-bug table: expected tests, lost tests, hint, verdict."""
    width = max([28, *(len(row.name) for row in report.bugs)])  # names are never cut
    lines = [f"{'bug':{width}} {'expected to lose':34} {'lost':34} hint  ok"]
    for row in report.bugs:
        hint = "yes" if row.hint_found else "NO"
        verdict = "ok" if not row.problems else "NO"
        lines.append(f"{row.name:{width}} {_names(row.expected):34} {_names(row.lost):34} "
                     f"{hint:4}  {verdict}")
    if report.solution_problems:
        lines.append("solution/: " + "; ".join(report.solution_problems))
    else:
        lines.append("solution/: full marks")
    return "\n".join(lines)


def _names(names: list[str]) -> str:
    text = ", ".join(names) or "-"
    return text if len(text) <= 34 else text[:31] + "..."
