"""Every case of the hostile-submission corpus through the real grading path, on both
sandbox backends: ``web.uploads.accept_upload`` (size and trial extraction, into the
archive store), then ``tasks.jobs.GradingJob`` on a migrated SQLite database.

After each case: the expected outcome and messages hold, the score is not above the
case's maximum, exactly one result exists (one ``done``/``error`` row of attempt 1 and
one test row per graded test), no secret of the worker or another student's
submission appears anywhere in it, the handin was not changed, no sandbox process or
container is left, and the same worker grades the reference solution to full marks.
Archive attacks end as a rejected upload with the precise message and no row.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from grader.spec import AssignmentSpec
from sandbox.backend import Backend
from sandbox.output import UNSAFE
from sandbox.process_backend import UID_BASE, UID_SPAN, ProcessBackend, unavailable_reason
from store.archives import ArchiveStore
from store.db import SessionFactory
from store.models import Assignment, Course, Submission, TestScore, User
from tasks.jobs import MISCONFIGURED, GradingJob, Unusable, time_limit_problem
from tests.conftest import MYTORCH_SOLUTION, require
from tests.malicious.corpus import (
    BACKEND_KEYS,
    CATEGORIES,
    KNOWN_KEYS,
    TEST_KEYS,
    Case,
    RecordingBackend,
    load_cases,
    processes_of,
    tar_gz,
)
from tests.services import docker_with_local_image, make_settings
from web.uploads import UploadRejected, accept_upload

CASES = load_cases()
FAKE_SECRET = "WORKER-SECRET-5d1e0c"  # in the worker's environment; must never surface
OTHER_STUDENT_SECRET = "OTHER-STUDENT-SECRET-7f3a"
HOST_RESULTS = Path("/tmp/results.json")
MAX_CASE_SECONDS = 90.0


# -- the two backends ------------------------------------------------------------------


class Engine:
    """One backend for the whole session and how to see what it left behind."""

    def __init__(self, name: str, backend: Backend) -> None:
        self.name, self.backend = name, backend

    def recorder(self) -> RecordingBackend:
        if self.name == "process":
            return RecordingBackend(self.backend, identify=lambda s: s.ping()["uid"])
        from sandbox.docker_profile import LABEL_SESSION

        return RecordingBackend(self.backend,
                                identify=lambda s: s.box.container.labels[LABEL_SESSION])

    def leftovers(self, recorder: RecordingBackend) -> list[Any]:
        """What is still running of the recorder's sandboxes (waits up to 5 s)."""
        deadline = time.monotonic() + 5
        while (left := self._left(recorder)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def _left(self, recorder: RecordingBackend) -> list[Any]:
        if self.name == "process":
            uids = set(recorder.identities)
            assert all(UID_BASE <= uid < UID_BASE + UID_SPAN for uid in uids), uids
            return processes_of(uids)
        from sandbox.docker_profile import LABEL_WORKER, worker_label

        client = self.backend.client  # type: ignore[attr-defined]
        return [c.name for c in client.containers.list(
            all=True, filters={"label": f"{LABEL_WORKER}={worker_label()}"})]


@pytest.fixture(scope="session")
def process_engine() -> Engine:
    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    return Engine("process", ProcessBackend())


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    """The Docker backend with the image of ``dlgrade sandbox build-local``, built once."""
    from sandbox.docker_backend import DockerBackend

    return Engine("docker", DockerBackend(client=docker_with_local_image()))


# -- one world per case -----------------------------------------------------------------


class CaseJob(GradingJob):
    """The real job, grading the case's version of the assignment (test subset, short
    call timeouts, tiny data) so the corpus stays fast. The grading-time check applies to
    what is graded: a whole assignment may need a longer task time limit than its case."""

    spec_override: AssignmentSpec | None = None

    def _inputs(self, work: Any) -> tuple[AssignmentSpec, Path]:
        if self.spec_override is None:
            return super()._inputs(work)
        too_long = time_limit_problem(self.spec_override, self.settings)
        if too_long is not None:
            raise Unusable(MISCONFIGURED, too_long)
        archive = self.archives.path(work.archive_sha256)
        assert archive.is_file(), archive
        return self.spec_override, archive


class World:
    def __init__(self, factory: SessionFactory, url: str, data_dir: Path, engine: Engine,
                 slug: str) -> None:
        self.factory, self.data_dir, self.engine = factory, data_dir, engine
        self.settings = make_settings(data_dir, url, sandbox=engine.name)
        self.slug = slug
        with factory() as db:
            student = User(email="student@example.org", password_hash="x")
            other = User(email="other@example.org", password_hash="x")
            course = Course(slug="c", title="Course")
            db.add_all([student, other, course])
            db.flush()
            assignment = Assignment(course_id=course.id, slug=slug, title=slug)
            db.add(assignment)
            healthy = assignment
            if slug != "mytorch-cnn":
                healthy = Assignment(course_id=course.id, slug="mytorch-cnn", title="mytorch")
                db.add(healthy)
            db.flush()
            self.student_id, self.other_id = student.id, other.id
            self.assignment_id, self.health_assignment_id = assignment.id, healthy.id
            db.commit()

    def store_other_students_handin(self, workdir: Path) -> None:
        """A neighbour's submission, with a secret, in the same archive store."""
        folder = workdir / "other"
        folder.mkdir()
        (folder / "secret.py").write_text(f"KEY = {OTHER_STUDENT_SECRET!r}\n")
        sha, size = ArchiveStore(self.data_dir).put(io.BytesIO(tar_gz(folder)), 1 << 20)
        with self.factory() as db:
            db.add(Submission(assignment_id=self.assignment_id, user_id=self.other_id,
                              archive_sha256=sha, archive_size=size, filename="o.tar.gz",
                              status="done", attempt=1))
            db.commit()

    def upload(self, data: bytes, assignment_id: int | None = None) -> int:
        with self.factory() as db:
            user = db.get(User, self.student_id)
            assignment = db.get(Assignment, assignment_id or self.assignment_id)
            assert user is not None and assignment is not None
            row = accept_upload(db, self.settings, user, assignment, io.BytesIO(data),
                                "handin.tar.gz", datetime.now(UTC))
            return row.id

    def own_submissions(self) -> int:
        with self.factory() as db:
            return int(db.scalar(select(func.count()).select_from(Submission)
                                 .where(Submission.user_id == self.student_id)) or 0)

    def row(self, submission_id: int) -> tuple[Submission, list[TestScore]]:
        with self.factory() as db:
            row = db.get(Submission, submission_id)
            assert row is not None
            tests = list(db.scalars(select(TestScore).where(
                TestScore.submission_id == submission_id).order_by(TestScore.position)))
            return row, tests


@pytest.fixture
def make_world(sqlite_factory: SessionFactory, sqlite_url: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Callable[[Engine, str], World]:
    # Secrets a worker has in its environment; none may reach student code or results.
    monkeypatch.setenv("DLGRADE_SECRET_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("DLGRADE_BROKER_URL", f"redis://:{FAKE_SECRET}@localhost:6379/0")

    def make(engine: Engine, slug: str) -> World:
        return World(sqlite_factory, sqlite_url, tmp_path / "data", engine, slug)

    return make


# -- the runner ---------------------------------------------------------------------------


def run_case(case: Case, engine: Engine, world: World, workdir: Path) -> None:
    world.store_other_students_handin(workdir)
    data = case.upload(workdir)
    results_before = HOST_RESULTS.read_bytes() if HOST_RESULTS.exists() else None
    if case.rejected:
        check_rejected(case, world, data)
        return
    submission_id = world.upload(data)
    recorder = engine.recorder()
    job = CaseJob(world.settings, world.factory, worker="corpus-worker",
                  backend=lambda: recorder)
    job.spec_override = case.spec()
    began = time.monotonic()
    outcome = job.run(submission_id)
    elapsed = time.monotonic() - began
    row, tests = world.row(submission_id)
    check_result(case, engine.name, outcome, row, tests)
    check_no_leaks(row, tests)
    assert elapsed < MAX_CASE_SECONDS, f"grading took {elapsed:.1f} s"
    assert recorder.changed == [], "the sandbox changed the handin it was given"
    assert engine.leftovers(recorder) == [], "sandboxes outlived grading"
    if HOST_RESULTS.exists():
        assert b"HOSTILE-RESULTS-MARKER" not in HOST_RESULTS.read_bytes()
    else:
        assert results_before is None


def check_rejected(case: Case, world: World, data: bytes) -> None:
    upload = case.expect["upload"]
    never = [Path(p) for p in upload.get("never_written", [])]
    assert not any(p.exists() for p in never), "a path the case must not write exists already"
    with pytest.raises(UploadRejected) as rejected:
        world.upload(data)
    assert not any(p.exists() for p in never), "extraction wrote outside its directory"
    for text in upload.get("message_contains", []):
        assert text in rejected.value.message, rejected.value.message
    if "message" in upload:
        assert rejected.value.message == upload["message"]
    assert rejected.value.status == upload.get("http_status", 422)
    assert world.own_submissions() == 0, "a rejected upload left a row"


def check_result(case: Case, backend: str, outcome: str, row: Submission,
                 tests: list[TestScore]) -> None:
    spec = case.spec()
    expected_status = case.expect.get("status", "done")
    report = "\n".join(f"[{t.outcome}] {t.name}: {t.score}/{t.max_score}\n{t.output[:1500]}"
                       for t in tests)
    if row.error or not tests:  # a job-level error has no test rows to show
        report += f"\nrow error: {row.error!r}\nstaff detail: {(row.staff_detail or '')[:3000]}"
    assert (outcome, row.status, row.attempt) == (expected_status, expected_status, 1), report
    assert row.lease_until is None and row.results is not None
    assert [t.name for t in tests] == [t.name for t in spec.tests], "one row per graded test"
    assert [t.position for t in tests] == list(range(len(tests)))
    assert row.score is not None and row.score <= case.value("max_score", backend), report
    assert row.score == sum(t.score for t in tests)
    fails = case.value("fails", backend, [])
    may_fail = case.value("may_fail", backend, [])
    for test in tests:
        if test.name in may_fail:
            assert test.outcome == "passed" or test.score == 0, report
        elif test.name in fails:
            assert test.score == 0 and test.outcome != "passed", report
        else:
            assert test.outcome == "passed" and test.score == test.max_score, \
                f"{test.name} not graded\n{report}"
        if test.outcome == "error":
            assert test.name in case.expect.get("grader_errors_allowed", []), report
        assert len(test.output) < 200_000, "captured output was not capped"
        for text in (test.output, test.staff_detail or "", test.name):  # issue 12.9
            assert not UNSAFE.search(text), f"{test.name}: a control character survived"
    by_name = {t.name: t for t in tests}
    for name, wanted in case.tests_for(backend).items():
        test = by_name[name]
        allowed = wanted.get("outcomes", [wanted["outcome"]] if "outcome" in wanted else [])
        assert not allowed or test.outcome in allowed, report
        for text in wanted.get("message_contains", []):
            assert text in test.output, f"{name}: {text!r} missing\n{report}"
        for text in wanted.get("message_excludes", []):
            assert text not in test.output, f"{name}: {text!r} leaked\n{report}"


def check_no_leaks(row: Submission, tests: list[TestScore]) -> None:
    everything = json.dumps(row.results) + (row.error or "") + (row.staff_detail or "")
    everything += "".join(t.output + (t.staff_detail or "") for t in tests)
    assert FAKE_SECRET not in everything, "a secret of the worker reached the result"
    assert OTHER_STUDENT_SECRET not in everything, "another student's handin leaked"


def check_healthy(engine: Engine, world: World, workdir: Path) -> None:
    """The same worker, at once, grades the reference solution to full marks."""
    world_id = world.upload(tar_gz(MYTORCH_SOLUTION), world.health_assignment_id)
    recorder = engine.recorder()
    job = GradingJob(world.settings, world.factory, worker="corpus-worker",
                     backend=lambda: recorder)
    assert job.run(world_id) == "done"
    row, tests = world.row(world_id)
    assert row.score == row.max_score == 100, [t.output[:300] for t in tests]
    # Two sandbox lineages, no more: the tests of NumPy-only files share one without
    # PyTorch; "CNN model" (hw2/hw2.py may import torch) gets the one with it.
    assert len(recorder.sessions) == 2
    assert engine.leftovers(recorder) == []


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield request.getfixturevalue(f"{request.param}_engine")


def _params() -> list[Any]:
    marks = {"process": pytest.mark.sandbox, "docker": pytest.mark.docker}
    return [pytest.param(backend, case, id=f"{backend}:{case.id}", marks=marks[backend])
            for backend in ("process", "docker") for case in CASES]


@pytest.mark.parametrize(("engine", "case"), _params(), indirect=["engine"])
def test_case(engine: Engine, case: Case, make_world: Callable[[Engine, str], World],
              tmp_path: Path) -> None:
    world = make_world(engine, case.assignment)
    run_case(case, engine, world, tmp_path)
    check_healthy(engine, world, tmp_path)


def test_the_corpus_is_complete_and_well_formed() -> None:
    assert len(CASES) >= 40
    per_category = {c: sum(case.category == c for case in CASES) for c in CATEGORIES}
    assert all(count >= 4 for count in per_category.values()), per_category
    for case in CASES:
        unknown = set(case.expect) - KNOWN_KEYS
        assert not unknown, f"{case.id}: unknown keys {sorted(unknown)}"
        for backend in ("process", "docker"):
            extra = set(case.expect.get(backend, {})) - BACKEND_KEYS
            assert not extra, f"{case.id}: unknown keys in [{backend}]: {sorted(extra)}"
        assert case.expect["description"].strip() and "max_score" in case.expect
        assert case.changes(), f"{case.id} changes nothing"
        names = {t.name for t in case.spec().tests}
        assert names, f"{case.id} grades no test"
        for backend in ("process", "docker"):
            assert set(case.value("fails", backend, [])) <= names, case.id
            assert set(case.value("may_fail", backend, [])) <= names, case.id
        for backend in ("process", "docker"):
            tests = case.tests_for(backend)
            assert set(tests) <= names, case.id
            assert all(set(v) <= TEST_KEYS for v in tests.values()), case.id
        if case.category == "archive":
            assert (case.folder / "make.py").is_file(), case.id
