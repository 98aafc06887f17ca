"""Client metadata by URI (issue 9): a ``private_key_jwt`` client's ``jwks_uri`` (OIDC
Registration §2, instead of an inline JWK Set) and a pairwise client's
``sector_identifier_uri`` (OIDC Core §8.1).

Revision ID: 0018_client_jwks_uri
Revises: 0017_email_change
Create Date: 2026-11-27 17:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_client_jwks_uri"
down_revision: str | None = "0017_email_change"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.add_column(sa.Column("jwks_uri", sa.String(length=2000)))
        batch.add_column(sa.Column("sector_identifier_uri", sa.String(length=2000)))


def downgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.drop_column("sector_identifier_uri")
        batch.drop_column("jwks_uri")
