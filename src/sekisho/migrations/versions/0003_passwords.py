"""Passwords imported from a legacy system, per-user migration mode and account attributes.

Revision ID: 0003_passwords
Revises: 0002_passkeys
Create Date: 2026-11-24 16:34:55.828834
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_passwords"
down_revision: str | None = "0002_passkeys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "passwords",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=1024), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_passwords_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_passwords")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attributes", sa.Text(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("migration_mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("imported_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("password_retired_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_retired_at")
        batch_op.drop_column("imported_at")
        batch_op.drop_column("migration_mode")
        batch_op.drop_column("attributes")

    op.drop_table("passwords")
