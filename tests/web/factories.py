"""Row factories and helpers for the web tests (imported by conftest and the tests)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder, TestResponse

from grader.results import GradingResult, TestResult
from grader.spec import builtin_assignments
from store.models import Assignment, Course, Enrollment, Submission, TestScore, User
from store.users import create_token, create_user

PASSWORD = "correct horse battery staple"
_HASH: list[str] = []  # PASSWORD hashed once per test session


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = PASSWORD) -> TestResponse:
        token = csrf_token(self.client.get("/login").get_data(as_text=True))
        form = {"email": email, "password": password, "csrf_token": token}
        return self.client.post("/login", data=form)

    def logout(self) -> TestResponse:
        token = csrf_token(self.client.get("/").get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})

    def token(self) -> str:
        """The CSRF token of the current session."""
        return csrf_token(self.client.get("/login").get_data(as_text=True))


@contextmanager
def big_upload(client: FlaskClient, url: str, content: bytes, fields: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> Iterator[TestResponse]:
    """POST ``content`` as the multipart field ``file``. Werkzeug spools big bodies to a
    temporary file that its test client leaves open when the app refuses the body early
    (413), which ``filterwarnings = error`` turns into a failure; this closes it."""
    data: dict[str, Any] = {"file": (io.BytesIO(content), "handin.tar.gz"), **(fields or {})}
    builder = EnvironBuilder(path=url, method="POST", data=data, headers=headers,
                             content_type="multipart/form-data")
    environ = builder.get_environ()
    builder.close()
    try:
        with client.open(environ) as response:
            yield response
    finally:
        environ["wsgi.input"].close()


def now() -> datetime:
    return datetime.now(UTC)


class Factory:
    """Row factories: sensible defaults, every field overridable."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.counter = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def user(self, role: str = "student", email: str | None = None, **fields: Any) -> User:
        """A user whose password is PASSWORD. The first goes through store.users; the
        rest reuse its (salted) hash, because hashing is slow on purpose."""
        email = email or f"{role}{self._next()}@example.edu"
        if not _HASH:
            user = create_user(self.db, email, PASSWORD, role=role, **fields)
            _HASH.append(user.password_hash)
        else:
            user = User(email=email, password_hash=_HASH[0], role=role, **fields)
            self.db.add(user)
        self.db.commit()
        return user

    def course(self, slug: str | None = None) -> Course:
        slug = slug or f"course-{self._next()}"
        course = Course(slug=slug, title=f"Course {slug}")
        self.db.add(course)
        self.db.commit()
        return course

    def enroll(self, user: User, course: Course, role: str | None = None) -> Enrollment:
        enrollment = Enrollment(user_id=user.id, course_id=course.id,
                                role=role or ("staff" if user.may_create_courses else "student"))
        self.db.add(enrollment)
        self.db.commit()
        return enrollment

    def assignment(self, course: Course, **fields: Any) -> Assignment:
        values: dict[str, Any] = {
            "slug": "mytorch-cnn", "title": "MyTorch CNN",
            "release_at": now() - timedelta(days=7), "due_at": now() + timedelta(days=3),
        }
        values.update(fields)
        if values["slug"] not in builtin_assignments():  # another name for the built-in one
            values.setdefault("folder", str(builtin_assignments()["mytorch-cnn"]))
        assignment = Assignment(course_id=course.id, **values)
        self.db.add(assignment)
        self.db.commit()
        return assignment

    def submission(self, user: User, assignment: Assignment, **fields: Any) -> Submission:
        values: dict[str, Any] = {
            "status": "queued", "archive_sha256": "0" * 64, "archive_size": 10,
            "filename": "handin.tar.gz",
        }
        values.update(fields)
        submission = Submission(user_id=user.id, assignment_id=assignment.id, **values)
        self.db.add(submission)
        self.db.commit()
        return submission

    def graded(self, user: User, assignment: Assignment, tests: list[dict[str, Any]],
               **fields: Any) -> Submission:
        """A ``done`` submission with ``tests`` (Gradescope test dicts, staff_detail added)
        stored as the worker stores them: the record and the per-test rows."""
        score = sum(t["score"] for t in tests)
        results = GradingResult(assignment.slug, [TestResult.from_record(t) for t in tests],
                                1.0).to_record()
        values: dict[str, Any] = {
            "status": "done", "attempt": 1, "score": score, "results": results,
            "max_score": sum(t["max_score"] for t in tests), "grading_seconds": 0.5,
        }
        submission = self.submission(user, assignment, **{**values, **fields})
        for position, test in enumerate(tests):
            self.db.add(TestScore(
                submission_id=submission.id, position=position, number=test["number"],
                name=test["name"], score=test["score"], max_score=test["max_score"],
                outcome=test["status"], visibility=test["visibility"], output=test["output"],
                staff_detail=test.get("staff_detail", ""),
            ))
        self.db.commit()
        return submission

    def token(self, user: User, scopes: str = "") -> str:
        raw = create_token(self.db, user, scopes=scopes)
        self.db.commit()
        return raw


def gs_test(number: int, name: str, score: float, max_score: float, visibility: str = "visible",
            output: str = "", staff_detail: str = "") -> dict[str, Any]:
    return {"number": str(number), "name": name, "score": score, "max_score": max_score,
            "status": "passed" if score == max_score else "failed", "output": output,
            "visibility": visibility, "tags": [], "staff_detail": staff_detail}


@dataclass
class World:
    """One course with a staff member, two students and the mytorch-cnn assignment."""

    course: Course
    staff: User
    alice: User
    bob: User
    assignment: Assignment
