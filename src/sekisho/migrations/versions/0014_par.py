"""Pushed authorization requests (RFC 9126), ``private_key_jwt`` client authentication
(RFC 7523) and per-client ID token algorithms: three client settings, the pushed
requests (a keyed hash of each ``request_uri``) and the spent assertion ids.

Revision ID: 0014_par
Revises: 0009_api_keys
Create Date: 2026-11-27 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_par"
down_revision: str | None = "0013_audit_chains"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("require_par", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("jwks", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "id_token_signed_response_alg",
                sa.String(length=16),
                nullable=False,
                server_default="ES256",
            )
        )
    op.create_table(
        "oidc_pushed_requests",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oidc_clients.id"],
            name=op.f("fk_oidc_pushed_requests_client_id_oidc_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_oidc_pushed_requests")),
    )
    op.create_table(
        "oidc_client_assertions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_oidc_client_assertions")),
    )


def downgrade() -> None:
    op.drop_table("oidc_client_assertions")
    op.drop_table("oidc_pushed_requests")
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.drop_column("id_token_signed_response_alg")
        batch_op.drop_column("jwks")
        batch_op.drop_column("require_par")
