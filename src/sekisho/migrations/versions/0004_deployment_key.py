"""The deployment's secret-key fingerprint: one row, written by the first process to start.

Revision ID: 0004_deployment_key
Revises: 0003_passwords
Create Date: 2026-11-27 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_deployment_key"
down_revision: str | None = "0003_passwords"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deployment_key",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_key")),
    )


def downgrade() -> None:
    op.drop_table("deployment_key")
