"""Operator-assisted recovery (issue 10 "Recovery that keeps the tier"): a case one
operator opens with a reason and another approves (any operator may cancel it), and the
keyed hash of the one-time code the approval makes.

Revision ID: 0012_operator_recovery
Revises: 0009_api_keys
Create Date: 2026-11-27 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_operator_recovery"
down_revision: str | None = "0011_confirmations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operator_recoveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(length=120), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=120), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code_digest", sa.String(length=64), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("cancelled_by", sa.String(length=120), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_operator_recoveries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_recoveries")),
    )
    with op.batch_alter_table("operator_recoveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_operator_recoveries_user", ["user_id", "expires_at"], unique=False
        )
        batch_op.create_index("ix_operator_recoveries_code", ["code_digest"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("operator_recoveries", schema=None) as batch_op:
        batch_op.drop_index("ix_operator_recoveries_code")
        batch_op.drop_index("ix_operator_recoveries_user")
    op.drop_table("operator_recoveries")
