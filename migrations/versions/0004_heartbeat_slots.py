"""Worker heartbeats say how many gradings the worker runs at once (its slots), so the
wait a queued student is told counts every pool process, not one per worker.

Revision ID: 0004_heartbeat_slots
Revises: 0003_heartbeat
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_heartbeat_slots"
down_revision = "0003_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as table:
        table.add_column(sa.Column("slots", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as table:
        table.drop_column("slots")
