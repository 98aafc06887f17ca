"""Table definitions: the single source the Alembic migrations mirror."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _when(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("display_name", String(200)),
    _when("created_at"),
    _when("email_verified_at", nullable=True),
    _when("last_sign_in_at", nullable=True),
    Column("webauthn_handle", String(88), unique=True),
    Column("attributes", Text, nullable=False, server_default="{}"),
    Column("migration_mode", String(16)),
    _when("imported_at", nullable=True),
    _when("password_retired_at", nullable=True),
    Column("tier", String(32)),
    Column("locale", String(16)),
)

passwords = Table(
    "passwords",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("hash", String(1024), nullable=False),
    Column("scheme", String(32), nullable=False),
    _when("created_at"),
    _when("updated_at"),
)

passkeys = Table(
    "passkeys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("credential_id", String(1400), nullable=False, unique=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("transports", String(200), nullable=False),
    Column("aaguid", String(36), nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("backup_state", Boolean, nullable=False),
    Column("user_verified", Boolean, nullable=False),
    Column("attestation_format", String(32), nullable=False),
    Column("name", String(100), nullable=False),
    _when("created_at"),
    _when("last_used_at", nullable=True),
    Column("attestation_trusted", Boolean, nullable=False, server_default=false()),
    Index("ix_passkeys_user", "user_id"),
)

flows = Table(
    "flows",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("email", String(254), nullable=False),
    Column("binding_digest", String(64), nullable=False),
    Column("approval_number", Integer, nullable=False),
    Column("requested_ip", String(64), nullable=False),
    Column("requested_user_agent", String(512), nullable=False),
    Column("locale", String(8), nullable=False),
    _when("created_at"),
    _when("expires_at"),
    _when("finished_at", nullable=True),
    Index("ix_flows_email_state", "email", "state"),
)

onetime_secrets = Table(
    "onetime_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow_id", String(32), ForeignKey("flows.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    _when("expires_at"),
    _when("spent_at", nullable=True),
    Column("spent_reason", String(16)),
    Index("ix_onetime_secrets_digest", "digest", unique=True),
    Index("ix_onetime_secrets_flow", "flow_id", "kind"),
)

failure_counters = Table(
    "failure_counters",
    metadata,
    Column("subject", String(254), primary_key=True),
    Column("method", String(32), primary_key=True),
    Column("consecutive", Integer, nullable=False),
    _when("last_failure_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_digest", String(64), nullable=False, unique=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _when("created_at"),
    _when("last_seen_at"),
    _when("auth_time"),
    _when("expires_at"),
    Column("ip", String(64), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("amr", String(200), nullable=False),
    Column("aal", Integer, nullable=False),
    _when("revoked_at", nullable=True),
    Column("revoked_reason", String(32)),
    Column("restriction", String(32)),
    Column("idle_seconds", Integer),
    Index("ix_sessions_user", "user_id", "revoked_at"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(64), nullable=False),
    _when("created_at"),
    _when("used_at", nullable=True),
    Index("ix_recovery_codes_digest", "digest", unique=True),
    Index("ix_recovery_codes_user", "user_id"),
)

account_recoveries = Table(
    "account_recoveries",
    metadata,
    Column("session_id", String(32), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _when("started_at"),
    _when("completed_at", nullable=True),
    _when("hold_until", nullable=True),
    Column("passkey_id", String(32)),
    Index("ix_account_recoveries_user", "user_id", "hold_until"),
)

operator_recoveries = Table(
    "operator_recoveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("opened_by", String(120), nullable=False),
    _when("opened_at"),
    _when("expires_at"),
    Column("approved_by", String(120)),
    _when("approved_at", nullable=True),
    Column("code_digest", String(64)),
    _when("used_at", nullable=True),
    Column("session_id", String(32)),
    Column("cancelled_by", String(120)),
    _when("cancelled_at", nullable=True),
    Index("ix_operator_recoveries_user", "user_id", "expires_at"),
    Index("ix_operator_recoveries_code", "code_digest", unique=True),
)

known_devices = Table(
    "known_devices",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _when("first_seen_at"),
    _when("last_seen_at"),
    Index("ix_known_devices_user", "user_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _when("at"),
    Column("event", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("user_id", String(64)),
    Column("email", String(254)),
    Column("session_id", String(32)),
    Column("flow_id", String(32)),
    Column("ip", String(64)),
    Column("user_agent", String(512)),
    Column("amr", String(200), nullable=False),
    Column("aal", Integer),
    Column("detail", Text, nullable=False),
    Column("request_id", String(64)),
    Column("chain", Integer),
    Column("seq", BigInteger),
    Column("key_id", String(16)),
    Column("hash", String(64)),
    Index("ix_audit_events_user", "user_id", "id"),
    Index("ix_audit_events_email", "email", "id"),
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_chain_seq", "chain", "seq", unique=True),
)

audit_chain = Table(
    "audit_chain",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("sealed_payload", Text),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    _when("created_at"),
    _when("next_attempt_at"),
    _when("locked_until", nullable=True),
    _when("finished_at", nullable=True),
    Column("last_error", String(500)),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

dev_mailbox = Table(
    "dev_mailbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _when("received_at"),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("raw", Text, nullable=False),
)

deployment_key = Table(
    "deployment_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
    _when("recorded_at"),
)

policy_fingerprint = Table(
    "policy_fingerprint",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
    _when("applied_at"),
)

# -- OpenID Connect provider (sekisho.oidc; revision 0006_oidc) ----------------------------

oidc_signing_keys = Table(
    "oidc_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("sealed_private_jwk", Text, nullable=False),
    _when("created_at"),
    _when("signs_from"),
    _when("retired_at", nullable=True),
    _when("published_until", nullable=True),
)

oidc_clients = Table(
    "oidc_clients",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_digest", String(64)),
    Column("auth_method", String(32), nullable=False),
    Column("application_type", String(16), nullable=False),
    Column("redirect_uris", Text, nullable=False),
    Column("post_logout_redirect_uris", Text, nullable=False),
    Column("first_party", Boolean, nullable=False),
    Column("scopes", String(500), nullable=False),
    Column("id_token_lifetime", Integer, nullable=False),
    Column("access_token_lifetime", Integer, nullable=False),
    _when("created_at"),
    _when("secret_rotated_at", nullable=True),
    # revision 0014_par: RFC 9126 §6, RFC 7523 (inline JWKS), OIDC Registration §2
    Column("require_par", Boolean, nullable=False, server_default=false()),
    Column("jwks", Text),
    Column("id_token_signed_response_alg", String(16), nullable=False, server_default="ES256"),
    Column("backchannel_logout_uri", String(2000)),
    Column("backchannel_logout_session_required", Boolean, nullable=False, server_default=false()),
    Column("subject_type", String(16), nullable=False, server_default="public"),
    # revision 0018_client_jwks_uri: OIDC Registration §2, OIDC Core §8.1
    Column("jwks_uri", String(2000)),
    Column("sector_identifier_uri", String(2000)),
    # revision 0021_client_introspection: RFC 7662 §2.2, a JSON array of client ids
    Column("introspects", Text, nullable=False, server_default="[]"),
)

oidc_pending_requests = Table(
    "oidc_pending_requests",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column(
        "client_id", String(64), ForeignKey("oidc_clients.id", ondelete="CASCADE"), nullable=False
    ),
    Column("parameters", Text, nullable=False),
    _when("created_at"),
    _when("expires_at"),
    _when("finished_at", nullable=True),
)

oidc_grants = Table(
    "oidc_grants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "client_id", String(64), ForeignKey("oidc_clients.id", ondelete="CASCADE"), nullable=False
    ),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("scope", String(500), nullable=False),
    Column("nonce", String(512)),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("amr", String(200), nullable=False),
    Column("acr", String(64), nullable=False),
    _when("created_at"),
    _when("revoked_at", nullable=True),
    Column("revoked_reason", String(32)),
    # RFC 9396 (revision 0016_rar): the confirmed transaction the grant carries.
    Column("confirmation_id", String(64)),
    Index("ix_oidc_grants_session", "session_id"),
)

oidc_codes = Table(
    "oidc_codes",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column(
        "grant_id", String(32), ForeignKey("oidc_grants.id", ondelete="CASCADE"), nullable=False
    ),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", String(2000), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    _when("expires_at"),
    _when("redeemed_at", nullable=True),
)

oidc_access_tokens = Table(
    "oidc_access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column(
        "grant_id", String(32), ForeignKey("oidc_grants.id", ondelete="CASCADE"), nullable=False
    ),
    _when("expires_at"),
    _when("revoked_at", nullable=True),
    Index("ix_oidc_access_tokens_grant", "grant_id"),
)

# Refresh tokens (revision 0010_refresh_tokens): one family per grant, each token a keyed
# hash spent once (``used_at``); a spent token presented again revokes its grant.
oidc_refresh_tokens = Table(
    "oidc_refresh_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column(
        "grant_id", String(32), ForeignKey("oidc_grants.id", ondelete="CASCADE"), nullable=False
    ),
    Column("client_id", String(64), nullable=False),
    _when("created_at"),
    _when("expires_at"),
    _when("used_at", nullable=True),
    Index("ix_oidc_refresh_tokens_grant", "grant_id"),
)

oidc_consents = Table(
    "oidc_consents",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "client_id", String(64), ForeignKey("oidc_clients.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("scopes", String(500), nullable=False),
    _when("granted_at"),
)

# -- Pushed authorization requests and client assertions (revision 0014_par) -------------

oidc_pushed_requests = Table(
    "oidc_pushed_requests",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column(
        "client_id", String(64), ForeignKey("oidc_clients.id", ondelete="CASCADE"), nullable=False
    ),
    Column("parameters", Text, nullable=False),
    _when("created_at"),
    _when("expires_at"),
    _when("used_at", nullable=True),
)

oidc_client_assertions = Table(
    "oidc_client_assertions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    _when("expires_at"),
)

# -- Back-channel logout deliveries (revision 0015_logout) ---------------------------

oidc_logout_deliveries = Table(
    "oidc_logout_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("jti", String(64), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    _when("created_at"),
    _when("next_attempt_at"),
    _when("locked_until", nullable=True),
    _when("finished_at", nullable=True),
    Column("last_error", String(500)),
    Index("ix_oidc_logout_deliveries_due", "status", "next_attempt_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    _when("created_at"),
    _when("last_used_at", nullable=True),
    _when("revoked_at", nullable=True),
    Column("operator", String(254), nullable=True),
)

transaction_confirmations = Table(
    "transaction_confirmations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "client_id", String(64), ForeignKey("oidc_clients.id", ondelete="CASCADE"), nullable=False
    ),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("details", Text, nullable=False),
    Column("details_hash", String(64), nullable=False),
    Column("return_uri", Text),
    _when("created_at"),
    _when("expires_at"),
    _when("confirmed_at", nullable=True),
    Column("passkey_id", String(64)),
    Column("acr", String(32)),
    Column("amr", String(100)),
    Column("token", Text),
    _when("redeemed_at", nullable=True),
    Index("ix_transaction_confirmations_expires", "expires_at"),
)

email_changes = Table(
    "email_changes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(32), nullable=False),
    Column("new_email", String(254), nullable=False),
    Column("token_digest", String(64), nullable=False, unique=True),
    Column("code_digest", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("locale", String(16), nullable=False),
    _when("created_at"),
    _when("expires_at"),
    _when("used_at", nullable=True),
    Index("ix_email_changes_user", "user_id"),
    Index("ix_email_changes_expires", "expires_at"),
)
