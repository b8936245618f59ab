"""store.lti_scores.shown_score follows web.visibility.shown: the same score for every
visibility, due date, extension and late penalty combination (no drift between what
the student sees and what the LMS is sent)."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

from sqlalchemy.orm import Session, selectinload

from grader import results
from grader.outcomes import Outcome
from store import lti_scores
from store.models import Assignment, Course, Extension, Submission, TestScore, User, utcnow
from web.visibility import shown

VISIBILITIES = ("visible", "after_due_date", "hidden", "after_published")


def test_shown_score_matches_the_results_page(sqlite_factory) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with sqlite_factory() as db:
        db: Session
        course = Course(slug="c", title="C")
        user = User(email="s@example.org", password_hash="x")
        db.add_all([course, user])
        db.flush()
        cases = 0
        for due, extended, reveal, late in product(
                (None, now - timedelta(days=1), now + timedelta(days=1)), (False, True),
                (False, True), (0, 2)):
            assignment = Assignment(course_id=course.id, slug=f"a{cases}", title="A",
                                    due_at=due, late_penalty_per_day=0.25,
                                    hidden_visible_after_due=reveal)
            db.add(assignment)
            db.flush()
            if extended and due is not None:
                db.add(Extension(assignment_id=assignment.id, user_id=user.id,
                                 due_at=now + timedelta(hours=1)))
            tests = [results.TestResult(vis, str(i), 5.0, i + 1.0, Outcome.FAILED, "", vis)
                     for i, vis in enumerate(VISIBILITIES)]
            row = Submission(assignment_id=assignment.id, user_id=user.id, archive_sha256="0",
                             archive_size=1, status="done", late_days=late,
                             score=sum(t.score for t in tests), max_score=20.0,
                             results=results.GradingResult("a", tests, 1.0).to_record())
            db.add(row)
            db.flush()
            for i, test in enumerate(tests):
                db.add(TestScore(submission_id=row.id, position=i, number=test.number,
                                 name=test.name, score=test.score, max_score=test.max_score,
                                 outcome="failed", visibility=test.visibility))
            db.commit()
            found = db.get(Submission, row.id, options=[selectinload(Submission.tests)])
            assert found is not None
            db.refresh(found.assignment)
            close = lti_scores.submissions_close(found.assignment,
                                                 list(found.assignment.extensions))
            score, maximum, withheld = lti_scores.shown_score(found, close, now)
            view = shown(found, now, staff=False)
            assert (score, maximum - withheld) == (view.score, view.max_score), (due, extended)
            assert withheld == view.withheld_points
            cases += 1
        assert cases == 24
