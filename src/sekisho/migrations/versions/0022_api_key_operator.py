"""The operator an API key belongs to (issue 10 "Operators"), so that the two-person
rule of operator-assisted recovery compares people, not keys: a key that acts on
recovery cases names an address in ``admin_emails``; keys made before have none and
cannot act on recovery cases until replaced.

Revision ID: 0022_api_key_operator
Revises: 0021_client_introspection
Create Date: 2026-11-27 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_api_key_operator"
down_revision: str | None = "0021_client_introspection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("operator", sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("operator")
