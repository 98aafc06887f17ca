"""Tiers (issue 10): each account's operator-set tier, a session's restriction and own
idle limit, and whether a passkey's attestation chained to a configured trust root.

Revision ID: 0007_tiers
Revises: 0006_oidc
Create Date: 2026-11-27 11:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_tiers"
down_revision: str | None = "0006_oidc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=32), nullable=True))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restriction", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("idle_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("passkeys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "attestation_trusted", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("passkeys", schema=None) as batch_op:
        batch_op.drop_column("attestation_trusted")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("idle_seconds")
        batch_op.drop_column("restriction")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("tier")
