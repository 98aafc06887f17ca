"""Tiers over real HTTP, on SQLite and PostgreSQL (issue 10; SECURITY.md cases 50, 51
and 54): the weakest link refused at completion, the last allowed way in kept, tier
changes that would lock an account out refused, and the restricted session of an
account moved into a stricter tier, which enrols a passkey and then signs in with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.methods.password.hashes import hash_password
from tests.conftest import ServerFactory
from tests.support.attestation import AttestedDeployment, set_tier_attested
from tests.support.authenticator import SoftAuthenticator
from tests.support.cli import run_sekisho
from tests.support.clock import SettableClock
from tests.support.loop import run_async
from tests.support.oidc import authorize_url, register_client
from tests.support.outbox import outbox_worker, wait_for_outbox
from tests.support.passkeys import register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import CODE, LINK, SmtpCapture, html_of, link_and_code, text_of

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
    done = run_sekisho(
        server.settings.database_url,
        *args,
        SEKISHO_POLICY_FILE=str(policy_file),
        SEKISHO_ADMIN_EMAILS=json.dumps(server.settings.admin_emails),
    )
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


def passkey_only_mail(smtp: SmtpCapture, address: str, after: int, subject: str) -> tuple[str, str]:
    """The first message to ``address`` after its ``after``-th with ``subject`` (security
    notices may arrive in between), its text and HTML. Neither it nor any message
    before it carries a sign-in link or a code."""
    count = after
    while True:
        count += 1
        message = smtp.wait_for(address, count)
        plain, html = text_of(message), html_of(message)
        assert LINK.search(plain + html) is None, plain
        if message["Subject"] == subject:
            break
    for part in (subject, plain, html):
        assert "token=" not in part
        assert CODE.search(part) is None, part
    return plain, html


def email_refused(smtp: SmtpCapture, client: httpx.Client, address: str) -> None:
    """Ask for an email for an account whose tier refuses email (from an English
    account): the usual ``202``, and a message in English with no link and no code."""
    earlier = len(smtp.to(address))
    assert client.post("/api/v1/signin/email", json={"email": address}).status_code == 202
    passkey_only_mail(smtp, address, earlier, "Sign in with your passkey")


def test_case50_email_never_signs_a_high_value_account_in(
    tiered: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    """The holder, who last signed in in Japanese, gets a Japanese message without link
    or code that sends them to the sign-in page; the requester (an English browser)
    gets the same answer as for an address without an account."""
    authenticator = with_passkey(tiered, smtp, "hana@example.com", language="ja")
    status, out, err = sekisho(
        tiered, policy_file, "users", "set-tier", "hana@example.com", "high_value"
    )
    assert status == 0, err
    assert "moves from tier standard to high_value" in out
    assert "ways in: passkey:Passkey" in out
    earlier = len(smtp.to("hana@example.com"))
    with tiered.client(headers={"Accept-Language": "en"}) as client:
        asked = client.post("/api/v1/signin/email", json={"email": "hana@example.com"})
        unknown = client.post("/api/v1/signin/email", json={"email": "nobody@example.com"})
        assert asked.status_code == unknown.status_code == 202
        assert set(asked.json()) == set(unknown.json())
        plain, html = passkey_only_mail(
            smtp, "hana@example.com", earlier, "パスキーでサインインしてください"
        )
        assert "リンクも確認コードも記載していません" in plain
        assert "心当たりがない場合は、このメールは無視してかまいません" in plain
        assert f"{tiered.settings.public_origin}/signin\n" in plain
        assert f'href="{tiered.settings.public_origin}/signin"' in html
        assert 'lang="ja"' in html
        assert client.get("/api/v1/session").status_code == 401
    # The worker audits "mail.sent" when it settles its batch, after the SMTP server has
    # the message: the capture sees the notice before that commit is made.
    wait_for_outbox(tiered, "SELECT count(*) = 0 FROM outbox WHERE status = 'pending'")
    with tiered.client() as client:
        signed_in = sign_in(tiered, client, authenticator, email="hana@example.com")
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["aal"] == 2
        assert signed_in.json()["restriction"] is None
    events = audit_of(tiered, "hana@example.com")
    sent = [e.detail["reason"] for e in events if e.event == "mail.sent"]
    assert sent.count("passkey_only_notice") == 1
    assert not any(e.event == "signin.email.failed" for e in events)
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
        email_refused(smtp, client, "kai@example.com")
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
    after = len(smtp.to("kai@example.com"))
    with tiered.client() as client:
        flow = client.post("/api/v1/signin/email", json={"email": "kai@example.com"})
        _link, code = link_and_code(smtp.wait_for_signin("kai@example.com", after))
        signed_in = client.post(
            f"/api/v1/signin/email/flows/{flow.json()['flow_id']}/code", json={"code": code}
        )
        assert signed_in.status_code == 200, signed_in.text


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
        email_refused(smtp, client, "mio@example.com")
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
        email_refused(smtp, client, "nao@example.com")
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


def deliver(server: LiveServer) -> None:
    """Send what is queued, by a worker of this test's own (the server runs none)."""
    database = server.database
    worker, sender = outbox_worker(server, database)

    async def batch() -> None:
        await worker.deliver_due()
        await sender.idle()

    try:
        run_async(batch())
    finally:
        database.dispose()


