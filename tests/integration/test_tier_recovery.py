"""Recovery that keeps the tier, and AAL3 step-up, over real HTTP on SQLite and
PostgreSQL (issue 10; SECURITY.md cases 54 and 55): a recovery code in a passkey-only
tier leads to a session that can only enrol a passkey the tier accepts, after which the
other sessions end, the hold applies and the user is told; email alone never recovers
such an account; a transaction that needs AAL3 is confirmed only by an attested
device-bound key."""

from __future__ import annotations

from pathlib import Path

import httpx

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from tests.conftest import ServerFactory
from tests.integration.test_tiers import CORPORATE, POLICY, email_refused, sekisho
from tests.support.attestation import AttestedDeployment, set_tier_attested
from tests.support.authenticator import SoftAuthenticator, b64url_decode
from tests.support.confirmations import (
    ACTIONS,
    access_token,
    ask,
    collect,
    confirm,
    options,
    redeem,
    verify_confirmation,
)
from tests.support.oidc import authorize_url, register_client
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.recovery import wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of

# test_tiers' policy, whose high_value tier also asks for a fresh AAL2 before a withdrawal.
HIGH_VALUE = (
    POLICY
    + """
[tiers.high_value.step_up.withdrawal]
aal = 2
max_age = "5m"
"""
    + ACTIONS
)
AAL3_WITHDRAWAL = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.standard.step_up.withdrawal]
aal = 3
max_age = "5m"
"""


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _subject(notice: str) -> str:
    return gettext("en", NOTICES[notice][0])


def _codes_after_passkey_sign_in(
    server: LiveServer, smtp: SmtpCapture, client: httpx.Client, key: SoftAuthenticator, email: str
) -> list[str]:
    """An account that signed in by email, added ``key``, signed in with it and made a
    set of recovery codes (which needs that fresh passkey sign-in)."""
    server.add_user(email)
    email_sign_in(server, smtp, client, email)
    assert register(server, client, key).status_code == 201
    assert sign_in(server, client, key, email=email).status_code == 200
    made = client.post("/api/v1/recovery-codes", json={})
    assert made.status_code == 201, made.text
    codes: list[str] = made.json()["codes"]
    return codes


def _email_alone_is_refused(server: LiveServer, smtp: SmtpCapture, email: str) -> None:
    """Asking for a sign-in email gives the usual answer and a message with neither link
    nor code (case 50; test_tiers shows the flow's own secrets are refused too), and no
    session."""
    with server.client() as client:
        email_refused(smtp, client, email)
        assert client.get("/api/v1/session").status_code == 401


def _recover(server: LiveServer, client: httpx.Client, email: str, code: str) -> None:
    """A recovery code in: a recovery session that can do nothing but add a passkey."""
    recovered = client.post("/api/v1/signin/recovery", json={"email": email, "recovery_code": code})
    assert recovered.status_code == 200, recovered.text
    session = recovered.json()
    assert (session["aal"], session["restriction"]) == (1, "recovery")
    for refused in (
        client.get("/api/v1/passkeys"),
        client.get("/api/v1/sessions"),
        client.post("/api/v1/sessions/revoke-others", json={}),
        client.post("/api/v1/recovery-codes", json={}),
    ):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "session_restricted"


def _notified(server: LiveServer, smtp: SmtpCapture, email: str) -> None:
    """The code's use and the recovery's completion were mailed to the account."""
    for notice in ("recovery_code_used", "recovery_completed"):
        message = wait_for_subject(smtp, email, _subject(notice))
        assert message["To"] == email
        assert f"{server.url}/account" in text_of(message)


def test_case54_a_recovery_code_in_a_high_value_tier_enrols_a_passkey_then_holds(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    policy_file = _policy(tmp_path, HIGH_VALUE)
    server = make_server(policy_file=policy_file)
    email = "aki@example.com"
    lost = SoftAuthenticator()
    replacement = SoftAuthenticator()
    registered = register_client(server)
    with server.client() as owner, server.client() as other, server.client() as rescuer:
        codes = _codes_after_passkey_sign_in(server, smtp, owner, lost, email)
        status, _out, err = sekisho(server, policy_file, "users", "set-tier", email, "high_value")
        assert status == 0, err
        assert sign_in(server, other, lost, email=email).status_code == 200
        before = access_token(server, registered, other)

        _email_alone_is_refused(server, smtp, email)

        _recover(server, rescuer, email, codes[0])
        no_code = rescuer.get(authorize_url(registered.client_id))
        assert no_code.status_code == 403
        assert "location" not in no_code.headers
        assert 'data-error="session_restricted"' in no_code.text

        assert register(server, rescuer, replacement).status_code == 201
        for ended in (owner, other):
            assert ended.get("/api/v1/session").status_code == 401
        assert ask(server, before).json()["error"] == "access_token_invalid"
        again = rescuer.post("/api/v1/passkeys/registration/options", json={})
        assert (again.status_code, again.json()["error"]) == (403, "session_restricted")

    [completed] = server.audited("recovery.completed")
    assert completed["sessions_ended"] == 2
    with server.client() as fresh:
        signed_in = sign_in(server, fresh, replacement, email=email)
        assert signed_in.status_code == 200, signed_in.text
        assert (signed_in.json()["aal"], signed_in.json()["restriction"]) == (2, None)
        passkeys = fresh.get("/api/v1/passkeys").json()
        old = next(p for p in passkeys if p["id"] != completed["passkey"])
        held = fresh.delete(f"/api/v1/passkeys/{old['id']}")
        assert (held.status_code, held.json()["error"]) == (403, "recovery_hold")
        assert held.json()["until"] == completed["hold_until"]
        withdrawal = ask(server, access_token(server, registered, fresh))
        assert (withdrawal.status_code, withdrawal.json()["error"]) == (403, "recovery_hold")

    _notified(server, smtp, email)


def test_case54_a_corporate_recovery_accepts_only_an_attested_device_bound_key(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    policy_file = _policy(tmp_path, CORPORATE)
    server = make_server(policy_file=policy_file, **attested.settings())
    email = "kei@example.com"
    lost = attested.key()
    synced = attested.key(synced=True)
    replacement = attested.key()
    with server.client() as owner, server.client() as rescuer:
        codes = _codes_after_passkey_sign_in(server, smtp, owner, lost, email)
        moved = set_tier_attested(server, policy_file, attested, email, "corporate")
        assert moved.returncode == 0, moved.stderr

        _email_alone_is_refused(server, smtp, email)

        _recover(server, rescuer, email, codes[0])
        refused = register(server, rescuer, synced)
        assert (refused.status_code, refused.json()["error"]) == (403, "passkey_not_allowed")
        assert owner.get("/api/v1/session").status_code == 200
        assert not server.audited("recovery.completed")
        assert register(server, rescuer, replacement).status_code == 201
        assert owner.get("/api/v1/session").status_code == 401

    [completed] = server.audited("recovery.completed")
    assert completed["sessions_ended"] == 1
    with server.client() as fresh:
        unknown = sign_in(server, fresh, synced)
        assert (unknown.status_code, unknown.json()["error"]) == (400, "passkey_unknown")
        signed_in = sign_in(server, fresh, replacement, email=email)
        assert signed_in.status_code == 200, signed_in.text
        assert (signed_in.json()["aal"], signed_in.json()["restriction"]) == (3, None)
        assert len(fresh.get("/api/v1/passkeys").json()) == 2
        held = fresh.post("/api/v1/recovery-codes", json={})
        assert (held.status_code, held.json()["error"]) == (403, "recovery_hold")
    _notified(server, smtp, email)


def test_case55_a_withdrawal_needing_aal3_is_confirmed_only_by_an_attested_device_bound_key(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    server = make_server(
        policy_file=_policy(tmp_path, AAL3_WITHDRAWAL + ACTIONS), **attested.settings()
    )
    registered = register_client(server)
    email = "yuki@example.com"
    synced = attested.key(synced=True)
    hardware = attested.key()
    server.add_user(email)
    with server.client() as browser:
        email_sign_in(server, smtp, browser, email)
        assert register(server, browser, synced).status_code == 201
        assert sign_in(server, browser, synced, email=email).json()["aal"] == 2
        assert register(server, browser, hardware).status_code == 201

        weak = ask(server, access_token(server, registered, browser))
        assert (weak.status_code, weak.json()["error"]) == (401, "insufficient_user_authentication")
        assert weak.headers["www-authenticate"] == (
            'Bearer realm="sekisho", error="insufficient_user_authentication", '
            'acr_values="phrh", max_age=300'
        )
        assert (weak.json()["acr_values"], weak.json()["max_age"]) == ("phrh", 300)

        assert sign_in(server, browser, hardware, email=email).json()["aal"] == 3
        asked = ask(server, access_token(server, registered, browser))
        assert asked.status_code == 201, asked.text
        confirmation_id = asked.json()["id"]

        started = options(browser, confirmation_id)
        offered = [c["id"] for c in started.json()["publicKey"]["allowCredentials"]]
        assert [b64url_decode(c) for c in offered] == list(hardware.credentials)
        too_low = confirm(
            server, browser, synced, confirmation_id, started=started, offered_only=False
        )
        assert (too_low.status_code, too_low.json()["error"]) == (400, "passkey_rejected")
        assert collect(server, registered, confirmation_id).json()["status"] == "pending"

        confirmed = confirm(server, browser, hardware, confirmation_id)
        assert confirmed.status_code == 200, confirmed.text

    collected = collect(server, registered, confirmation_id).json()
    assert collected["status"] == "confirmed"
    claims = verify_confirmation(server, collected["confirmation"], client_id=registered.client_id)
    assert claims["acr"] == "phrh"
    assert "hwk" in claims["amr"]
    assert redeem(server, registered, confirmation_id).status_code == 200
    [failed] = server.audited("confirmation.passkey.failed")
    assert (failed["confirmation"], failed["reason"]) == (confirmation_id, "aal_too_low")
