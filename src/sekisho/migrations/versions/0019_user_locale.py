"""The language of an account's last sign-in, so that notices of changes an operator
makes (a tier set, an operator-assisted recovery) reach the holder in their language.

Revision ID: 0019_user_locale
Revises: 0018_client_jwks_uri
Create Date: 2026-11-27 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_user_locale"
down_revision: str | None = "0018_client_jwks_uri"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locale")
