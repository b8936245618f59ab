"""What staff and students add around a grading: live progress of a running grading,
manual score adjustments, the scores before each regrade, the submission a student
chose to count (assignments.students_choose), and line comments on the code.

Revision ID: 0007_web_grading
Revises: 0006_web_accounts
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_web_grading"
down_revision = "0006_web_accounts"
branch_labels = None
depends_on = None


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "grading_progress",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        fk("grading_progress", "submission_id", "submissions", "CASCADE"),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_grading_progress")),
    )
    op.create_table(
        "score_adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        fk("score_adjustments", "submission_id", "submissions", "CASCADE"),
        fk("score_adjustments", "author_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_adjustments")),
    )
    op.create_index(op.f("ix_score_adjustments_submission_id"), "score_adjustments",
                    ["submission_id"])
    op.create_table(
        "score_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tests", sa.JSON(), nullable=False),
        sa.Column("graded_at", utc(), nullable=True),
        sa.Column("regraded_at", utc(), nullable=False),
        sa.Column("regraded_by_id", sa.Integer(), nullable=True),
        sa.Column("seen_at", utc(), nullable=True),
        fk("score_history", "submission_id", "submissions", "CASCADE"),
        fk("score_history", "regraded_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_history")),
    )
    op.create_index(op.f("ix_score_history_submission_id"), "score_history", ["submission_id"])
    op.create_table(
        "active_choices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("chosen_at", utc(), nullable=False),
        fk("active_choices", "assignment_id", "assignments", "CASCADE"),
        fk("active_choices", "user_id", "users", "CASCADE"),
        fk("active_choices", "submission_id", "submissions", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_active_choices")),
        sa.UniqueConstraint("assignment_id", "user_id",
                            name=op.f("uq_active_choices_assignment_id_user_id")),
    )
    op.create_table(
        "code_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        fk("code_comments", "submission_id", "submissions", "CASCADE"),
        fk("code_comments", "author_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_comments")),
    )
    op.create_index(op.f("ix_code_comments_submission_id"), "code_comments", ["submission_id"])
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("students_choose", sa.Boolean(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("students_choose")
    for table in ("code_comments", "active_choices", "score_history", "score_adjustments",
                  "grading_progress"):
        op.drop_table(table)
