"""Handins of the built-in assignments for the end-to-end grading tests: the solution,
or the solution with a known bug applied (grader.known_bugs)."""

from __future__ import annotations

from pathlib import Path

from grader.known_bugs import KnownBug, build_handin
from grader.results import GradingResult


def handin_of(assignment: Path, tmp_path: Path, bug: KnownBug | None = None
              ) -> tuple[Path, list[str]]:
    """A copy of ``assignment``'s solution with ``bug`` applied, and the paths it changes."""
    handin = build_handin(assignment / "solution", bug, tmp_path / "handin")
    return handin, bug.touched() if bug is not None else []


def failing(result: GradingResult) -> dict[str, str]:
    """Test name -> message of every test that lost points."""
    return {t.name: t.output for t in result.tests if t.score < t.max_score}
