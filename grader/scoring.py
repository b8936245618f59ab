"""The verdict's arithmetic, in one place: the points the tests earned, the late penalty,
staff's manual adjustments, and the score that counts.

Every surface that shows a score (the student's pages, the staff pages, the gradebooks,
the API, webhooks, exports) gets it from :func:`score`, and the sentence about lateness
from :func:`late_note`, so they cannot disagree. The late penalty is a field of the
result (:class:`Late`: the submission's late days and the assignment's penalty per day),
never prose in its output: a service re-scores a stored result under the policy in force
when it is shown, so a changed penalty reaches every surface at once.

The rule: ``total = max(0, round(graded * (1 - penalty), 4) + sum(adjustments))``,
rounded to 4 places, where ``penalty = min(1, per_day * days)`` (0 when either is not
positive).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Late:
    """How late a handin was and what the assignment takes off per day (a fraction)."""

    days: int = 0
    per_day: float = 0.0

    @property
    def penalty(self) -> float:
        """The fraction of the graded points taken off, between 0 and 1."""
        if self.days <= 0 or self.per_day <= 0:
            return 0.0
        return min(1.0, self.per_day * self.days)


ON_TIME = Late()


@dataclass(frozen=True)
class Score:
    """One audience's score of one submission."""

    graded: float  # what the counted tests earned
    max_score: float  # what they could earn
    late: Late
    late_score: float  # ``graded`` less the late penalty
    adjustment: float  # staff's manual adjustments, in points
    total: float  # the score that counts: late_score + adjustment, at least 0

    @property
    def penalty(self) -> float:
        return self.late.penalty


def score(graded: float, max_score: float, late: Late = ON_TIME,
          adjustments: Iterable[float] = ()) -> Score:
    """The score of tests that earned ``graded`` of ``max_score`` points, handed in
    ``late``, with staff's ``adjustments`` (points, either sign) added."""
    late_score = round(graded * (1.0 - late.penalty), 4)
    adjustment = round(sum(adjustments), 4)
    total = round(max(0.0, late_score + adjustment), 4)
    return Score(graded, max_score, late, late_score, adjustment, total)


def late_note(scored: Score, *, every_test: bool = True) -> str | None:
    """The sentence that tells the student about the late penalty (None when there is
    none). ``every_test`` False: some tests are withheld from this audience, so the note
    does not quote the points (they would reveal what the withheld tests earned)."""
    late = scored.late
    if not late.penalty:
        return None
    plural = "" if late.days == 1 else "s"
    if not every_test:
        return f"Submitted {late.days} day{plural} late: {late.penalty * 100:g}% is taken off."
    return (f"Submitted {late.days} day{plural} late: the score of {scored.graded:g} is "
            f"reduced by {late.penalty * 100:g}% to {scored.late_score:g}.")
