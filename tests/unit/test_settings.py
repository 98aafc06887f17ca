from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sekisho.settings import Settings


def test_development_defaults_work() -> None:
    settings = Settings()
    assert settings.development
    assert not settings.secure_cookies


def test_production_refuses_development_defaults() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(mode="production")
    message = str(error.value)
    assert "SEKISHO_SECRET_KEY" in message
    assert "https" in message
    assert "devmailbox" in message


def test_production_accepts_a_real_configuration() -> None:
    settings = Settings(
        mode="production",
        secret_key="x" * 48,
        public_origin="https://id.example.com/",
        mail_backend="smtp",
    )
    assert settings.public_origin == "https://id.example.com"
    assert settings.secure_cookies
    assert "x" * 48 not in repr(settings)
    assert not settings.oidc_client_fetch_allow_loopback


def test_production_refuses_fetching_client_documents_from_loopback() -> None:
    with pytest.raises(ValidationError) as error:
        Settings(
            mode="production",
            secret_key="x" * 48,
            public_origin="https://id.example.com",
            mail_backend="smtp",
            oidc_client_fetch_allow_loopback=True,
        )
    assert "SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK is for development only" in str(error.value)


@pytest.mark.parametrize(
    "origin", ["id.example.com", "https://id.example.com/path", "ftp://x", "https://u@x.com"]
)
def test_public_origin_must_be_an_origin(origin: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_origin=origin)


def test_toml_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sekisho.toml"
    config.write_text(
        '[sekisho]\nself_signup = true\nemail_link_ttl = "PT5M"\nmail_from = "A <a@x.com>"\n'
    )
    monkeypatch.setenv("SEKISHO_CONFIG", str(config))
    monkeypatch.setenv("SEKISHO_MAIL_FROM", "B <b@x.com>")
    settings = Settings()
    assert settings.self_signup
    assert settings.email_link_ttl.total_seconds() == 300
    assert settings.mail_from == "B <b@x.com>"


def test_unknown_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        Settings(not_a_setting=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("origin", "normalised"),
    [
        ("https://ID.Example.com:443", "https://id.example.com"),
        ("http://localhost:80/", "http://localhost"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_public_origin_is_normalised(origin: str, normalised: str) -> None:
    assert Settings(public_origin=origin).public_origin == normalised


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("email_link_ttl", "PT11M"),
        ("email_link_ttl", "-PT1M"),
        ("session_idle_timeout", "PT0S"),
        ("limit_sends_per_ip", "lots"),
    ],
)
def test_out_of_bounds_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})


def test_several_windows_are_accepted() -> None:
    assert Settings(limit_sends_per_address="2/minute;5/hour").limit_sends_per_address


def test_zero_rate_limits_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(limit_sends_per_ip="0/hour")


def test_internationalised_origin_becomes_ascii() -> None:
    assert (
        Settings(public_origin="https://認証.example").public_origin == "https://xn--p12a5f.example"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("session_aal2_idle_timeout", "PT2H"),
        ("session_aal2_absolute_timeout", "P2D"),
        ("session_absolute_timeout", "P31D"),
    ],
)
def test_session_limits_stay_within_nist(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})


def test_a_cutoff_without_a_zone_is_utc() -> None:
    cutoff = Settings(password_cutoff="2027-03-31T00:00:00").password_cutoff
    assert cutoff is not None
    assert cutoff.utcoffset() is not None
    assert cutoff.isoformat() == "2027-03-31T00:00:00+00:00"


def test_development_raises_the_limits_trying_things_out_reaches() -> None:
    development = Settings()
    assert development.limit_sends_per_ip == "600/hour"
    assert development.limit_sends_per_address == "60/hour"
    assert development.limit_verify_per_ip == "600/hour"
    production = Settings(
        mode="production",
        secret_key="x" * 48,
        public_origin="https://id.example.com",
        mail_backend="smtp",
    )
    assert production.limit_sends_per_ip == "30/hour"
    assert production.limit_sends_per_address == "5/hour"
    assert production.limit_verify_per_ip == "60/hour"


def test_development_keeps_limits_set_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEKISHO_LIMIT_SENDS_PER_IP", "30/hour")
    settings = Settings(limit_verify_per_ip="10/hour")
    assert settings.limit_sends_per_ip == "30/hour"
    assert settings.limit_verify_per_ip == "10/hour"
    assert settings.limit_sends_per_address == "60/hour"


def test_the_cli_and_scripts_dev_share_one_database() -> None:
    assert Settings().database_url == "sqlite:///./var/sekisho.db"
    script = (Path(__file__).resolve().parents[2] / "scripts" / "dev").read_text()
    assert "SEKISHO_DATABASE_URL" not in script


def test_metrics_are_off_by_default_and_need_a_long_token() -> None:
    settings = Settings()
    assert settings.metrics_token is None
    assert settings.metrics_port is None
    with pytest.raises(ValidationError) as error:
        Settings(metrics_token="short")
    assert "metrics_token must be at least 32 characters" in str(error.value)
    assert "t" * 32 not in repr(Settings(metrics_token="t" * 32))
