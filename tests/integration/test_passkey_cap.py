"""The passkey cap (``PASSKEYS_PER_ACCOUNT``) and the restricted sessions exempt from it
(recovery, a tier's enrolment), over real HTTP on SQLite and PostgreSQL: the exemption is
bounded, because each restricted proof enrols one passkey and no more; after it only a
full session adds passkeys, and a full session is held to the cap."""

from __future__ import annotations

from pathlib import Path

import httpx

from sekisho.methods.passkey.registration import PASSKEYS_PER_ACCOUNT
from tests.conftest import ServerFactory
from tests.integration.test_tiers import POLICY, email_code, sekisho
from tests.support.authenticator import SoftAuthenticator
from tests.support.passkeys import email_sign_in, register, registration_answer, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


def _refused(client: httpx.Client, status: int, error: str) -> None:
    """A new registration ceremony cannot even start."""
    started = client.post("/api/v1/passkeys/registration/options", json={})
    assert (started.status_code, started.json()["error"]) == (status, error), started.text


def _full_account(
    server: LiveServer, smtp: SmtpCapture, client: httpx.Client, email: str
) -> list[SoftAuthenticator]:
    """An account at the cap, with a set of recovery codes; its passkeys."""
    server.add_user(email)
    keys = [SoftAuthenticator() for _ in range(PASSKEYS_PER_ACCOUNT)]
    email_sign_in(server, smtp, client, email)
    assert register(server, client, keys[0]).status_code == 201
    assert sign_in(server, client, keys[0], email=email).status_code == 200
    for key in keys[1:]:
        assert register(server, client, key).status_code == 201
    _refused(client, 409, "passkey_limit_reached")
    return keys


def test_a_recovery_at_the_cap_enrols_one_passkey_past_it_and_no_more(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """A recovery code at the cap enrols a ninth passkey (the lost ones cannot be
    removed from a recovery session); the same session then adds none, and the full
    session the new passkey signs in is held to the cap again."""
    email = "kai@example.com"
    with server.client() as owner, server.client() as rescuer, server.client() as after:
        _full_account(server, smtp, owner, email)
        codes = owner.post("/api/v1/recovery-codes", json={})
        assert codes.status_code == 201, codes.text
        recovered = rescuer.post(
            "/api/v1/signin/recovery",
            json={"email": email, "recovery_code": codes.json()["codes"][0]},
        )
        assert recovered.status_code == 200, recovered.text
        replacement = SoftAuthenticator()
        assert register(server, rescuer, replacement).status_code == 201
        _refused(rescuer, 403, "session_restricted")
        assert sign_in(server, after, replacement, email=email).status_code == 200
        assert len(after.get("/api/v1/passkeys").json()) == PASSKEYS_PER_ACCOUNT + 1
        _refused(after, 409, "passkey_limit_reached")


def test_a_tiers_enrolment_session_enrols_one_passkey_and_no_more(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """An account moved into a passkey-only tier that lets email recover it signs in by
    email into a session that may only enrol a passkey: one passkey, then that session
    may add nothing else (neither start nor finish a ceremony), so an email proof can
    never fill the account past the cap; the passkey signs in fully."""
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY, encoding="utf-8")
    server = make_server(policy_file=policy_file)
    email = "ren@example.com"
    server.add_user(email)
    assert sekisho(server, policy_file, "users", "set-tier", email, "moving")[0] == 0
    first, second = SoftAuthenticator(), SoftAuthenticator()
    with server.client() as restricted, server.client() as full:
        assert email_code(smtp, restricted, email).json()["restriction"] == "enrol_passkey"
        started_before = registration_answer(server, restricted, second)
        assert register(server, restricted, first).status_code == 201
        late = restricted.post("/api/v1/passkeys/registration/verify", json=started_before)
        assert (late.status_code, late.json()["error"]) == (403, "session_restricted")
        _refused(restricted, 403, "session_restricted")
        signed_in = sign_in(server, full, first, email=email)
        assert (signed_in.status_code, signed_in.json()["restriction"]) == (200, None)
        assert len(full.get("/api/v1/passkeys").json()) == 1
