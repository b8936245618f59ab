"""Transaction-scoped locks that serialise a check and the write it guards.

:func:`lock_user_assignment` makes "count today's submissions, then insert one" atomic
per (user, assignment): two uploads of one student to one assignment cannot both see
the count below the daily limit. The lock lasts until the caller's transaction ends
(commit or rollback), so take it right before the count, after any slow work.

- Postgres: ``pg_advisory_xact_lock(user_id, assignment_id)`` (the two-integer key
  space, apart from the single-key migration lock). Under READ COMMITTED the count that
  follows sees every row committed by the previous holder.
- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock now rather than at the
  first INSERT (SQLite has one writer at a time, so this is coarser but short). When the
  connection is already in a transaction it has written, so it holds that lock already.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_user_assignment(db: Session, user_id: int, assignment_id: int) -> None:
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:user_id, :assignment_id)"),
                   {"user_id": user_id, "assignment_id": assignment_id})
    elif dialect == "sqlite":
        raw = db.connection().connection.dbapi_connection
        if raw is not None and not getattr(raw, "in_transaction", False):
            db.execute(text("BEGIN IMMEDIATE"))
