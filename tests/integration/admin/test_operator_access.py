"""Who may operate (issue 10 "Operators"): the operator pages take only a phishing
resistant session at AAL2 or the operator's tier's sign-in level, whichever is higher;
the admin API takes only a scoped API key, never a session, however strong."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerFactory
from tests.integration.admin.support import bearer, create_key
from tests.integration.test_tiers import CORPORATE
from tests.support.attestation import AttestedDeployment, set_tier_attested, synced_and_hardware
from tests.support.authenticator import SoftAuthenticator
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.smtp import SmtpCapture

OPERATOR = "op@example.com"


def test_operator_pages_need_the_operators_tier_level(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """An AAL2 passkey session opens the pages while the operator's tier asks for AAL2;
    the move to a tier that asks for AAL3 ends that session (tier_service), and only an
    attested, device-bound key's AAL3 session opens them."""
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(CORPORATE, encoding="utf-8")
    server = make_server(policy_file=policy_file, admin_emails=[OPERATOR], **attested.settings())
    server.add_user(OPERATOR)
    synced, hardware = synced_and_hardware(server, smtp, attested, OPERATOR)
    with server.client() as synced_session:
        assert sign_in(server, synced_session, synced).json()["aal"] == 2
        assert synced_session.get("/admin/migration").status_code == 200

        done = set_tier_attested(server, policy_file, attested, OPERATOR, "corporate")
        assert done.returncode == 0, done.stderr
        assert synced_session.get("/api/v1/session").status_code == 401
        assert synced_session.get("/admin/migration").status_code == 404
    with server.client() as hardware_session:
        signed_in = sign_in(server, hardware_session, hardware, email=OPERATOR)
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["aal"] == 3
        assert hardware_session.get("/admin/migration").status_code == 200


def test_the_admin_api_takes_a_scoped_key_never_an_operators_session(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(admin_emails=[OPERATOR])
    server.add_user(OPERATOR)
    key = SoftAuthenticator()
    _key_id, api_key = create_key(server, "clients:read")
    with server.client() as operator:
        email_sign_in(server, smtp, operator, OPERATOR)
        assert register(server, operator, key).status_code == 201
        assert sign_in(server, operator, key).json()["aal"] == 2
        assert operator.get("/admin/migration").status_code == 200, "a session fit for the pages"
        refused = operator.get("/api/v1/admin/clients")
        assert refused.status_code == 401
        assert refused.json()["error"] == "api_key_invalid"
        assert operator.get("/api/v1/admin/clients", headers=bearer(api_key)).status_code == 200


def test_operator_pages_follow_a_policy_that_raised_the_tiers_level(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """A session made while the operator's tier asked for AAL2 does not outlive a
    policy file that now asks for AAL3: the first instance to start with it ends the
    session (docs/policy.md, editing the policy), so the pages are not served to it."""
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(
        CORPORATE.replace("signin_aal = 3", "signin_aal = 2")
        .replace("synced_passkeys = false\n", "")
        .replace('attestation = "required"\n', ""),
        encoding="utf-8",
    )
    strict = tmp_path / "strict.toml"
    strict.write_text(CORPORATE, encoding="utf-8")
    before = make_server(policy_file=lenient, admin_emails=[OPERATOR], **attested.settings())
    before.add_user(OPERATOR)
    synced, _hardware = synced_and_hardware(before, smtp, attested, OPERATOR)
    assert set_tier_attested(before, lenient, attested, OPERATOR, "corporate").returncode == 0
    with before.client() as synced_session:
        assert sign_in(before, synced_session, synced).json()["aal"] == 2
        assert synced_session.get("/admin/migration").status_code == 200
        after = make_server(policy_file=strict, admin_emails=[OPERATOR], **attested.settings())
        with after.client(cookies=synced_session.cookies) as same_session:
            assert same_session.get("/api/v1/session").status_code == 401
            refused = same_session.get("/admin/migration")
    assert refused.status_code == 404, "no session: the edit ended the AAL2 one"
