"""Editing the policy file and restarting keeps the weakest link (SECURITY.md case 50):
the first process to start with the edited policy ends the sessions the account's tier
no longer admits, once across every instance (``TierService.apply_policy``)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.integration.test_tiers import POLICY, email_code
from tests.support.authenticator import SoftAuthenticator
from tests.support.passkeys import register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

STRICTER = POLICY.replace(
    'methods = ["passkey", "email", "password"]',
    'methods = ["passkey"]\nsignin_aal = 2\nemail_recovery = true',
)
LOWER_THRESHOLD = POLICY.replace("assets_jpy >= 10_000_000", "assets_jpy >= 1_000_000")


def _alive(server: LiveServer, earlier: httpx.Client) -> bool:
    """Whether ``earlier``'s session cookie is still accepted by ``server``."""
    with server.client(cookies=earlier.cookies) as client:
        return client.get("/api/v1/session").status_code == 200


def _signed_in_both_ways(
    make_server: ServerFactory,
    smtp: SmtpCapture,
    tmp_path: Path,
    by_email: httpx.Client,
    by_passkey: httpx.Client,
) -> tuple[Path, LiveServer]:
    """A server on test_tiers' policy where one account signed ``by_email`` in by email
    and ``by_passkey`` in by the passkey it then added; the policy file and the server."""
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY, encoding="utf-8")
    server = make_server(policy_file=policy_file)
    by_email.base_url = by_passkey.base_url = httpx.URL(server.url)
    server.add_user("mio@example.com")
    authenticator = SoftAuthenticator()
    assert email_code(smtp, by_email, "mio@example.com").status_code == 200
    assert register(server, by_email, authenticator).status_code == 201
    assert sign_in(server, by_passkey, authenticator).status_code == 200
    return policy_file, server


def test_an_edit_that_forbids_email_ends_the_email_sessions_once(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """standard stops admitting email (passkeys at AAL2 only): after the restart the
    email session is dead and the passkey session lives; a second restart with the same
    policy ends nothing more and audits no second application."""
    with httpx.Client(timeout=30) as by_email, httpx.Client(timeout=30) as by_passkey:
        policy_file, first = _signed_in_both_ways(make_server, smtp, tmp_path, by_email, by_passkey)
        first.stop()
        policy_file.write_text(STRICTER, encoding="utf-8")
        edited = make_server(policy_file=policy_file)
        assert not _alive(edited, by_email)
        assert _alive(edited, by_passkey)
        again = make_server(policy_file=policy_file)
        assert _alive(again, by_passkey)
    ended = again.audited("session.ended_by_tier")
    assert ended == [{"tier": "standard", "cause": "policy_changed"}]
    applied = again.audited("policy.applied")
    assert [entry["sessions_ended"] for entry in applied] == [0, 1]


def test_an_edited_rule_that_moves_an_account_ends_what_its_new_tier_refuses(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """The rule's threshold drops below the account's assets: the account is now
    high_value by the rule, and its email session ends at the restart."""
    with httpx.Client(timeout=30) as by_email, httpx.Client(timeout=30) as by_passkey:
        policy_file, first = _signed_in_both_ways(make_server, smtp, tmp_path, by_email, by_passkey)
        database = first.database
        try:
            with database.transaction() as repos:
                user = repos.users.by_email("mio@example.com")
                assert user is not None
                repos.users.set_attributes(user.id, {"assets_jpy": 5_000_000})
        finally:
            database.dispose()
        first.stop()
        policy_file.write_text(LOWER_THRESHOLD, encoding="utf-8")
        edited = make_server(policy_file=policy_file)
        assert not _alive(edited, by_email)
        assert _alive(edited, by_passkey)
    assert edited.audited("session.ended_by_tier") == [
        {"tier": "high_value", "cause": "policy_changed"}
    ]


def test_instances_starting_together_apply_an_edit_exactly_once(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """Three processes start at once with the edited policy: every one of them starts,
    one claims the policy, and the email session is ended by exactly one event."""
    with httpx.Client(timeout=30) as by_email, httpx.Client(timeout=30) as by_passkey:
        policy_file, first = _signed_in_both_ways(make_server, smtp, tmp_path, by_email, by_passkey)
        first.stop()
        policy_file.write_text(STRICTER, encoding="utf-8")
        started: list[LiveServer] = []
        failures: list[BaseException] = []

        def start() -> None:
            try:
                started.append(make_server(policy_file=policy_file))
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=start) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, failures
        assert len(started) == 3
        for server in started:
            assert not _alive(server, by_email)
            assert _alive(server, by_passkey)
    assert len(started[0].audited("session.ended_by_tier")) == 1
    assert [entry["sessions_ended"] for entry in started[0].audited("policy.applied")] == [0, 1]
