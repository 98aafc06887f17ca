"""Rich Authorization Requests (RFC 9396, issue 10, SECURITY.md case 52): a grant names
the transaction confirmation whose details its code, token response and access token
carry.

Revision ID: 0016_rar
Revises: 0011_confirmations
Create Date: 2026-11-27 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_rar"
down_revision: str | None = "0015_logout"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmation_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oidc_grants", schema=None) as batch_op:
        batch_op.drop_column("confirmation_id")
