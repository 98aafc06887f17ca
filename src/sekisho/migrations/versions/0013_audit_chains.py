"""Several audit chains (docs/audit.md): each event records its chain, ``seq`` is
unique within a chain, and the one chain so far becomes chain 0.

Chain 0's seals and head MAC omit the chain number, so the events and head sealed
before this revision verify unchanged; the first process that starts with the secret
creates the heads of the other chains.

Revision ID: 0013_audit_chains
Revises: 0009_api_keys
Create Date: 2026-11-27 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_audit_chains"
down_revision: str | None = "0012_operator_recovery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_audit_events_seq")
    op.execute("UPDATE audit_events SET chain = 0 WHERE seq IS NOT NULL")
    op.execute("UPDATE audit_chain SET id = 0 WHERE id = 1")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_chain_seq", ["chain", "seq"], unique=True)


def downgrade() -> None:
    bind = op.get_bind()
    others = bind.execute(sa.text("SELECT count(*) FROM audit_events WHERE chain > 0")).scalar()
    if others:
        raise RuntimeError(
            f"{others} audit events are in chains other than 0; one chain cannot hold them"
        )
    op.execute("DELETE FROM audit_chain WHERE id > 0")
    op.execute("UPDATE audit_chain SET id = 1 WHERE id = 0")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_chain_seq")
        batch_op.create_index("ix_audit_events_seq", ["seq"], unique=True)
        batch_op.drop_column("chain")
