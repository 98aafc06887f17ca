"""Pending changes of an account's email address (SECURITY.md case 31): the new address
waits here, with the keyed hashes of its one-time link and code, until it is confirmed.

Revision ID: 0017_email_change
Revises: 0016_rar
Create Date: 2026-11-27 15:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_email_change"
down_revision: str | None = "0016_rar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_changes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("new_email", sa.String(length=254), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_digest"),
    )
    op.create_index("ix_email_changes_user", "email_changes", ["user_id"])
    op.create_index("ix_email_changes_expires", "email_changes", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_email_changes_expires", table_name="email_changes")
    op.drop_index("ix_email_changes_user", table_name="email_changes")
    op.drop_table("email_changes")
