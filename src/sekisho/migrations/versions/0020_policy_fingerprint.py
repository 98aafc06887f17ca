"""The fingerprint of the policy the deployment last applied: one row, replaced by the
first process that starts with another policy (and sweeps the sessions it refuses).

Revision ID: 0020_policy_fingerprint
Revises: 0019_user_locale
Create Date: 2026-11-27 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_policy_fingerprint"
down_revision: str | None = "0019_user_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_fingerprint",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("policy_fingerprint")
