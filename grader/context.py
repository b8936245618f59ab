"""What a check receives, and how it reports a failure.

A check is a plain function ``check(ctx) -> float | None``: it returns the
fraction of the test's points earned (None means all of them) or raises
:class:`CheckFailed` with a sentence for the student. It may record what it measured
in ``ctx.metrics`` (e.g. held-out accuracy) for the leaderboard. Sandbox faults raised by
the session (timeouts, crashes, student exceptions) are turned into outcomes by
the runner, so checks do not catch them.

``ctx.params`` is the test's ``[tests.params]`` as its check declared them
(``@check(name, params=Model)``): an instance of the model, validated, its defaults
filled in. A check registered without a model gets the plain dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader import params as typed_params
from grader.compare import GRADIENTS, VALUES, Mismatch, Tolerance, compare_array
from grader.registry import lookup
from grader.spec import AssignmentSpec, TestSpec
from sandbox.session import Session

# Told what a running test is doing (plain JSON data, e.g. {"epoch": 2, "epochs": 5,
# "curves": {...}}); the service shows it live. Must not raise.
Progress = Callable[[dict[str, Any]], None]


class CheckFailed(Exception):
    """The student's answer is wrong; ``message`` says how, ``fraction`` is partial credit."""

    def __init__(self, message: str, fraction: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.fraction = min(max(fraction, 0.0), 1.0)


@dataclass
class CheckContext:
    """Everything one check may use. ``session`` starts a sandbox on first use."""

    spec: AssignmentSpec
    test: TestSpec
    rng: np.random.Generator
    open_session: Callable[[], Session]
    notes: list[str] = field(default_factory=list)
    # Plain JSON data a check attaches to its test's result (Gradescope's per-test
    # ``extra_data``), e.g. training curves; kept whether the test passes or fails.
    extra: dict[str, Any] = field(default_factory=dict)
    # Numbers a check measured (e.g. ``accuracy``), kept whatever the verdict; the
    # spec's [[leaderboard]] entries pick them up by test name and key.
    metrics: dict[str, float] = field(default_factory=dict)
    # Replaces the sandbox with a new one in which no student code has run yet.
    restart_session: Callable[[], Session] | None = None
    # Shared by every check of one grading (one handin): e.g. a course test file's run,
    # made once and read by each spec test that maps to its tests.
    grading: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    _params: Any = field(default=None, init=False, repr=False, compare=False)

    def report(self, **state: Any) -> None:
        """Tell whoever follows the grading what this test is doing now (e.g. the epoch
        and the curves so far); a no-op when nobody does."""
        if self.progress is not None:
            self.progress({"test_name": self.test.name, **state})

    @property
    def session(self) -> Session:
        return self.open_session()

    def fresh_session(self) -> Session:
        """A new sandbox, none of the student's code imported yet: what runs in it before
        the first student import (a trusted baseline, say) cannot have been tampered with."""
        if self.restart_session is None:
            raise RuntimeError("this check needs a fresh sandbox, which its caller cannot give")
        return self.restart_session()

    @property
    def params(self) -> Any:
        """The test's params: an instance of its check's params model (validated, with the
        model's defaults; ``grader.params.ParamsError`` if they do not fit), or the plain
        dict for a check registered without a model. Annotate it where it is read
        (``params: MyParams = ctx.params``) for the type checker."""
        if self._params is None:
            self._params = typed_params.typed(self.test, self.spec.folder)
        return self._params

    def run_wrapped(self) -> float | None:
        """Run the check this one wraps (registered with ``wraps=KEY``: the check that
        ``params.KEY`` names), on the params that are not this check's own."""
        test = typed_params.wrapped(self.test, self.spec.folder)
        return lookup(test.check, self.spec.folder)(dataclasses.replace(self, test=test))

    @property
    def detailed(self) -> bool:
        """Hidden tests get coarse messages (no values to harvest across attempts)."""
        return self.test.visibility != "hidden"

    def tolerance(self, kind: str = "values") -> Tolerance:
        """The test's tolerance for ``kind`` ("values" or "gradients"): the params'
        ``{kind}_rtol`` / ``{kind}_atol`` (``grader.params.Tolerances``), else the defaults."""
        base = GRADIENTS if kind == "gradients" else VALUES
        params = self.params
        if isinstance(params, dict):  # a check without a params model
            return Tolerance(rtol=float(params.get(f"{kind}_rtol", base.rtol)),
                             atol=float(params.get(f"{kind}_atol", base.atol)))
        return Tolerance(rtol=float(getattr(params, f"{kind}_rtol", base.rtol)),
                         atol=float(getattr(params, f"{kind}_atol", base.atol)))

    def expect_array(
        self, name: str, got: Any, expected: np.ndarray, *, kind: str = "values",
        hint: Callable[[Mismatch], str | None] | None = None, context: str = "",
    ) -> None:
        """Raise CheckFailed (with a targeted hint when one applies) unless got matches."""
        mismatch = compare_array(name, got, expected, self.tolerance(kind), detailed=self.detailed)
        if mismatch is None:
            return
        parts = [f"{context}: " if context else "", mismatch.message]
        extra = hint(mismatch) if hint is not None else None
        if extra:
            parts.append(f"\nHint: {extra}")
        raise CheckFailed("".join(parts))
