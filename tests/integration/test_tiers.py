"""Tiers over real HTTP, on SQLite and PostgreSQL (issue 10; SECURITY.md cases 50, 51
and 54): the weakest link refused at completion, the last allowed way in kept, tier
changes that would lock an account out refused, and the restricted session of an
account moved into a stricter tier, which enrols a passkey and then signs in with it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sekisho.core.records import AuditEvent
from sekisho.methods.password.hashes import hash_password
from tests.conftest import ServerFactory
from tests.support.attestation import AttestedDeployment, set_tier_attested
from tests.support.authenticator import SoftAuthenticator
from tests.support.cli import run_sekisho
from tests.support.oidc import authorize_url, register_client
from tests.support.passkeys import register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

START = datetime(2026, 11, 27, tzinfo=UTC)
POLICY = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email", "password"]

[tiers.high_value]
description = "Passkeys only; email neither signs in nor recovers."
methods = ["passkey"]
signin_aal = 2
email_recovery = false

[tiers.moving]
description = "Passkeys only; email may recover into an enrolment session."
methods = ["passkey"]
signin_aal = 2
email_recovery = true

[[rules]]
when = "assets_jpy >= 10_000_000"
tier = "high_value"
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def tiered(make_server: ServerFactory, policy_file: Path) -> LiveServer:
    return make_server(policy_file=policy_file)


def sekisho(server: LiveServer, policy_file: Path, *args: str) -> tuple[int, str, str]:
    done = run_sekisho(server.settings.database_url, *args, SEKISHO_POLICY_FILE=str(policy_file))
    return done.returncode, done.stdout, done.stderr


def email_code(smtp: SmtpCapture, client: httpx.Client, address: str) -> httpx.Response:
    """Ask for an email and submit its code: the completion step's answer."""
    earlier = len(smtp.to(address))
    flow = client.post("/api/v1/signin/email", json={"email": address})
    assert flow.status_code == 202, flow.text
    _link, code = link_and_code(smtp.wait_for(address, earlier + 1))
    return client.post(
        f"/api/v1/signin/email/flows/{flow.json()['flow_id']}/code", json={"code": code}
    )


def audit_of(server: LiveServer, address: str) -> list[AuditEvent]:
    database = server.database
    try:
        with database.reading() as repos:
            user = repos.users.by_email(address)
            assert user is not None
            return repos.audit.recent(user.id, address, 50)
    finally:
        database.dispose()


def with_passkey(
    server: LiveServer, smtp: SmtpCapture, address: str, language: str = "en"
) -> SoftAuthenticator:
    """An account that signed in by email in ``language`` and added a passkey."""
    server.add_user(address)
    authenticator = SoftAuthenticator()
    with server.client(headers={"Accept-Language": language}) as client:
        assert email_code(smtp, client, address).status_code == 200
        assert register(server, client, authenticator).status_code == 201
    return authenticator


