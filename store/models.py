"""SQLAlchemy 2 models shared by web and tasks. The database is the source of truth.

A submission row carries its status (queued | running | done | error), the attempt
count and a lease: workers claim a row conditionally and write results only for the
attempt they claimed, so duplicate deliveries and crashed workers cannot produce two
results (see ``store.leases``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from store.web_models import CodeComment, ScoreAdjustment

ROLES = ("student", "staff", "admin")
STATUSES = ("queued", "running", "done", "error")
QUEUES = ("cpu", "gpu")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Named constraints, so that later migrations (batch mode on SQLite) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default="student")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    enrollments: Mapped[list[Enrollment]] = relationship(back_populates="user")

    @property
    def may_create_courses(self) -> bool:
        """The account-wide role: staff (and admins) may create courses. Rights inside a
        course come from that course's enrollment (web.access), never from this."""
        return self.role in ("staff", "admin")


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # IANA name; the course's pages show times in it (web.formatting).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    assignments: Mapped[list[Assignment]] = relationship(back_populates="course")
    enrollments: Mapped[list[Enrollment]] = relationship(back_populates="course")


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("user_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16), default="student")

    user: Mapped[User] = relationship(back_populates="enrollments")
    course: Mapped[Course] = relationship(back_populates="enrollments")


class Assignment(Base):
    """A course's use of an assignment folder (built-in slug or uploaded folder)."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("course_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str | None] = mapped_column(String(1024), default=None)  # None: built-in
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    late_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    late_penalty_per_day: Mapped[float] = mapped_column(Float, default=0.0)  # fraction per day
    daily_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    hidden_visible_after_due: Mapped[bool] = mapped_column(Boolean, default=True)
    queue: Mapped[str] = mapped_column(String(8), default="cpu")
    # Students pick which of their graded submissions counts (else: the best).
    students_choose: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default="0")

    course: Mapped[Course] = relationship(back_populates="assignments")
    submissions: Mapped[list[Submission]] = relationship(back_populates="assignment")
    # Read-only view (the rows are written through Extension); visibility needs the
    # latest date any student can still submit.
    extensions: Mapped[list[Extension]] = relationship(viewonly=True)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_status_created", "status", "created_at"),
        Index("ix_submissions_status_finished", "status", "finished_at"),  # recent gradings
        Index("ix_submissions_assignment_user", "assignment_id", "user_id"),
        # A retried upload (same user, same key) finds the first one's row (web.uploads).
        UniqueConstraint("user_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    archive_sha256: Mapped[str] = mapped_column(String(64))
    archive_size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255), default="")
    late_days: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The points the tests earned, as graded: the score that counts (late penalty in force,
    # adjustments) is computed when shown, by store.scores (grader.scoring).
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    grading_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # dlgrade's record of the grading (GradingResult.to_record); Gradescope's results.json
    # is made from it at the edge (GradingResult.to_gradescope).
    results: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)  # for the student
    staff_detail: Mapped[str | None] = mapped_column(Text, default=None)  # staff only
    # The client's Idempotency-Key (or one the server chose): unique per user.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)

    assignment: Mapped[Assignment] = relationship(back_populates="submissions")
    user: Mapped[User] = relationship()
    tests: Mapped[list[TestScore]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="TestScore.position"
    )
    # Staff's manual adjustments (store.web_models), applied by grader.scoring.
    adjustments: Mapped[list[ScoreAdjustment]] = relationship(
        viewonly=True, lazy="selectin", order_by="ScoreAdjustment.created_at")
    comments: Mapped[list[CodeComment]] = relationship(
        viewonly=True, order_by="CodeComment.created_at")


class TestScore(Base):
    """One test of one submission's result: an index of the record's tests for queries
    (the gradebook's per-test columns, pass rates), written with it in one transaction.
    Pages show the record itself."""

    __tablename__ = "test_scores"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(32))
    output: Mapped[str] = mapped_column(Text, default="")
    staff_detail: Mapped[str] = mapped_column(Text, default="")

    submission: Mapped[Submission] = relationship(back_populates="tests")


class ApiToken(Base):
    """A bearer token; only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Space-separated scopes (see web.scopes); "" on tokens made before scopes existed,
    # which are read as the default scopes of the owner's role.
    scopes: Mapped[str] = mapped_column(String(400), default="")

    user: Mapped[User] = relationship()


class Extension(Base):
    """A per-student extension: ``due_at`` / ``late_due_at`` replace the assignment's."""

    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("assignment_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    late_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assignment: Mapped[Assignment] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class Webhook(Base):
    """A course's endpoint told (HMAC-signed) when one of its submissions finishes."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))  # the HMAC key; needed in clear to sign
    events: Mapped[str] = mapped_column(String(200), default="submission.completed")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    course: Mapped[Course] = relationship()


class WebhookDelivery(Base):
    """One event for one webhook, written in the transaction that stores the result, so
    an event is never lost; a sender posts pending rows and retries with back-off."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), default=None
    )
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    webhook: Mapped[Webhook] = relationship()


class WorkerHeartbeat(Base):
    """A grading worker's latest sign of life, written every few seconds by the worker
    itself (``store.heartbeats.beat``), so staff see idle and dead workers too, not only
    those holding a lease. Rows not seen for a day are pruned."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)
    worker: Mapped[str] = mapped_column(String(200), unique=True)
    queues: Mapped[str] = mapped_column(String(64), default="")  # comma-separated
    sandbox: Mapped[str] = mapped_column(String(500), default="")  # one sentence
    gpus: Mapped[str] = mapped_column(String(500), default="")  # comma-separated ids
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    slots: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # at once
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # No foreign key: a heartbeat is advisory and must never fail on a deleted row.
    submission_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # Why this worker cannot grade now ("" when it can): its scratch space is full, its
    # sandbox runtime fails, ... (tasks.health); it takes no work until that clears.
    health: Mapped[str] = mapped_column(String(500), default="", server_default="")
    unhealthy_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
