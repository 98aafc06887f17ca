"""Passkeys: credentials per user, and each user's WebAuthn user handle.

Revision ID: 0002_passkeys
Revises: 0001_initial
Create Date: 2026-11-24 15:53:01.733089
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_passkeys"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "passkeys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.String(length=200), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backup_state", sa.Boolean(), nullable=False),
        sa.Column("user_verified", sa.Boolean(), nullable=False),
        sa.Column("attestation_format", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_passkeys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkeys_credential_id")),
    )
    with op.batch_alter_table("passkeys", schema=None) as batch_op:
        batch_op.create_index("ix_passkeys_user", ["user_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webauthn_handle", sa.String(length=88), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_users_webauthn_handle"), ["webauthn_handle"]
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_webauthn_handle"), type_="unique")
        batch_op.drop_column("webauthn_handle")

    with op.batch_alter_table("passkeys", schema=None) as batch_op:
        batch_op.drop_index("ix_passkeys_user")

    op.drop_table("passkeys")
