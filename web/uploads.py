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

Faults of the host are never the student's (issue 17):

- an upload may carry an idempotency key (the ``Idempotency-Key`` header of the API and
  ``dlgrade submit``, a hidden field of the web form; the server chooses one when it is
  left out); the row stores it, unique per user, so a retried upload returns the first
  one's submission (:attr:`Accepted.replayed`) instead of making a second, and a key
  reused for a different upload is refused (422);
- the transaction that records the upload is retried when the database connection
  drops (a restart of Postgres, a fail-over); an ambiguous commit is resolved by the key.
  When the database stays away, :class:`DatabaseUnavailable` (503, ``Retry-After``);
- a data directory (or scratch space) out of space answers 507 with a sentence, with
  nothing of the upload left behind.

Staff are exempt from the release date, the deadlines and the daily limit (they try
handins out of hours) and their uploads are never late. A student with an extension
(:mod:`web.extensions`) is checked against their own due and late due dates, and their
late days count from their own due date.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from typing import BinaryIO, cast

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from grader import variants
from grader.extract import ExtractionError, extract_archive
from grader.spec import AssignmentSpec
from store.archives import ArchiveStore, ArchiveTooLarge, Staged, StoreFull, out_of_space
from store.locks import lock_user_assignment
from store.models import Assignment, Submission, User
from store.queries import submissions_today
from tasks.settings import Settings
from web.access import is_course_staff
from web.extensions import Deadlines, assignment_deadlines, deadlines_for
from web.formatting import utc as when
from web.lookups import spec_for

log = logging.getLogger(__name__)

MB = 1 << 20
KEY = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII: a UUID, a hash, base64, ...
BAD_KEY = "The Idempotency-Key must be 1 to 200 visible ASCII characters (a UUID, say)."
KEY_REUSED = ("This Idempotency-Key was already used for a different upload; send a new key "
              "with each new upload (and the same key only when you resend the same one).")
OUT_OF_SPACE = ("The server is out of storage space, so your upload was not stored; "
                "try again later (course staff have been told).")
DATABASE_DOWN = ("The grading service cannot reach its database for a moment, so your upload "
                 "was not recorded; try again in a few seconds (resending it with the same "
                 "Idempotency-Key never makes a second submission).")
RETRY_AFTER_S = 5
DB_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 2.0)  # seconds between attempts (~6 s in all)


class UploadRejected(Exception):
    """The upload was refused; ``message`` is the sentence for the student and
    ``status`` the HTTP status the API answers with (``retry_after`` seconds, when
    set, for its Retry-After header)."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None, *,
                 missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.missing = missing  # required files the archive lacks


class KeyReused(UploadRejected):
    """The idempotency key belongs to an earlier, different upload."""

    def __init__(self) -> None:
        super().__init__(KEY_REUSED, 422)


class DatabaseUnavailable(UploadRejected):
    """The database stayed away through every retry; nothing was recorded (or, after an
    ambiguous commit, a retry with the same key finds what was)."""

    def __init__(self) -> None:
        super().__init__(DATABASE_DOWN, 503, RETRY_AFTER_S)


@dataclass(frozen=True)
class Accepted:
    """The submission an upload made, or, when ``replayed``, the one an earlier upload
    with the same idempotency key made."""

    submission: Submission
    replayed: bool = False


@dataclass(frozen=True)
class Upload:
    """What will go into the row, decided before the transaction."""

    user_id: int
    assignment_id: int
    key: str
    filename: str
    late_days: int
    now: datetime
    daily_limit: int | None  # None: not limited (staff, or no limit)


def accept_upload(
    db: Session, settings: Settings, user: User, assignment: Assignment, stream: BinaryIO,
    filename: str, now: datetime, key: str | None = None,
) -> Submission:
    """:func:`accept`'s submission (new, or the replayed one)."""
    return accept(db, settings, user, assignment, stream, filename, now, key).submission


def accept(
    db: Session,
    settings: Settings,
    user: User,
    assignment: Assignment,
    stream: BinaryIO,
    filename: str,
    now: datetime,
    key: str | None = None,
) -> Accepted:
    """Check, store and record an upload (or find the earlier one with ``key``); raises
    :class:`UploadRejected`."""
    if key is not None and not KEY.fullmatch(key):
        raise UploadRejected(BAD_KEY, 400)
    earlier = find_by_key(db, user.id, key) if key is not None else None
    if earlier is not None:
        return replay(earlier, assignment, stream, upload_limit(settings, spec_for(assignment)))
    dates = deadlines_for(db, assignment, user)
    limited = not is_course_staff(db, user, assignment.course_id)
    if limited:
        check_open(assignment, now, dates)
        check_daily_limit(db, user, assignment, now)  # early, before reading the body
    spec = spec_for(assignment)
    upload = Upload(user.id, assignment.id, key or f"server:{secrets.token_hex(16)}",
                    clean_filename(filename), late_days(assignment, now, dates) if limited else 0,
                    now, assignment.daily_limit if limited else None)
    store = ArchiveStore(settings.data_dir)
    staged = stage_archive(store, stream, upload_limit(settings, spec))
    try:
        check_content(staged.path, spec)
        return record(db, upload, staged, store)
    finally:
        store.discard(staged)  # a rejected upload leaves nothing on disk


def new_form_key() -> str:
    """The idempotency key a rendered upload form carries (one per rendering)."""
    return f"form:{secrets.token_urlsafe(18)}"


