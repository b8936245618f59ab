"""Worker heartbeats: every grading worker's latest sign of life.

Revision ID: 0003_heartbeat
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_heartbeat"
down_revision = "0002"
branch_labels = None
depends_on = None


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("queues", sa.String(length=64), nullable=False),
        sa.Column("sandbox", sa.String(length=500), nullable=False),
        sa.Column("gpus", sa.String(length=500), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("last_seen_at", utc(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_heartbeats")),
        sa.UniqueConstraint("worker", name=op.f("uq_worker_heartbeats_worker")),
    )
    op.create_index(op.f("ix_worker_heartbeats_last_seen_at"), "worker_heartbeats",
                    ["last_seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_worker_heartbeats_last_seen_at"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
