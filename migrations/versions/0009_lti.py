"""LTI 1.3: registered platforms, the contexts, resource links and users their launches
map to, the grade passback outbox and the short-lived OIDC state (store/lti_models.py).

Revision ID: 0009_lti
Revises: 0008_result_records
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_lti"
down_revision = "0008_result_records"
branch_labels = None
depends_on = None


def utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def fk(column: str, table: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "lti_platforms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("deployment_ids", sa.JSON(), nullable=False),
        sa.Column("auth_login_url", sa.String(length=2000), nullable=False),
        sa.Column("auth_token_url", sa.String(length=2000), nullable=False),
        sa.Column("key_set_url", sa.String(length=2000), nullable=False),
        sa.Column("auth_audience", sa.String(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_platforms")),
        sa.UniqueConstraint("issuer", "client_id",
                            name=op.f("uq_lti_platforms_issuer_client_id")),
    )
    op.create_table(
        "lti_contexts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("memberships_url", sa.String(length=2000), nullable=True),
        sa.Column("lineitems_url", sa.String(length=2000), nullable=True),
        sa.Column("sync_requested_at", utc(), nullable=True),
        sa.Column("synced_at", utc(), nullable=True),
        sa.Column("sync_error", sa.Text(), nullable=True),
        sa.Column("sync_summary", sa.String(length=500), nullable=False),
        fk("platform_id", "lti_contexts", "lti_platforms", "CASCADE"),
        fk("course_id", "lti_contexts", "courses", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_contexts")),
        sa.UniqueConstraint("platform_id", "context_id",
                            name=op.f("uq_lti_contexts_platform_id_context_id")),
    )
    op.create_table(
        "lti_resource_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("context_row_id", sa.Integer(), nullable=False),
        sa.Column("resource_link_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=True),
        sa.Column("lineitem_url", sa.String(length=2000), nullable=True),
        sa.Column("ags_scopes", sa.String(length=1000), nullable=False),
        fk("platform_id", "lti_resource_links", "lti_platforms", "CASCADE"),
        fk("context_row_id", "lti_resource_links", "lti_contexts", "CASCADE"),
        fk("assignment_id", "lti_resource_links", "assignments", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_resource_links")),
        sa.UniqueConstraint("platform_id", "resource_link_id",
                            name=op.f("uq_lti_resource_links_platform_id_resource_link_id")),
    )
    op.create_table(
        "lti_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        fk("platform_id", "lti_users", "lti_platforms", "CASCADE"),
        fk("user_id", "lti_users", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_users")),
        sa.UniqueConstraint("platform_id", "sub", name=op.f("uq_lti_users_platform_id_sub")),
    )
    op.create_index(op.f("ix_lti_users_user_id"), "lti_users", ["user_id"])
    op.create_table(
        "lti_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("posted_version", sa.Integer(), nullable=False),
        sa.Column("posted_score", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("changed_at", utc(), nullable=False),
        sa.Column("posted_at", utc(), nullable=True),
        fk("link_id", "lti_scores", "lti_resource_links", "CASCADE"),
        fk("user_id", "lti_scores", "users", "CASCADE"),
        fk("submission_id", "lti_scores", "submissions", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_scores")),
        sa.UniqueConstraint("link_id", "user_id", name=op.f("uq_lti_scores_link_id_user_id")),
    )
    op.create_index("ix_lti_scores_status_next", "lti_scores", ["status", "next_attempt_at"])
    op.create_table(
        "lti_states",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("expires_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_lti_states")),
    )
    op.create_index(op.f("ix_lti_states_expires_at"), "lti_states", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lti_states_expires_at"), table_name="lti_states")
    op.drop_table("lti_states")
    op.drop_index("ix_lti_scores_status_next", table_name="lti_scores")
    op.drop_table("lti_scores")
    op.drop_index(op.f("ix_lti_users_user_id"), table_name="lti_users")
    op.drop_table("lti_users")
    op.drop_table("lti_resource_links")
    op.drop_table("lti_contexts")
    op.drop_table("lti_platforms")
