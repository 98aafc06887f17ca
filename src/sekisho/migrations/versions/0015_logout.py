"""Logout and subject settings of OpenID Connect clients (issue 9): the back-channel
logout URI (OpenID Connect Back-Channel Logout 1.0 §2.2), whether it needs ``sid``,
the subject type (OIDC Core §8), and the durable queue of logout tokens to deliver.

Revision ID: 0015_logout
Revises: 0009_api_keys
Create Date: 2026-11-27 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_logout"
down_revision: str | None = "0014_par"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.add_column(sa.Column("backchannel_logout_uri", sa.String(length=2000)))
        batch.add_column(
            sa.Column(
                "backchannel_logout_session_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch.add_column(
            sa.Column("subject_type", sa.String(length=16), nullable=False, server_default="public")
        )
    op.create_table(
        "oidc_logout_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500)),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_oidc_logout_deliveries_due", "oidc_logout_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_oidc_logout_deliveries_due", table_name="oidc_logout_deliveries")
    op.drop_table("oidc_logout_deliveries")
    with op.batch_alter_table("oidc_clients") as batch:
        batch.drop_column("subject_type")
        batch.drop_column("backchannel_logout_session_required")
        batch.drop_column("backchannel_logout_uri")
