"""Accepting an upload: the policy checks, in the order a student would want to hear
about them, then durable storage. Plain functions; the views only translate.

Order: released? -> still open? -> daily limit -> size (while streaming to a staging
file of the content-addressed store) -> content (a trial extraction with the grader's
own safe extractor; an archive missing any required file is refused, with the list,
before anything is stored, so it is not counted against the daily limit) -> the daily
limit again, under a lock on (student, assignment) (``store.locks``), so concurrent
uploads cannot overrun it -> the ``queued`` row, the archive moved to its content
address, the commit. A rejected upload's staging file is removed; an archive already
stored under the same hash (another submission's) is never touched. Enqueueing is the
caller's next step, after the commit, so an accepted upload is never lost when the
broker is down.

Staff are exempt from the release date, the deadlines and the daily limit (they try
handins out of hours) and their uploads are never late. A student with an extension
(:mod:`web.extensions`) is checked against their own due and late due dates, and their
late days count from their own due date.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from typing import BinaryIO, cast

from sqlalchemy.orm import Session

from grader.extract import ExtractionError, extract_archive
from grader.spec import AssignmentSpec
from store.archives import ArchiveStore, ArchiveTooLarge, Staged
from store.locks import lock_user_assignment
from store.models import Assignment, Submission, User
from store.queries import submissions_today
from tasks.settings import Settings
from web.access import is_course_staff
from web.extensions import Deadlines, assignment_deadlines, deadlines_for
from web.formatting import utc as when
from web.lookups import spec_for

MB = 1 << 20


class UploadRejected(Exception):
    """The upload was refused; ``message`` is the sentence for the student and
    ``status`` the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.missing = missing  # required files the archive lacks


def accept_upload(
    db: Session,
    settings: Settings,
    user: User,
    assignment: Assignment,
    stream: BinaryIO,
    filename: str,
    now: datetime,
) -> Submission:
    """Check, store and record an upload; raises :class:`UploadRejected`."""
    dates = deadlines_for(db, assignment, user)
    limited = not is_course_staff(db, user, assignment.course_id)
    if limited:
        check_open(assignment, now, dates)
        check_daily_limit(db, user, assignment, now)  # early, before reading the body
    spec = spec_for(assignment)
    store = ArchiveStore(settings.data_dir)
    staged = stage_archive(store, stream, upload_limit(settings, spec))
    try:
        check_content(staged.path, spec)
        if limited and assignment.daily_limit is not None:
            lock_user_assignment(db, user.id, assignment.id)
            check_daily_limit(db, user, assignment, now)  # again, with no upload racing
        submission = Submission(
            assignment_id=assignment.id, user_id=user.id, status="queued", attempt=0,
            archive_sha256=staged.sha256, archive_size=staged.size,
            filename=clean_filename(filename), created_at=now,
            late_days=late_days(assignment, now, dates) if limited else 0,
        )
        db.add(submission)
        db.flush()
        store.keep(staged)  # before the commit: a committed row always has its archive
        db.commit()
    except BaseException:
        db.rollback()  # ends the lock's transaction too
        raise
    finally:
        store.discard(staged)  # a rejected upload leaves nothing on disk
    return submission


def check_open(assignment: Assignment, now: datetime, dates: Deadlines | None = None) -> None:
    """Released and not closed, by ``dates`` (the student's own; default: the
    assignment's)."""
    dates = dates or assignment_deadlines(assignment)
    if assignment.release_at is not None and now < assignment.release_at:
        raise UploadRejected(
            f"{assignment.title} is not open yet; it opens on {when(assignment.release_at)}.", 403
        )
    if dates.due_at is None or now <= dates.due_at:
        return
    whose = "Your extended deadline" if dates.extended else "The deadline"
    due = f"{whose} for {assignment.title} passed on {when(dates.due_at)}"
    if dates.late_due_at is None:
        raise UploadRejected(f"{due}; late submissions are not accepted.", 403)
    if now > dates.late_due_at:
        raise UploadRejected(
            f"{due}; late submissions closed on {when(dates.late_due_at)}.", 403
        )


def check_daily_limit(db: Session, user: User, assignment: Assignment, now: datetime) -> None:
    limit = assignment.daily_limit
    if limit is None:
        return
    used = submissions_today(db, user.id, assignment.id, now)
    if used >= limit:
        raise UploadRejected(
            f"You have used {used} of {limit} submissions today; "
            "the limit resets at midnight UTC.", 429
        )


def upload_limit(settings: Settings, spec: AssignmentSpec) -> int:
    return min(settings.max_upload_bytes, spec.submission.max_bytes)


def stage_archive(store: ArchiveStore, stream: BinaryIO, limit: int) -> Staged:
    counted = CountingReader(stream)
    try:
        return store.stage(cast(BinaryIO, counted), limit)  # stage only calls read()
    except ArchiveTooLarge:
        raise UploadRejected(too_large(counted.drain(), limit), 413) from None


def too_large(size: int, limit: int) -> str:
    return f"Your file is {size / MB:.1f} MB; the limit is {limit / MB:g} MB."


def check_content(archive: Path, spec: AssignmentSpec) -> None:
    """Trial-extract with the grader's extractor, so what is accepted can be graded."""
    scratch = Path(tempfile.mkdtemp(prefix="dlgrade-upload-"))
    try:
        extracted = extract_archive(archive, scratch, expected_top=spec.submission.top_level)
    except ExtractionError as exc:
        raise UploadRejected(str(exc), 422) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wanted = spec.submission.required_files
    if wanted and not set(wanted) & set(extracted.files):
        raise UploadRejected(wrong_files(wanted), 422, missing=wanted)
    missing = tuple(path for path in wanted if path not in set(extracted.files))
    if missing:
        raise UploadRejected(missing_files(missing, len(wanted)), 422, missing=missing)


def wrong_files(wanted: tuple[str, ...]) -> str:
    """One with none of the files is almost always the wrong archive."""
    shown = ", ".join(wanted[:3]) + (", …" if len(wanted) > 3 else "")
    return f"Your archive contains none of the files this assignment grades ({shown}); " \
        "check that you chose the right file."


def missing_files(missing: tuple[str, ...], wanted: int) -> str:
    """Refused before it is stored, so it uses none of the day's submissions: a handin
    without a required file would only fail that file's tests and cost an attempt."""
    shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
    return (f"Your archive lacks {len(missing)} of the {wanted} required files: {shown}. "
            "Nothing was submitted and your daily limit is untouched; add them (the "
            "starter's version will do for parts you have not done) and upload again.")


def late_days(assignment: Assignment, now: datetime, dates: Deadlines | None = None) -> int:
    """Whole days (rounded up) past the due date (the student's own, by ``dates``);
    0 when on time."""
    due = (dates or assignment_deadlines(assignment)).due_at
    if due is None or now <= due:
        return 0
    return math.ceil((now - due) / timedelta(days=1))


def clean_filename(filename: str) -> str:
    name = PurePath(filename.replace("\\", "/")).name
    return "".join(c for c in name if c.isprintable())[:255] or "upload"


@dataclass
class CountingReader:
    """Counts what the store read, so a rejected upload's full size can be reported."""

    inner: BinaryIO
    count: int = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.inner.read(size)
        self.count += len(chunk)
        return chunk

    def drain(self) -> int:
        """Read the rest (already bounded by the request size limit); the total size."""
        while self.read(MB):
            pass
        return self.count
