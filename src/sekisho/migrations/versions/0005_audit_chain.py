"""The tamper-evident audit chain: each event's place, sealing key and hash, its request
id, and the one-row chain head (docs/audit.md).

Events written before this revision stay unsealed here, because sealing needs the
server secret, which migrations do not hold: the first process that starts with the
secret (``serve``, ``mail worker`` or ``audit verify``) seals them, in id order, before
anything else is written.

Revision ID: 0005_audit_chain
Revises: 0004_deployment_key
Create Date: 2026-11-27 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_audit_chain"
down_revision: str | None = "0004_deployment_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_audit_events_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_events_seq", ["seq"], unique=True)
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )


def downgrade() -> None:
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_seq")
        batch_op.drop_index("ix_audit_events_at")
        batch_op.drop_column("hash")
        batch_op.drop_column("key_id")
        batch_op.drop_column("seq")
        batch_op.drop_column("request_id")
