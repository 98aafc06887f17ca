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
