"""Tier changes are notified to the account's address (issue 10 "Tiers": every change
audited and notified), whether an operator set the tier (CLI, admin API) or a rule
derived it from an attribute; a refused change sends nothing. On SQLite and PostgreSQL,
read from the SMTP capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from tests.conftest import ServerFactory
from tests.integration.admin.support import audit_events, bearer, create_key
from tests.integration.test_tiers import POLICY, sekisho, with_passkey
from tests.support.recovery import subjects, wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of


def subject(locale: str = "en") -> str:
    return gettext(locale, NOTICES["tier_changed"][0])


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def tiered(make_server: ServerFactory, policy_file: Path) -> LiveServer:
    return make_server(policy_file=policy_file)


def test_an_operator_tier_change_is_notified_in_the_holders_language(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    """The holder signed in in Japanese; the operator's command names no language (its
    default is English): the notice is in Japanese."""
    with_passkey(tiered, smtp, "hana@example.com", language="ja")
    status, _out, err = sekisho(
        tiered, policy_file, "users", "set-tier", "hana@example.com", "high_value"
    )
    assert status == 0, err
    notice = wait_for_subject(smtp, "hana@example.com", subject("ja"))
    body = text_of(notice)
    assert "アカウントの階層が「standard」から「high_value」に変わりました" in body
    assert "管理者" in body  # made by an operator, not from a browser of the holder
    assert "IP" not in body
    assert f"{tiered.url}/account" in body
    events = [event for event, *_ in audit_events(tiered, "account.tier")]
    assert events == ["account.tier_set", "account.tier_changed"]


def test_the_holders_language_wins_over_the_operators_and_stands_in_without_a_sign_in(
    tiered: LiveServer, smtp: SmtpCapture
) -> None:
    """``locale`` of the admin API (and ``--locale``) is only for an account that has
    never signed in; one that has gets the language of its last sign-in."""
    with_passkey(tiered, smtp, "eri@example.com", language="en")
    tiered.add_user("yuki@example.com")  # never signed in
    _key_id, key = create_key(tiered, "users:read", "users:write")
    with tiered.client(headers=bearer(key)) as client:
        for address in ("eri@example.com", "yuki@example.com"):
            moved = client.post(
                "/api/v1/admin/users/tier",
                json={"email": address, "tier": "moving", "locale": "ja"},
            )
            assert moved.status_code == 200, moved.text
    english = wait_for_subject(smtp, "eri@example.com", subject("en"))
    assert "An operator of this service made this change" in text_of(english)
    japanese = wait_for_subject(smtp, "yuki@example.com", subject("ja"))
    assert "管理者" in text_of(japanese)
    assert subject("ja") not in subjects(smtp, "eri@example.com")


def test_a_rule_moving_the_account_is_notified_and_staying_put_is_not(
    tiered: LiveServer, smtp: SmtpCapture
) -> None:
    with_passkey(tiered, smtp, "ren@example.com")
    _key_id, key = create_key(tiered, "users:read", "users:write")
    with tiered.client(headers=bearer(key)) as client:
        small = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "ren@example.com", "name": "assets_jpy", "value": 5_000_000},
        )
        assert small.status_code == 200, small.text
        assert small.json()["after"] == "standard"
        moved = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "ren@example.com", "name": "assets_jpy", "value": 20_000_000},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["after"] == "high_value"
    notice = wait_for_subject(smtp, "ren@example.com", subject())
    assert "from the “standard” tier to the “high_value” tier" in text_of(notice)
    assert "An operator of this service made this change" in text_of(notice)
    assert subjects(smtp, "ren@example.com").count(subject()) == 1
    changed = [
        d for e, _o, _ip, d in audit_events(tiered, "account.") if e == "account.tier_changed"
    ]
    assert changed == [{"from": "standard", "to": "high_value", "notified": "email"}]


def test_a_refused_change_sends_no_notice(tiered: LiveServer, smtp: SmtpCapture) -> None:
    tiered.add_user("kai@example.com")  # no passkey: high_value would lock it out
    _key_id, key = create_key(tiered, "users:read", "users:write")
    with tiered.client(headers=bearer(key)) as client:
        refused = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "kai@example.com", "name": "assets_jpy", "value": 20_000_000},
        )
        assert refused.status_code == 409
        assert refused.json()["error"] == "tier_refused"
        assert "stays in tier standard" in refused.json()["explanation"]
        marker = client.post(
            "/api/v1/admin/users/tier",
            json={"email": "kai@example.com", "tier": "moving", "locale": "en"},
        )
        assert marker.status_code == 200, marker.text
    wait_for_subject(smtp, "kai@example.com", subject())
    assert subjects(smtp, "kai@example.com") == [subject()]
    attributes = [e for e, *_ in audit_events(tiered, "account.attribute")]
    assert attributes == []