def queued_secrets(server: LiveServer) -> tuple[str, str]:
    """The link token and the code of the last sign-in email queued, read from the
    outbox before the worker has decided on it (the worker erases the payload)."""
    database = server.database
    try:
        with database.engine.connect() as connection:
            sealed = connection.execute(
                text(
                    "SELECT sealed_payload FROM outbox WHERE kind = 'signin' "
                    "AND sealed_payload IS NOT NULL ORDER BY id DESC"
                )
            ).first()
    finally:
        database.dispose()
    assert sealed is not None
    payload = json.loads(Keyring(server.settings.secret_key.get_secret_value()).unseal(sealed[0]))
    return parse_qs(urlsplit(payload["link"]).query)["token"][0], payload["code"]


def test_case50_neither_the_email_link_nor_the_password_signs_a_high_value_account_in(
    make_server: ServerFactory, smtp: SmtpCapture, policy_file: Path
) -> None:
    """The link and the code made for the flow never reach the mailbox, and even taken
    from the outbox they do not sign the account in; a right password is not told apart
    from a wrong one."""
    server = make_server(policy_file=policy_file, mail_worker=False)
    server.add_user("ren@example.com")
    with server.client() as client:
        flow = client.post("/api/v1/signin/email", json={"email": "ren@example.com"})
        deliver(server)
        _link, code = link_and_code(smtp.wait_for("ren@example.com"))
        signed_in = client.post(
            f"/api/v1/signin/email/flows/{flow.json()['flow_id']}/code", json={"code": code}
        )
        assert signed_in.status_code == 200, signed_in.text
        assert register(server, client, SoftAuthenticator()).status_code == 201
    database = server.database
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
        sekisho(server, policy_file, "users", "set-tier", "ren@example.com", "high_value")[0] == 0
    )
    with server.client() as client:
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
    deliver(server)
    tier_notice = smtp.wait_for("ren@example.com", 3)
    assert tier_notice["Subject"] == "The sign-in rules for your account changed"
    earlier = 3
    with server.client() as client:
        assert (
            client.post("/api/v1/signin/email", json={"email": "ren@example.com"}).status_code
            == 202
        )
        token, _code = queued_secrets(server)
        deliver(server)
        plain, _html = passkey_only_mail(
            smtp, "ren@example.com", earlier, "Sign in with your passkey"
        )
        assert "this email contains no link and no code" in plain
        by_link = client.post("/api/v1/signin/email/link/confirm", json={"token": token})
        assert by_link.status_code == 403
        assert by_link.json()["error"] == "signin_method_not_allowed"
        assert client.get("/api/v1/session").status_code == 401
    with server.client() as client:
        flow = client.post("/api/v1/signin/email", json={"email": "ren@example.com"})
        assert flow.status_code == 202
        _token, code = queued_secrets(server)
        deliver(server)
        passkey_only_mail(smtp, "ren@example.com", earlier + 1, "Sign in with your passkey")
        by_code = client.post(
            f"/api/v1/signin/email/flows/{flow.json()['flow_id']}/code", json={"code": code}
        )
        assert by_code.status_code == 403
        assert by_code.json()["error"] == "signin_method_not_allowed"
        assert "sekisho_session" not in " ".join(by_code.headers.get_list("set-cookie"))
        assert client.get("/api/v1/session").status_code == 401
    events = audit_of(server, "ren@example.com")
    rejected = [e.detail.get("via") for e in events if e.event == "signin.rejected"]
    assert rejected == ["code", "link"]
    assert all(e.detail["tier"] == "high_value" for e in events if e.event == "signin.rejected")
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


