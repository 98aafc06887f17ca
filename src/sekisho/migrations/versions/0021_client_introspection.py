"""Which clients' access tokens a client (a resource server) may introspect (issue 9,
RFC 7662 §2.2 and §4): a JSON array of client ids, empty for every existing client, so
that each learns only about its own tokens from now on.

Revision ID: 0021_client_introspection
Revises: 0020_policy_fingerprint
Create Date: 2026-11-27 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_client_introspection"
down_revision: str | None = "0020_policy_fingerprint"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.add_column(sa.Column("introspects", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.drop_column("introspects")
