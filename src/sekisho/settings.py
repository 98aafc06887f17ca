"""Typed settings, read from ``SEKISHO_*`` environment variables and an optional TOML file.

Invariant: production mode refuses development defaults (no secret key, a plain-http
public origin, the dev mailbox), and secrets never appear in ``repr`` or logs
(they are ``SecretStr``).
"""

from __future__ import annotations

import os
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_DATABASE_URL = "sqlite:///./var/sekisho.db"  # scripts/dev and the CLI alike
DEVELOPMENT_LIMITS = {
    "limit_sends_per_address": "60/hour",
    "limit_sends_per_ip": "600/hour",
    "limit_verify_per_ip": "600/hour",
}
DEVELOPMENT_SECRET = "development-only-secret-key-never-use-in-production"  # noqa: S105


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by ``SEKISHO_CONFIG`` (a flat TOML table of settings)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("SEKISHO_CONFIG")
        if not path:
            return {}
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
        section = data.get("sekisho", data)
        return dict(section)


class Settings(BaseSettings):
    """Every knob an operator can turn. Defaults are development defaults."""

    model_config = SettingsConfigDict(env_prefix="SEKISHO_", extra="forbid")

    mode: Literal["development", "production"] = "development"
    public_origin: str = "http://localhost:8000"
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    database_url: str = DEFAULT_DATABASE_URL
    auto_migrate: bool = True
    redis_url: str | None = None
    rate_limit_fallback: Literal["memory", "fail_closed"] = "memory"

    mail_backend: Literal["devmailbox", "smtp"] = "devmailbox"
    mail_from: str = "Sekisho <no-reply@localhost>"
    mail_worker: bool = True
    mail_poll_seconds: float = 0.5
    mail_retry_base_seconds: float = 5.0
    mail_retry_max_seconds: float = 900.0
    mail_max_attempts: int = 50
    backchannel_poll_seconds: float = Field(default=0.5, gt=0)
    backchannel_timeout_seconds: float = Field(default=5.0, gt=0)
    backchannel_retry_base_seconds: float = Field(default=5.0, gt=0)
    backchannel_retry_max_seconds: float = Field(default=900.0, gt=0)
    backchannel_max_attempts: int = Field(default=20, ge=1)
    oidc_client_fetch_allow_loopback: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10.0
    smtp_connections: int = Field(default=4, ge=1, le=32)

    self_signup: bool = False
    notify_unknown_address: bool = False
    email_link_ttl: timedelta = timedelta(minutes=10)
    email_code_attempts: int = Field(default=5, ge=1, le=10)
    email_resend_cooldown: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(0))
    account_failure_free_attempts: int = Field(default=5, ge=1)
    account_failure_cap: int = Field(default=100, ge=1, le=100)
    account_max_delay: timedelta = timedelta(minutes=15)
    account_lockout: timedelta = timedelta(hours=24)

    session_idle_timeout: timedelta = timedelta(days=30)
    session_absolute_timeout: timedelta = timedelta(days=30)
    session_aal2_idle_timeout: timedelta = timedelta(hours=1)
    session_aal2_absolute_timeout: timedelta = timedelta(hours=24)
    session_aal3_idle_timeout: timedelta = timedelta(minutes=15)
    session_aal3_absolute_timeout: timedelta = timedelta(hours=12)
    policy_file: Path | None = None

    limit_sends_per_address: str = "5/hour"
    limit_sends_per_ip: str = "30/hour"
    limit_sends_global: str = "1000/hour"
    limit_verify_per_ip: str = "60/hour"
    limit_verify_global: str = "600/minute"
    limit_ceremonies_per_ip: str = "600/hour"

    admin_emails: list[str] = Field(default_factory=list)
    migration_mode: Literal["hybrid", "phase_out", "passwordless"] = "hybrid"
    password_cutoff: datetime | None = None
    password_attempt_floor: timedelta = timedelta(seconds=1)

    webauthn_rp_id: str | None = None
    webauthn_rp_name: str = "Sekisho"
    webauthn_origins: list[str] = Field(default_factory=list)
    passkey_user_verification: Literal["required", "preferred"] = "required"
    passkey_attestation: Literal["none", "direct"] = "none"
    passkey_trust_roots: list[Path] = Field(default_factory=list)
    passkey_aaguid_allowlist: list[str] = Field(default_factory=list)
    passkey_sign_count_policy: Literal["reject", "audit"] = "reject"
    passkey_challenge_ttl: timedelta = timedelta(minutes=5)
    passkey_nudge: bool = True
    reauthentication_window: timedelta = timedelta(minutes=10)
    recovery_hold: timedelta = timedelta(hours=24)
    recovery_session_lifetime: timedelta = timedelta(minutes=15)
    recovery_codes_reauthentication_window: timedelta = timedelta(minutes=5)
    confirmation_request_lifetime: timedelta = timedelta(minutes=10)
    confirmation_lifetime: timedelta = timedelta(minutes=5)
    limit_recovery_per_address: str = "10/hour;20/day"
    limit_email_changes_per_account: str = "3/hour;10/day"
    # The token endpoint's rates (ruff takes "token" in the names for a secret's).
    limit_token_per_ip: str = "600/minute"  # noqa: S105
    limit_token_per_client: str = "3000/minute"  # noqa: S105
    operator_recovery_approval_window: timedelta = timedelta(hours=24)
    operator_recovery_code_lifetime: timedelta = timedelta(minutes=30)

    max_body_bytes: int = 64 * 1024
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    #: How long ``sekisho serve`` keeps an idle connection open. uvicorn's own 5 s is
    #: shorter than most clients' pools keep one (httpx, Node's agent, proxies), so a
    #: client would send its next request on a connection the server was closing and
    #: read no answer; 75 s is nginx's default, and a reverse proxy closes first.
    keep_alive_seconds: int = Field(default=75, gt=0)
    #: With ``serve --workers N``, how long uvicorn's supervisor waits for a worker to
    #: answer its health check before it kills and replaces it. A worker answers only
    #: once it has imported Sekisho and built its app; uvicorn's 5 s default was shorter
    #: than that on a busy host, where every worker was killed while starting, forever.
    worker_healthcheck_seconds: int = Field(default=30, gt=0)
    #: No peer is a proxy until the operator names one: a default of ``127.0.0.1``
    #: let any process on the host (nginx or not) choose its own address by writing
    #: ``X-Forwarded-For``, and so pass every per-IP limit (SECURITY.md cases 14, 42).
    forwarded_allow_ips: str = ""
    accept_request_id: bool = False
    log_format: Literal["text", "json"] = "text"
    metrics_token: SecretStr | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    tracing: Literal["off", "otlp"] = "off"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))

    @field_validator("public_origin")
    @classmethod
    def _origin_is_bare(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("public_origin must be an http(s) origin such as https://id.example")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("public_origin must be an origin: scheme, host and port only")
        default_port = {"http": 80, "https": 443}[parts.scheme]
        port = f":{parts.port}" if parts.port and parts.port != default_port else ""
        host = parts.hostname.encode("idna").decode("ascii")
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}{port}"

    @field_validator(
        "email_link_ttl",
        "session_idle_timeout",
        "session_absolute_timeout",
        "session_aal2_idle_timeout",
        "session_aal2_absolute_timeout",
        "session_aal3_idle_timeout",
        "session_aal3_absolute_timeout",
        "account_max_delay",
        "account_lockout",
        "passkey_challenge_ttl",
        "reauthentication_window",
        "password_attempt_floor",
        "recovery_hold",
        "recovery_session_lifetime",
        "recovery_codes_reauthentication_window",
        "confirmation_request_lifetime",
        "confirmation_lifetime",
        "operator_recovery_approval_window",
        "operator_recovery_code_lifetime",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("metrics_token must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _session_limits_within_nist(self) -> Settings:
        """NIST SP 800-63B-4: AAL1 reauthentication at most every 30 days; AAL2 at most
        1 hour idle and 24 hours overall; AAL3 at most 15 minutes idle and 12 hours
        overall (§2.1.3, §2.2.3, §2.3.3)."""
        if self.session_absolute_timeout > timedelta(days=30):
            raise ValueError("session_absolute_timeout may be at most 30 days (AAL1)")
        if self.session_aal2_idle_timeout > timedelta(hours=1):
            raise ValueError("session_aal2_idle_timeout may be at most 1 hour")
        if self.session_aal2_absolute_timeout > timedelta(hours=24):
            raise ValueError("session_aal2_absolute_timeout may be at most 24 hours")
        if self.session_aal3_idle_timeout > timedelta(minutes=15):
            raise ValueError("session_aal3_idle_timeout may be at most 15 minutes")
        if self.session_aal3_absolute_timeout > timedelta(hours=12):
            raise ValueError("session_aal3_absolute_timeout may be at most 12 hours")
        return self

    @field_validator("email_link_ttl")
    @classmethod
    def _link_ttl_at_most_ten_minutes(cls, value: timedelta) -> timedelta:
        if value > timedelta(minutes=10):
            raise ValueError("email_link_ttl may be at most 10 minutes (NIST SP 800-63B-4)")
        return value

    @field_validator(
        "limit_sends_per_address",
        "limit_sends_per_ip",
        "limit_sends_global",
        "limit_verify_per_ip",
        "limit_verify_global",
        "limit_ceremonies_per_ip",
        "limit_recovery_per_address",
        "limit_email_changes_per_account",
        "limit_token_per_ip",
        "limit_token_per_client",
    )
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        try:
            if any(item.amount < 1 for item in parse_many(value)):
                raise ValueError(value)
        except ValueError as error:
            raise ValueError(
                f"not a rate limit such as '5/hour' or '5/hour;20/day': {value}"
            ) from error
        return value

    @model_validator(mode="after")
    def _development_limits(self) -> Settings:
        """Development mode raises the per-address and per-IP limits that trying things
        out reaches within half an hour (``DEVELOPMENT_LIMITS``). A value set explicitly
        is kept; production keeps the defaults above."""
        if self.development:
            for name, value in DEVELOPMENT_LIMITS.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

    @model_validator(mode="after")
    def _production_refuses_development_defaults(self) -> Settings:
        if self.mode != "production":
            return self
        problems = []
        if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET:
            problems.append("SEKISHO_SECRET_KEY is not set")
        elif len(self.secret_key.get_secret_value()) < 32:
            problems.append("SEKISHO_SECRET_KEY must be at least 32 characters")
        if not self.public_origin.startswith("https://"):
            problems.append("SEKISHO_PUBLIC_ORIGIN must be https")
        if self.mail_backend == "devmailbox":
            problems.append("SEKISHO_MAIL_BACKEND=devmailbox is for development only")
        if self.oidc_client_fetch_allow_loopback:
            problems.append("SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK is for development only")
        if problems:
            raise ValueError("production mode refuses: " + "; ".join(problems))
        return self

    @field_validator("password_cutoff")
    @classmethod
    def _cutoff_is_utc(cls, value: datetime | None) -> datetime | None:
        """A cut-off without a zone ('2027-03-31') is read as UTC."""
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)

    @field_validator("passkey_aaguid_allowlist")
    @classmethod
    def _aaguids(cls, values: list[str]) -> list[str]:
        try:
            return [str(uuid.UUID(value)) for value in values]
        except ValueError as error:
            raise ValueError(
                "passkey_aaguid_allowlist holds AAGUIDs like 'cb69481e-8ff7-4039-93ec-0a2729a154a8'"
            ) from error

    @model_validator(mode="after")
    def _attestation_needs_roots(self) -> Settings:
        if self.passkey_attestation == "direct" and not (
            self.passkey_trust_roots and self.passkey_aaguid_allowlist
        ):
            raise ValueError(
                "passkey_attestation=direct needs passkey_trust_roots and passkey_aaguid_allowlist"
            )
        return self

    @property
    def rp_id(self) -> str:
        """The WebAuthn relying-party ID: set, or the public origin's host."""
        return self.webauthn_rp_id or str(urlsplit(self.public_origin).hostname)

    @property
    def allowed_origins(self) -> list[str]:
        """Origins accepted in clientDataJSON, exactly (WebAuthn L3 §7.1 step 9)."""
        return self.webauthn_origins or [self.public_origin]

    @property
    def development(self) -> bool:
        return self.mode == "development"

    @property
    def secure_cookies(self) -> bool:
        """``__Host-`` cookies need Secure, which needs https (plain-http localhost aside)."""
        return self.public_origin.startswith("https://")
