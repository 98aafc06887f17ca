"""Transaction confirmations (issue 10, SECURITY.md cases 52 and 53): what an application
asked a person to confirm, bound to its client, user and session; the signed
confirmation once a passkey confirmed it, and when it was redeemed (single use).

Revision ID: 0011_confirmations
Revises: 0009_api_keys
Create Date: 2026-11-27 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_confirmations"
down_revision: str | None = "0010_refresh_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transaction_confirmations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("details_hash", sa.String(length=64), nullable=False),
        sa.Column("return_uri", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("passkey_id", sa.String(length=64), nullable=True),
        sa.Column("acr", sa.String(length=32), nullable=True),
        sa.Column("amr", sa.String(length=100), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oidc_clients.id"],
            name=op.f("fk_transaction_confirmations_client_id_oidc_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_transaction_confirmations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_confirmations")),
    )
    with op.batch_alter_table("transaction_confirmations", schema=None) as batch_op:
        batch_op.create_index("ix_transaction_confirmations_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transaction_confirmations", schema=None) as batch_op:
        batch_op.drop_index("ix_transaction_confirmations_expires")
    op.drop_table("transaction_confirmations")