def find_by_key(db: Session, user_id: int, key: str) -> Submission | None:
    return db.scalar(select(Submission).where(Submission.user_id == user_id,
                                              Submission.idempotency_key == key))


def replay(earlier: Submission, assignment: Assignment, stream: BinaryIO,
           limit: int) -> Accepted:
    """The earlier upload with this key, if this one is the same upload resent (same
    assignment, same bytes: hashed as they stream in, nothing written)."""
    if earlier.assignment_id != assignment.id:
        raise KeyReused()
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(1 << 16):
        size += len(chunk)
        if size > limit:
            raise KeyReused()
        digest.update(chunk)
    if digest.hexdigest() != earlier.archive_sha256:
        raise KeyReused()
    return Accepted(earlier, replayed=True)


def keep(store: ArchiveStore, staged: Staged) -> None:
    """Move the staged upload to its content address (once: a retried transaction finds
    it there already)."""
    try:
        if staged.path.exists() or not store.path(staged.sha256).is_file():
            store.keep(staged)
    except StoreFull:
        raise UploadRejected(OUT_OF_SPACE, 507, RETRY_AFTER_S * 12) from None


def record(db: Session, upload: Upload, staged: Staged, store: ArchiveStore) -> Accepted:
    """Insert the ``queued`` row and commit, retrying when the connection drops; a retry
    whose key is found committed already (the commit was sent, its answer lost) returns
    that row."""
    for delay in (*DB_RETRY_DELAYS, None):
        try:
            return Accepted(insert(db, upload, staged, store))
        except IntegrityError:
            db.rollback()
            found = find_by_key(db, upload.user_id, upload.key)
            if found is None:
                raise
            return Accepted(found, replayed=not upload.key.startswith("server:"))
        except DBAPIError as exc:
            db.rollback()
            if not retryable(exc) or delay is None:
                if retryable(exc):
                    raise DatabaseUnavailable() from None
                raise
            log.warning("recording an upload failed (%s); trying again in %g s",
                        type(exc.orig).__name__ if exc.orig else exc, delay)
            time.sleep(delay)
        except BaseException:
            db.rollback()  # ends the lock's transaction too
            raise
    raise AssertionError("unreachable")


def insert(db: Session, upload: Upload, staged: Staged, store: ArchiveStore) -> Submission:
    if upload.daily_limit is not None:
        lock_user_assignment(db, upload.user_id, upload.assignment_id)
        used = submissions_today(db, upload.user_id, upload.assignment_id, upload.now)
        if used >= upload.daily_limit:  # again, with no upload racing
            raise UploadRejected(daily_limit_text(used, upload.daily_limit), 429)
    submission = Submission(
        assignment_id=upload.assignment_id, user_id=upload.user_id, status="queued",
        attempt=0, archive_sha256=staged.sha256, archive_size=staged.size,
        filename=upload.filename, created_at=upload.now, late_days=upload.late_days,
        idempotency_key=upload.key,
    )
    db.add(submission)
    db.flush()
    keep(store, staged)  # before the commit: a committed row always has its archive
    db.commit()
    return submission


def retryable(exc: DBAPIError) -> bool:
    """A dropped or refused connection (server restart, fail-over), not a bad statement."""
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError | InterfaceError)


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
        raise UploadRejected(daily_limit_text(used, limit), 429)


def daily_limit_text(used: int, limit: int) -> str:
    return f"You have used {used} of {limit} submissions today; the limit resets at midnight UTC."


def upload_limit(settings: Settings, spec: AssignmentSpec) -> int:
    return min(settings.max_upload_bytes, spec.submission.max_bytes)


def stage_archive(store: ArchiveStore, stream: BinaryIO, limit: int) -> Staged:
    counted = CountingReader(stream)
    try:
        return store.stage(cast(BinaryIO, counted), limit)  # stage only calls read()
    except ArchiveTooLarge:
        raise UploadRejected(too_large(counted.drain(), limit), 413) from None
    except StoreFull:
        log.error("an upload was refused: the data directory %s is out of space", store.root)
        raise UploadRejected(OUT_OF_SPACE, 507, RETRY_AFTER_S * 12) from None


def too_large(size: int, limit: int) -> str:
    return f"Your file is {size / MB:.1f} MB; the limit is {limit / MB:g} MB."


def check_content(archive: Path, spec: AssignmentSpec) -> None:
    """Trial-extract with the grader's extractor, so what is accepted can be graded."""
    try:
        scratch = Path(tempfile.mkdtemp(prefix="dlgrade-upload-"))
    except OSError as exc:
        if out_of_space(exc):
            raise UploadRejected(OUT_OF_SPACE, 507, RETRY_AFTER_S * 12) from None
        raise
    try:
        extracted = extract_archive(archive, scratch, expected_top=spec.submission.top_level)
        other = variants.other_handout(spec, extracted.root)
    except ExtractionError as exc:
        raise UploadRejected(str(exc), 422) from None
    except OSError as exc:  # the scratch space, not the archive
        if out_of_space(exc):
            log.error("an upload was refused: %s is out of space", scratch.parent)
            raise UploadRejected(OUT_OF_SPACE, 507, RETRY_AFTER_S * 12) from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if other is not None:  # another semester's homework: say so, not which files it lacks
        raise UploadRejected(variants.not_graded(other), 422)
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
