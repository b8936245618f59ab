"""The closed vocabulary of test outcomes.

Every test ends in exactly one of these. Each has one plain sentence for the
student; the specific message of a test adds the detail. Gradescope itself only
knows passed/failed, which :func:`gradescope_status` maps to.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    OOM = "oom"
    CRASH = "crash"
    ERROR = "error"
    KILLED = "killed"


STUDENT_MESSAGES: dict[Outcome, str] = {
    Outcome.PASSED: "Passed.",
    Outcome.FAILED: "Your answer does not match the reference.",
    Outcome.TIMEOUT: "Your code ran past the time limit.",
    Outcome.OOM: "Your code ran out of memory.",
    Outcome.CRASH: "Your code stopped the process running it.",
    Outcome.ERROR: "The grader could not run this test; course staff can see why.",
    Outcome.KILLED: "Your code was killed by the sandbox (a resource limit was hit).",
}


def gradescope_status(outcome: Outcome) -> str:
    return "passed" if outcome is Outcome.PASSED else "failed"
