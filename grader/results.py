"""Grading results as dataclasses, with one serialiser for Gradescope's schema.

Only :meth:`GradingResult.to_gradescope` knows the ``results.json`` format:
top level ``score``, ``execution_time``, ``output``, ``visibility``,
``stdout_visibility``, ``tests``; per test ``name``, ``number``, ``score``,
``max_score``, ``status``, ``output``, ``visibility``, ``tags``; and, when the
assignment asks for one, ``leaderboard`` entries ``name``, ``value``, ``order``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.outcomes import Outcome, gradescope_status
from sandbox.output import neutralise

MAX_TEST_OUTPUT_CHARS = 16_000


@dataclass
class TestResult:
    """One test's verdict. ``staff_detail`` never reaches the student."""

    name: str
    number: str
    max_score: float
    score: float
    outcome: Outcome
    output: str
    visibility: str = "visible"
    tags: tuple[str, ...] = ()
    staff_detail: str = ""
    extra_data: dict[str, Any] = field(default_factory=dict)  # JSON data, e.g. curves
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every surface (CLI, web, API, Gradescope, staff views) shows these: no terminal
        # escape that student code printed or put in a message survives (issue 12.9).
        self.name = neutralise(self.name)
        self.output = neutralise(self.output)
        self.staff_detail = neutralise(self.staff_detail)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def to_gradescope(self) -> dict[str, Any]:
        output = self.output
        if len(output) > MAX_TEST_OUTPUT_CHARS:
            output = output[:MAX_TEST_OUTPUT_CHARS] + "\n…[output truncated]"
        return {
            "name": self.name,
            "number": self.number,
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "status": gradescope_status(self.outcome),
            "output": output,
            "visibility": self.visibility,
            "tags": list(self.tags),
            **({"extra_data": self.extra_data} if self.extra_data else {}),
        }


@dataclass(frozen=True)
class LeaderboardEntry:
    """One column of the assignment's leaderboard, e.g. held-out accuracy."""

    name: str
    value: float
    order: str = "desc"  # "desc": higher is better

    def to_gradescope(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 6), "order": self.order}


@dataclass
class GradingResult:
    """All tests of one submission plus what the run itself said."""

    assignment: str
    tests: list[TestResult]
    execution_time: float
    output: str = ""
    visibility: str = "visible"
    stdout_visibility: str = "hidden"
    sandbox: str = ""
    rejected: str | None = None  # why the handin could not be graded at all
    # Why the grading host failed (no sandbox would start): the scores say nothing about
    # the handin, so a service retries instead of storing them.
    infrastructure_error: str | None = None
    staff_log: list[str] = field(default_factory=list)
    variant: str | None = None  # the handout version that graded it (grader.variants)
    leaderboard: list[LeaderboardEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.output = neutralise(self.output)
        if self.infrastructure_error is not None:
            self.infrastructure_error = neutralise(self.infrastructure_error)

    @property
    def score(self) -> float:
        return sum(test.score for test in self.tests)

    @property
    def max_score(self) -> float:
        return sum(test.max_score for test in self.tests)

    def to_gradescope(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "score": round(self.score, 4),
            "execution_time": round(self.execution_time, 3),
            "output": self.output,
            "visibility": self.visibility,
            "stdout_visibility": self.stdout_visibility,
            "tests": [test.to_gradescope() for test in self.tests],
        }
        if self.leaderboard:
            document["leaderboard"] = [entry.to_gradescope() for entry in self.leaderboard]
        return document
