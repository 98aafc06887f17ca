"""Self-signup (``self_signup``) into a tier that forbids email sign-in, over real HTTP
on SQLite and PostgreSQL: a newcomer still joins (the email proves the address), but
only into a session that may enrol a passkey; once the account holds one, email never
signs it in again; and ``sekisho policy check`` says so."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerFactory
from tests.integration.test_tiers import email_code, email_refused
from tests.support.authenticator import SoftAuthenticator
from tests.support.cli import run_sekisho
from tests.support.passkeys import register, sign_in
from tests.support.smtp import SmtpCapture

PASSKEYS_ONLY = """\
default_tier = "members"

[tiers.members]
description = "Passkeys only; email neither signs in nor recovers."
methods = ["passkey"]
signin_aal = 2
email_recovery = false
"""


def test_a_newcomer_joins_a_passkey_only_tier_by_enrolling_a_passkey(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(PASSKEYS_ONLY, encoding="utf-8")
    server = make_server(policy_file=policy_file, self_signup=True)
    email = "new@example.com"
    key = SoftAuthenticator()
    with server.client() as joining:
        joined = email_code(smtp, joining, email)
        assert joined.status_code == 200, joined.text
        assert (joined.json()["restriction"], joined.json()["aal"]) == ("enrol_passkey", 1)
        refused = joining.get("/api/v1/sessions")
        assert (refused.status_code, refused.json()["error"]) == (403, "restricted_session")
    with server.client() as again:
        retried = email_code(smtp, again, email)
        assert retried.json()["restriction"] == "enrol_passkey", "no passkey yet: still enrol"
        assert register(server, again, key).status_code == 201
        full = sign_in(server, again, key, email=email)
        assert (full.status_code, full.json()["restriction"], full.json()["aal"]) == (200, None, 2)
    with server.client() as later:
        email_refused(smtp, later, email)
    assert len(server.audited("account.created")) == 1
    assert len(server.audited("signin.restricted")) == 2


def test_policy_check_explains_self_signup_into_a_tier_without_email(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(PASSKEYS_ONLY, encoding="utf-8")
    done = run_sekisho(
        f"sqlite:///{tmp_path}/unused.db",
        "policy",
        "check",
        str(policy_file),
        SEKISHO_SELF_SIGNUP="true",
    )
    assert done.returncode == 0, done.stderr
    assert (
        "self_signup is on and newcomers land in tier members, which does not let email "
        "sign in: a newcomer's email proves the address and leads to a session that can "
        "only enrol a passkey; once the account holds one, email never signs it in again."
    ) in done.stdout