def test_a_stricter_tier_ends_the_sessions_it_would_not_admit(
    tiered: LiveServer, policy_file: Path, smtp: SmtpCapture
) -> None:
    """SECURITY.md case 50: moving into high_value ends the email session at once (a
    method the tier forbids cannot keep the account signed in) and keeps the passkey
    session; moving back ends nothing."""
    tiered.add_user("mio@example.com")
    authenticator = SoftAuthenticator()
    with tiered.client() as by_email, tiered.client() as by_passkey:
        assert email_code(smtp, by_email, "mio@example.com").status_code == 200
        assert register(tiered, by_email, authenticator).status_code == 201
        assert sign_in(tiered, by_passkey, authenticator).status_code == 200
        moved = sekisho(tiered, policy_file, "users", "set-tier", "mio@example.com", "high_value")
        assert moved[0] == 0
        assert by_email.get("/api/v1/session").status_code == 401
        assert by_passkey.get("/api/v1/session").status_code == 200
        back = sekisho(tiered, policy_file, "users", "set-tier", "mio@example.com", "standard")
        assert back[0] == 0
        assert by_passkey.get("/api/v1/session").status_code == 200
    assert [entry["tier"] for entry in tiered.audited("session.ended_by_tier")] == ["high_value"]


BRIEF_POLICY = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.brief]
description = "Shorter sessions than the AAL allows."
methods = ["passkey", "email"]
idle_timeout = "20m"
absolute_timeout = "3h"
"""


def test_a_tiers_timeouts_shorten_the_sessions_of_its_accounts(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """A tier's ``idle_timeout`` and ``absolute_timeout`` cut its accounts' sessions
    below the AAL's limits (AAL1: 30 days each); another tier's accounts keep those."""
    policy_file = tmp_path / "brief.toml"
    policy_file.write_text(BRIEF_POLICY, encoding="utf-8")
    clock = SettableClock()
    server = make_server(policy_file=policy_file, clock=clock)
    for address in ("aki@example.com", "sou@example.com"):
        server.add_user(address)
    assert sekisho(server, policy_file, "users", "set-tier", "aki@example.com", "brief")[0] == 0
    with server.client() as idle, server.client() as busy, server.client() as standard:
        for client, address in ((idle, "aki@example.com"), (busy, "aki@example.com")):
            assert email_code(smtp, client, address).status_code == 200
        assert email_code(smtp, standard, "sou@example.com").status_code == 200
        clock.advance(timedelta(minutes=10))
        assert _alive(busy)
        clock.advance(timedelta(minutes=9))
        assert _alive(idle), "19 minutes unused is within the tier's idle limit"
        assert _alive(busy)
        clock.advance(timedelta(minutes=10))
        assert _alive(busy)
        clock.advance(timedelta(minutes=10))
        assert not _alive(idle), "20 minutes unused since its last request"
        assert _alive(busy)
        assert _alive(standard), "the standard tier keeps the AAL1 idle limit"
        for _ in range(14):
            clock.advance(timedelta(minutes=10))
            assert _alive(busy)
        clock.advance(timedelta(minutes=2))
        assert not _alive(busy), "3 hours after sign-in, however active"
        assert _alive(standard)


def _alive(client: httpx.Client) -> bool:
    return client.get("/api/v1/session").status_code == 200