def test_case50_email_never_signs_a_high_value_account_in(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    authenticator = with_passkey(tiered, smtp, "hana@example.com")
    status, out, err = sekisho(
        tiered, policy_file, "users", "set-tier", "hana@example.com", "high_value"
    )
    assert status == 0, err
    assert "moves from tier standard to high_value" in out
    assert "ways in: passkey:Passkey" in out
    with tiered.client() as client:
        asked = client.post("/api/v1/signin/email", json={"email": "hana@example.com"})
        unknown = client.post("/api/v1/signin/email", json={"email": "nobody@example.com"})
        assert asked.status_code == unknown.status_code == 202
        assert set(asked.json()) == set(unknown.json())
    with tiered.client() as client:
        refused = email_code(smtp, client, "hana@example.com")
        assert refused.status_code == 403
        assert refused.json()["error"] == "signin_method_not_allowed"
        assert "sekisho_session" not in " ".join(refused.headers.get_list("set-cookie"))
        assert client.get("/api/v1/session").status_code == 401
    with tiered.client() as client:
        signed_in = sign_in(tiered, client, authenticator, email="hana@example.com")
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["aal"] == 2
        assert signed_in.json()["restriction"] is None
    events = audit_of(tiered, "hana@example.com")
    rejected = [e for e in events if e.event == "signin.rejected"]
    assert rejected[0].detail["reason"] == "tier_forbids_method"
    assert rejected[0].detail["tier"] == "high_value"
    assert any(e.event == "account.tier_changed" for e in events)


def test_case51_last_allowed_passkey_cannot_be_removed(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    authenticator = with_passkey(tiered, smtp, "iori@example.com")
    assert (
        sekisho(tiered, policy_file, "users", "set-tier", "iori@example.com", "high_value")[0] == 0
    )
    with tiered.client() as client:
        assert sign_in(tiered, client, authenticator, email="iori@example.com").status_code == 200
        [only] = client.get("/api/v1/passkeys").json()
        refused = client.delete(f"/api/v1/passkeys/{only['id']}")
        assert refused.status_code == 409
        assert refused.json()["error"] == "last_way_in"
        assert len(client.get("/api/v1/passkeys").json()) == 1
        assert register(tiered, client, SoftAuthenticator()).status_code == 201
        assert client.delete(f"/api/v1/passkeys/{only['id']}").status_code == 204
    events = audit_of(tiered, "iori@example.com")
    assert any(e.event == "passkey.removal_refused" for e in events)


def test_tier_change_that_would_lock_the_account_out_is_refused(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    tiered.add_user("jun@example.com")
    status, _out, err = sekisho(
        tiered, policy_file, "users", "set-tier", "jun@example.com", "high_value"
    )
    assert status == 1
    assert "jun@example.com stays in tier standard" in err
    assert "could never sign in again" in err
    status, _out, err = sekisho(
        tiered, policy_file, "users", "set-attribute", "jun@example.com", "assets_jpy", "20000000"
    )
    assert status == 1
    assert "stays in tier standard" in err
    assert sekisho(tiered, policy_file, "users", "set-tier", "jun@example.com", "gold")[0] == 1
    with tiered.client() as client:
        assert email_code(smtp, client, "jun@example.com").status_code == 200
    events = audit_of(tiered, "jun@example.com")
    assert not any(e.event.startswith("account.tier") for e in events)


def test_rules_move_an_account_when_its_attribute_changes(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    with_passkey(tiered, smtp, "kai@example.com")
    status, out, err = sekisho(
        tiered, policy_file, "users", "set-attribute", "kai@example.com", "assets_jpy", "10_000_000"
    )
    assert status == 0, err
    assert "moves from tier standard to high_value" in out
    with tiered.client() as client:
        assert email_code(smtp, client, "kai@example.com").status_code == 403
    status, out, _err = sekisho(
        tiered, policy_file, "users", "set-attribute", "kai@example.com", "assets_jpy", "--remove"
    )
    assert status == 0
    assert "moves from tier high_value to standard" in out
    for number in ("nan", "inf", "Infinity", "1e400"):
        status, _out, err = sekisho(
            tiered, policy_file, "users", "set-attribute", "kai@example.com", "assets_jpy", number
        )
        assert status == 2, number
        assert "must be finite" in err


def test_restricted_session_enrols_a_passkey_then_signs_in_fully(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    tiered.add_user("mio@example.com")
    status, out, err = sekisho(
        tiered, policy_file, "users", "set-tier", "mio@example.com", "moving"
    )
    assert status == 0, err
    assert "the next sign-in by email gets a session that can only add a passkey" in out
    authenticator = SoftAuthenticator()
    with tiered.client() as client:
        restricted = email_code(smtp, client, "mio@example.com")
        assert restricted.status_code == 200, restricted.text
        assert restricted.json()["restriction"] == "enrol_passkey"
        assert restricted.json()["aal"] == 1
        for refused in (
            client.get("/api/v1/sessions"),
            client.get("/api/v1/passkeys"),
            client.post("/api/v1/sessions/revoke-others", json={}),
        ):
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "restricted_session"
        remove_page = client.get("/account/passkeys/anything/remove")
        assert remove_page.status_code == 403
        page = client.get("/account", headers={"accept-language": "en"})
        assert page.status_code == 200
        assert "Add a passkey to continue" in page.text
        assert 'id="add-passkey"' in page.text
        japanese = client.get("/account", headers={"accept-language": "ja"})
        assert "続けるにはパスキーを追加してください" in japanese.text
        assert register(tiered, client, authenticator).status_code == 201
        assert client.get("/api/v1/session").json()["restriction"] == "enrol_passkey"
        assert client.get("/api/v1/sessions").status_code == 403
        assert 'id="enrol-signin"' in client.get("/account").text
        full = sign_in(tiered, client, authenticator, email="mio@example.com")
        assert full.status_code == 200, full.text
        assert full.json()["restriction"] is None
        assert full.json()["aal"] == 2
        assert client.get("/api/v1/sessions").status_code == 200
        assert "Add a passkey to continue" not in client.get("/account").text
    with tiered.client() as client:
        again = email_code(smtp, client, "mio@example.com")
        assert again.status_code == 403
        assert again.json()["error"] == "signin_method_not_allowed"
    events = [e.event for e in audit_of(tiered, "mio@example.com")]
    assert "signin.restricted" in events
    assert "signin.succeeded" in events


def test_broken_policy_file_refuses_to_start_with_line_and_reason(
    tiered: LiveServer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        POLICY.replace(
            'methods = ["passkey"]\nsignin_aal = 2\nemail_recovery = false',
            'methods = ["passkey", "sms"]',
        ),
        encoding="utf-8",
    )
    url = tiered.settings.database_url
    for command in (("check-config",), ("serve", "--port", "1"), ("users", "list")):
        done = run_sekisho(url, *command, SEKISHO_POLICY_FILE=str(broken))
        assert done.returncode == 2, (command, done.stderr)
        assert f"policy error: {broken}:8: unknown method 'sms'" in done.stderr
    checked = run_sekisho(None, "policy", "check", str(broken))
    assert checked.returncode == 2
    assert ":8: unknown method 'sms'" in checked.stderr
    example = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
    accepted = run_sekisho(url, "policy", "check", str(example))
    assert accepted.returncode == 0, accepted.stderr
    assert "Tier high_value" in accepted.stdout
    # The example's corporate tier needs attested keys: a deployment without
    # passkey_attestation = direct could never sign its accounts in, and serve says so.
    assert 'requires attestation, but passkey_attestation is not "direct"' in accepted.stderr
    alone = run_sekisho(
        None, "policy", "check", str(example), secret_key=None, SEKISHO_MODE="production"
    )
    assert alone.returncode == 0, alone.stderr
    assert "not checked against this deployment's settings" in alone.stdout
    refused = run_sekisho(url, "check-config", SEKISHO_POLICY_FILE=str(example))
    assert refused.returncode == 2
    assert f"policy error: {example}:40: tier corporate requires attestation" in refused.stderr


CORPORATE = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.corporate]
methods = ["passkey"]
signin_aal = 3
synced_passkeys = false
attestation = "required"
email_recovery = false
"""


def test_case55_corporate_tier_needs_an_attested_device_bound_key_for_aal3(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    policy_file = tmp_path / "corporate.toml"
    policy_file.write_text(CORPORATE, encoding="utf-8")
    server = make_server(policy_file=policy_file, **attested.settings())
    synced = attested.key(synced=True)
    hardware = attested.key()
    server.add_user("nao@example.com")
    with server.client() as client:
        assert email_code(smtp, client, "nao@example.com").status_code == 200
        assert register(server, client, synced).status_code == 201
    done = set_tier_attested(server, policy_file, attested, "nao@example.com", "corporate")
    assert done.returncode == 0, done.stderr
    assert "the next sign-in by passkey gets a session that can only add a passkey" in done.stdout
    with server.client() as client:
        assert email_code(smtp, client, "nao@example.com").status_code == 403
    with server.client() as client:
        bridged = sign_in(server, client, synced, email="nao@example.com")
        assert bridged.status_code == 200, bridged.text
        assert (bridged.json()["aal"], bridged.json()["restriction"]) == (2, "enrol_passkey")
        assert bridged.json()["amr"] == ["swk", "pin", "mfa"]
        another_synced = attested.key(synced=True, backup_state=False)
        refused = register(server, client, another_synced)
        assert refused.status_code == 403
        assert refused.json()["error"] == "passkey_not_allowed"
        assert register(server, client, hardware).status_code == 201
        full = sign_in(server, client, hardware, email="nao@example.com")
        assert full.status_code == 200, full.text
        assert (full.json()["aal"], full.json()["restriction"]) == (3, None)
    with server.client() as client:
        again = sign_in(server, client, synced, email="nao@example.com")
        assert again.status_code == 403
        assert again.json()["error"] == "signin_method_not_allowed"


def test_case50_neither_the_email_link_nor_the_password_signs_a_high_value_account_in(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    with_passkey(tiered, smtp, "ren@example.com")
    database = tiered.database
    try:
        with database.transaction() as repos:
            user = repos.users.by_email("ren@example.com")
            assert user is not None
            repos.passwords.put(
                user.id, hash=hash_password("correct horse battery"), scheme="argon2id", now=START
            )
    finally:
        database.dispose()
    assert (
        sekisho(tiered, policy_file, "users", "set-tier", "ren@example.com", "high_value")[0] == 0
    )
    with tiered.client() as client:
        wrong = client.post(
            "/api/v1/signin/password", json={"email": "ren@example.com", "password": "wrong one"}
        )
        right = client.post(
            "/api/v1/signin/password",
            json={"email": "ren@example.com", "password": "correct horse battery"},
        )
        assert wrong.status_code == right.status_code == 400
        assert wrong.json() == right.json()
        assert client.get("/api/v1/session").status_code == 401
    with tiered.client() as client:
        earlier = len(smtp.to("ren@example.com"))
        assert (
            client.post("/api/v1/signin/email", json={"email": "ren@example.com"}).status_code
            == 202
        )
        link, _code = link_and_code(smtp.wait_for("ren@example.com", earlier + 1))
        token = parse_qs(urlsplit(link).query)["token"][0]
        refused = client.post("/api/v1/signin/email/link/confirm", json={"token": token})
        assert refused.status_code == 403
        assert refused.json()["error"] == "signin_method_not_allowed"
        assert client.get("/api/v1/session").status_code == 401
    events = audit_of(tiered, "ren@example.com")
    rejected = [e.detail.get("via") for e in events if e.event == "signin.rejected"]
    assert rejected == ["link"]
    password = [e.detail.get("reason") for e in events if e.event == "signin.password.failed"]
    assert password == ["tier_forbids_method", "tier_forbids_method"]


def test_serve_refuses_a_policy_that_dropped_a_tier_in_use(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path, tmp_path: Path
) -> None:
    with_passkey(tiered, smtp, "yui@example.com")
    assert (
        sekisho(tiered, policy_file, "users", "set-tier", "yui@example.com", "high_value")[0] == 0
    )
    shrunk = tmp_path / "shrunk.toml"
    shrunk.write_text(
        'default_tier = "standard"\n\n[tiers.standard]\nmethods = ["passkey", "email"]\n',
        encoding="utf-8",
    )
    done = run_sekisho(
        tiered.settings.database_url, "serve", "--port", "1", SEKISHO_POLICY_FILE=str(shrunk)
    )
    assert done.returncode == 2, done.stderr
    assert "accounts are in tiers it does not declare: high_value (1 account)" in done.stderr


def test_a_restricted_session_gets_no_authorization_code(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    """Issue 10: the restriction is visible to OIDC clients. A session that may only
    enrol a passkey is refused at the authorization endpoint: no code, so no tokens,
    until the enrolment has issued a full session."""
    tiered.add_user("ren@example.com")
    status, _out, err = sekisho(
        tiered, policy_file, "users", "set-tier", "ren@example.com", "moving"
    )
    assert status == 0, err
    registered = register_client(tiered)
    with tiered.client() as client:
        restricted = email_code(smtp, client, "ren@example.com")
        assert restricted.json()["restriction"] == "enrol_passkey"
        answer = client.get(authorize_url(registered.client_id))
        assert answer.status_code == 403, answer.text
        assert "location" not in answer.headers
        assert 'data-error="restricted_session"' in answer.text
