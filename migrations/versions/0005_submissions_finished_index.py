"""An index on submissions (status, finished_at): the wait a queued student is told reads
the queue's last finished gradings on every status poll, and the dashboard counts the
last hour's; without it each read sorts every finished submission.

Revision ID: 0005_finished_index
Revises: 0004_heartbeat_slots
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0005_finished_index"
down_revision = "0004_heartbeat_slots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_submissions_status_finished", "submissions", ["status", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_submissions_status_finished", table_name="submissions")
