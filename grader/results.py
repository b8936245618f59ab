"""Grading results as dataclasses, with two serialisers: dlgrade's own stored form and
Gradescope's schema.

* :meth:`GradingResult.to_record` / :meth:`GradingResult.from_record` are dlgrade's stored
  form (a submission's ``results`` column): every field of every test, the closed
  vocabulary of outcomes, staff detail and the late policy as fields. ``from_record`` also
  reads the form stored before it (a Gradescope document) for one release.
* Only :meth:`GradingResult.to_gradescope` knows the ``results.json`` format:
  top level ``score``, ``execution_time``, ``output``, ``visibility``,
  ``stdout_visibility``, ``tests``; per test ``name``, ``number``, ``score``,
  ``max_score``, ``status``, ``output``, ``visibility``, ``tags``, ``extra_data``; and,
  when the assignment asks for one, ``leaderboard`` entries ``name``, ``value``,
  ``order``. ``visible`` picks the tests one audience may see; the score and the late
  note are then :mod:`grader.scoring`'s for those tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from grader.outcomes import Outcome, gradescope_status
from grader.scoring import ON_TIME, Late, Score, late_note, score
from sandbox.output import neutralise

MAX_TEST_OUTPUT_CHARS = 16_000
RECORD = 2  # the version of dlgrade's stored form; 1 was the Gradescope document


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

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name, "number": self.number, "score": self.score,
            "max_score": self.max_score, "outcome": str(self.outcome), "output": self.output,
            "visibility": self.visibility, "tags": list(self.tags),
            "staff_detail": self.staff_detail, "extra_data": self.extra_data,
            "metrics": self.metrics,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> TestResult:
        if "outcome" not in data:  # a test of a Gradescope document (the form before 2)
            passed = data.get("status") == "passed"
            data = {**data, "outcome": Outcome.PASSED if passed else Outcome.FAILED}
        return cls(
            name=str(data.get("name", "")), number=str(data.get("number", "")),
            max_score=float(data.get("max_score", 0.0)), score=float(data.get("score", 0.0)),
            outcome=_outcome(data["outcome"]), output=str(data.get("output", "")),
            visibility=str(data.get("visibility", "visible")),
            tags=tuple(str(tag) for tag in data.get("tags") or ()),
            staff_detail=str(data.get("staff_detail", "")),
            extra_data=dict(data.get("extra_data") or {}),
            metrics={str(k): float(v) for k, v in (data.get("metrics") or {}).items()},
        )

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

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "order": self.order}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> LeaderboardEntry:
        return cls(str(data["name"]), float(data["value"]), str(data.get("order", "desc")))


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
    # The late policy the score is under: set by whoever knows the submission's late days
    # and the assignment's penalty (the worker when it stores, a page when it shows).
    late: Late = ON_TIME

    def __post_init__(self) -> None:
        self.output = neutralise(self.output)
        if self.infrastructure_error is not None:
            self.infrastructure_error = neutralise(self.infrastructure_error)

    @property
    def score(self) -> float:
        """The points the tests earned (before the late penalty and any adjustment)."""
        return sum(test.score for test in self.tests)

    @property
    def max_score(self) -> float:
        return sum(test.max_score for test in self.tests)

    def total(self, visible: Callable[[TestResult], bool] | None = None,
              adjustments: Iterable[float] = ()) -> Score:
        """The score of the tests ``visible`` picks (all by default) under ``late``, with
        staff's ``adjustments`` added (:func:`grader.scoring.score`)."""
        tests = self.tests if visible is None else [t for t in self.tests if visible(t)]
        return score(sum(t.score for t in tests), sum(t.max_score for t in tests), self.late,
                     adjustments)

    def to_gradescope(self, visible: Callable[[TestResult], bool] | None = None,
                      adjustments: Iterable[float] = ()) -> dict[str, Any]:
        """Gradescope's ``results.json`` for an audience that sees the tests ``visible``
        picks (all by default): their score under the late policy, with ``adjustments``,
        and the late note first in the output."""
        tests = self.tests if visible is None else [t for t in self.tests if visible(t)]
        scored = self.total(visible, adjustments)
        note = late_note(scored, every_test=len(tests) == len(self.tests))
        output = "\n\n".join(part for part in (note, self.output) if part)
        document: dict[str, Any] = {
            "score": scored.total,
            "execution_time": round(self.execution_time, 3),
            "output": output,
            "visibility": self.visibility,
            "stdout_visibility": self.stdout_visibility,
            "tests": [test.to_gradescope() for test in tests],
        }
        if self.leaderboard:
            document["leaderboard"] = [entry.to_gradescope() for entry in self.leaderboard]
        return document

    def to_record(self) -> dict[str, Any]:
        """dlgrade's stored form (JSON data). The staff log and an infrastructure error
        are not part of it: the first is stored beside it, the second is never stored."""
        return {
            "record": RECORD, "assignment": self.assignment,
            "execution_time": self.execution_time, "output": self.output,
            "visibility": self.visibility, "stdout_visibility": self.stdout_visibility,
            "sandbox": self.sandbox, "rejected": self.rejected, "variant": self.variant,
            "late": {"days": self.late.days, "per_day": self.late.per_day},
            "tests": [test.to_record() for test in self.tests],
            "leaderboard": [entry.to_record() for entry in self.leaderboard],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> GradingResult:
        """The result stored by :meth:`to_record`, or by the release before it (a Gradescope
        document, whose late note is taken out of the output: lateness is a field now)."""
        if data.get("record") != RECORD:
            return cls._from_document(data)
        late = data.get("late") or {}
        return cls(
            assignment=str(data.get("assignment", "")),
            tests=[TestResult.from_record(t) for t in data.get("tests") or ()],
            execution_time=float(data.get("execution_time", 0.0)),
            output=str(data.get("output", "")), visibility=str(data.get("visibility", "visible")),
            stdout_visibility=str(data.get("stdout_visibility", "hidden")),
            sandbox=str(data.get("sandbox", "")), rejected=data.get("rejected"),
            variant=data.get("variant"),
            leaderboard=[LeaderboardEntry.from_record(e) for e in data.get("leaderboard") or ()],
            late=Late(int(late.get("days", 0)), float(late.get("per_day", 0.0))),
        )

    @classmethod
    def _from_document(cls, data: dict[str, Any]) -> GradingResult:
        """Read for one release (to be removed after 0008_result_records has run
        everywhere): what the worker stored before results were records."""
        tests = [TestResult.from_record(t) for t in data.get("tests") or ()
                 if isinstance(t, dict)]
        return cls(
            assignment="", tests=tests, execution_time=float(data.get("execution_time", 0.0)),
            output=LEGACY_LATE_NOTE.sub("", str(data.get("output") or ""), count=1),
            visibility=str(data.get("visibility", "visible")),
            stdout_visibility=str(data.get("stdout_visibility", "hidden")),
            leaderboard=[LeaderboardEntry.from_record(e) for e in data.get("leaderboard") or ()
                         if isinstance(e, dict)],
        )


# The note the worker of the previous release prepended to a late result's output.
LEGACY_LATE_NOTE = re.compile(
    r"\ASubmitted \d+ days? late: the score of [^\n]* is reduced by [^\n]*%"
    r" to [^\n]*\.(\n\n|\Z)")


def _outcome(value: object) -> Outcome:
    try:
        return Outcome(str(value))
    except ValueError:
        return Outcome.ERROR
