"""Idempotent uploads and worker health (issues 17 and 12.8).

- ``submissions.idempotency_key``: the key the client sent with the upload (or one the
  server chose), unique per user, so a retried upload finds the first one's submission
  instead of making a second;
- ``worker_heartbeats.health`` and ``unhealthy_since``: a worker whose host cannot grade
  (scratch space full, no memory, no sandbox runtime) says so here ("" when healthy),
  and the staff dashboard shows it.

Revision ID: 0010_reliability
Revises: 0009_lti
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_reliability"
down_revision = "0009_lti"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
        table.create_unique_constraint("uq_submissions_user_id_idempotency_key",
                                       ["user_id", "idempotency_key"])
    with op.batch_alter_table("worker_heartbeats") as table:
        table.add_column(sa.Column("health", sa.String(500), nullable=False, server_default=""))
        table.add_column(sa.Column("unhealthy_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as table:
        table.drop_column("unhealthy_since")
        table.drop_column("health")
    with op.batch_alter_table("submissions") as table:
        table.drop_constraint("uq_submissions_user_id_idempotency_key", type_="unique")
        table.drop_column("idempotency_key")
