"""Changing the account's email address over real HTTP, on SQLite and PostgreSQL, with
the real SMTP capture and the software authenticator (SECURITY.md case 31; issue 10)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from sekisho.store.tables import account_recoveries, audit_events, email_changes, users
from tests.conftest import ServerFactory
from tests.support.attestation import AttestedDeployment, synced_and_hardware
from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
from tests.support.clock import SettableClock
from tests.support.loop import run_async
from tests.support.outbox import outbox_worker
from tests.support.passkeys import email_sign_in, refused_as_adding_a_passkey, register, sign_in
from tests.support.recovery import generate_codes, recover, wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import CODE, SmtpCapture, link_and_code, text_of

Browsers = Callable[..., FormBrowser]
CONFIRM_LINK = re.compile(r"https?://\S+/account/email/confirm\?token=([A-Za-z0-9_\-%]+)")


def confirmation(smtp: SmtpCapture, address: str, count: int = 1) -> tuple[str, str, str]:
    """The link, its token and the code of the ``count``-th message to ``address``."""
    text = text_of(smtp.wait_for(address, count))
    link = CONFIRM_LINK.search(text)
    assert link is not None, text
    code = CODE.search(CONFIRM_LINK.sub("", text))
    assert code is not None, text
    return link.group(0), link.group(1), code.group(1)


def changed_subject(locale: str = "en") -> str:
    return gettext(locale, NOTICES["email_changed"][0])


def email_of(server: LiveServer, user_id: str) -> str:
    database = server.database
    try:
        with database.reading() as repos:
            user = repos.users.by_id(user_id)
            assert user is not None
            return user.email
    finally:
        database.dispose()


def events(server: LiveServer, name: str) -> list[str]:
    with server.database.engine.connect() as connection:
        return list(
            connection.execute(select(audit_events.c.outcome).where(audit_events.c.event == name))
            .scalars()
            .all()
        )


def test_a_passkey_account_needs_a_passkey_then_the_link_changes_it_and_tells_the_old(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    user_id = server.add_user("old@example.com")
    key = SoftAuthenticator()
    with server.client() as first, server.client() as other, server.client() as owner:
        email_sign_in(server, smtp, first, "old@example.com")
        email_sign_in(server, smtp, other, "old@example.com")
        assert register(server, first, key).status_code == 201
        # An email sign-in does not prove an account that has a passkey.
        refused = other.post("/api/v1/account/email", json={"email": "new@example.com"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauthentication_required"

        assert sign_in(server, owner, key).status_code == 200
        asked = owner.post("/api/v1/account/email", json={"email": "New@Example.com"})
        assert asked.status_code == 202, asked.text
        assert asked.json() == {"status": "sent"}
        link, token, _code = confirmation(smtp, "new@example.com")
        assert email_of(server, user_id) == "old@example.com"

        # Opening the link only looks (a mail scanner changes nothing).
        with server.client() as elsewhere:
            looked = elsewhere.get(link.replace(server.settings.public_origin, ""))
            assert looked.status_code == 200
            assert 'id="email-link-form"' in looked.text
            assert email_of(server, user_id) == "old@example.com"
            done = elsewhere.post("/api/v1/account/email/link", json={"token": token})
            assert done.status_code == 200, done.text
            assert done.json() == {"email": "new@example.com"}
            again = elsewhere.post("/api/v1/account/email/link", json={"token": token})
            assert again.status_code == 400
            assert again.json()["error"] == "email_change_invalid"

        assert email_of(server, user_id) == "new@example.com"
        # Every other session ended; the one that asked stays.
        assert first.get("/api/v1/session").status_code == 401
        assert other.get("/api/v1/session").status_code == 401
        assert owner.get("/api/v1/session").status_code == 200

    notice = wait_for_subject(smtp, "old@example.com", changed_subject())
    assert notice["To"] == "old@example.com"
    assert "new@example.com" in text_of(notice)
    assert f"{server.url}/account" in text_of(notice)
    assert events(server, "email.changed") == ["success"]
    with server.client() as later:
        email_sign_in(server, smtp, later, "new@example.com")
        assert later.get("/api/v1/session").json()["user_id"] == user_id


def test_an_account_holding_an_aal3_key_changes_its_address_only_with_that_key(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """SECURITY.md case 31: re-authentication at the account's *highest* AAL. A synced
    passkey's AAL2 session gets the refusal adding a passkey gets; the attested
    device-bound key's AAL3 session may ask."""
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    server = make_server(**attested.settings())
    user_id = server.add_user("aki@example.com")
    synced, hardware = synced_and_hardware(server, smtp, attested, "aki@example.com")
    with server.client() as weak, server.client() as strong:
        assert sign_in(server, weak, synced).json()["aal"] == 2
        refused_as_adding_a_passkey(
            weak, weak.post("/api/v1/account/email", json={"email": "aki2@example.com"})
        )
        assert email_of(server, user_id) == "aki@example.com"

        assert sign_in(server, strong, hardware).json()["aal"] == 3
        asked = strong.post("/api/v1/account/email", json={"email": "aki2@example.com"})
        assert asked.status_code == 202, asked.text
        _link, _token, code = confirmation(smtp, "aki2@example.com")
        done = strong.post("/api/v1/account/email/code", json={"code": code})
        assert done.status_code == 200, done.text
    assert email_of(server, user_id) == "aki2@example.com"
    assert len(smtp.to("aki2@example.com")) == 1, "the AAL2 session's request sent nothing"


def test_an_email_only_account_confirms_by_code_on_the_pages_in_japanese(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    user_id = server.add_user("hana@example.com")
    browser = browsers()
    browser.http.headers["Accept-Language"] = "ja"
    email_sign_in(server, smtp, browser.http, "hana@example.com")
    account = browser.http.get("/account")
    assert 'id="email-change-form"' in account.text

    same = browser.post("/account/email", {"email": "hana@example.com"})
    assert same.status_code == 422
    assert 'role="alert"' in same.text
    sent = browser.post("/account/email", {"email": "hana.new@example.com"})
    assert sent.status_code == 200, sent.text
    assert 'id="email-change-sent"' in sent.text
    mail = smtp.wait_for("hana.new@example.com")
    assert str(mail["Subject"]) != gettext("en", "Confirm your new email address: code %(code)s")
    _link, _token, code = confirmation(smtp, "hana.new@example.com")

    wrong = "000000" if code != "000000" else "111111"
    missed = browser.post("/account/email/code", {"code": wrong, "email": "hana.new@example.com"})
    assert missed.status_code == 400
    assert 'id="email-code-form"' in missed.text
    malformed = browser.post("/account/email/code", {"code": "12", "email": "x"})
    assert malformed.status_code == 422
    done = browser.post("/account/email/code", {"code": code, "email": "hana.new@example.com"})
    assert done.status_code == 200, done.text
    assert 'id="email-changed"' in done.text
    assert email_of(server, user_id) == "hana.new@example.com"
    reused = browser.post("/account/email/code", {"code": code, "email": "x"})
    assert reused.status_code == 400
    assert 'data-error="email_change_invalid"' in reused.text

    notice = wait_for_subject(smtp, "hana@example.com", changed_subject("ja"))
    assert "hana.new@example.com" in text_of(notice)
    assert events(server, "email.change_code_failed") == ["failure"]


def test_a_taken_address_gets_the_same_answer_and_its_owner_is_told(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(limit_email_changes_per_account="10/hour")
    asker_id = server.add_user("ian@example.com")
    server.add_user("taken@example.com")
    answers = []
    pages = []
    for address in ("taken@example.com", "free@example.com"):
        with server.client() as client:
            email_sign_in(server, smtp, client, "ian@example.com")
            response = client.post("/api/v1/account/email", json={"email": address})
            answers.append((response.status_code, response.json()))
        browser = FormBrowser(server.url)
        try:
            email_sign_in(server, smtp, browser.http, "ian@example.com")
            page = browser.post("/account/email", {"email": address})
        finally:
            browser.close()
        body = re.sub(r'name="csrf_token" value="[^"]+"', "", page.text).replace(address, "X")
        pages.append((page.status_code, body))
    assert answers[0] == answers[1] == (202, {"status": "sent"})
    assert pages[0] == pages[1]

    told = smtp.wait_for("taken@example.com", 2)
    assert str(told["Subject"]) == gettext("en", "This address already has an account")
    assert not CONFIRM_LINK.search(text_of(told))
    assert CODE.search(text_of(told)) is None
    confirmation(smtp, "free@example.com", 2)
    with server.database.engine.connect() as connection:
        pending = connection.execute(select(email_changes.c.new_email)).scalars().all()
    assert set(pending) == {"free@example.com"}
    assert email_of(server, asker_id) == "ian@example.com"


def test_the_address_taken_meanwhile_is_refused_at_confirmation(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    user_id = server.add_user("jo@example.com")
    with server.client() as client:
        email_sign_in(server, smtp, client, "jo@example.com")
        assert client.post("/api/v1/account/email", json={"email": "late@example.com"}).is_success
        _link, token, _code = confirmation(smtp, "late@example.com")
        server.add_user("late@example.com")
        refused = client.post("/api/v1/account/email/link", json={"token": token})
        assert refused.status_code == 409
        assert refused.json()["error"] == "email_change_unavailable"
    assert email_of(server, user_id) == "jo@example.com"


def test_expired_and_superseded_links_and_codes_are_refused(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    user_id = server.add_user("kai@example.com")
    with server.client() as client:
        email_sign_in(server, smtp, client, "kai@example.com")
        assert client.post("/api/v1/account/email", json={"email": "k1@example.com"}).is_success
        _link, first, first_code = confirmation(smtp, "k1@example.com")
        assert client.post("/api/v1/account/email", json={"email": "k2@example.com"}).is_success
        _link, second, second_code = confirmation(smtp, "k2@example.com")
        superseded = client.post("/api/v1/account/email/link", json={"token": first})
        assert superseded.status_code == 400
        assert superseded.json()["error"] == "email_change_invalid"

        long_ago = datetime.now(UTC) - timedelta(minutes=1)
        with server.database.engine.begin() as connection:
            connection.execute(update(email_changes).values(expires_at=long_ago))
        for response in (
            client.post("/api/v1/account/email/link", json={"token": second}),
            client.post("/api/v1/account/email/code", json={"code": second_code}),
        ):
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "email_change_invalid"
        unknown = client.post("/api/v1/account/email/link", json={"token": "x" * 43})
        assert unknown.status_code == 400
        assert first_code  # the superseded code is dead with its link
    assert email_of(server, user_id) == "kai@example.com"


def test_code_attempts_are_capped(make_server: ServerFactory, smtp: SmtpCapture) -> None:
    server = make_server(email_code_attempts=2)
    user_id = server.add_user("lee@example.com")
    with server.client() as client:
        email_sign_in(server, smtp, client, "lee@example.com")
        assert client.post("/api/v1/account/email", json={"email": "l2@example.com"}).is_success
        _link, _token, code = confirmation(smtp, "l2@example.com")
        wrong = "000000" if code != "000000" else "111111"
        statuses = [
            client.post("/api/v1/account/email/code", json={"code": wrong}).json()["error"]
            for _attempt in range(2)
        ]
        assert statuses == ["code_incorrect", "code_incorrect"]
        spent = client.post("/api/v1/account/email/code", json={"code": code})
        assert spent.status_code == 400
        assert spent.json()["error"] == "email_change_invalid"
    assert email_of(server, user_id) == "lee@example.com"


def test_a_recovery_session_and_a_recovery_hold_are_refused(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    user_id = server.add_user("max@example.com")
    owner = browsers()
    email_sign_in(server, smtp, owner.http, "max@example.com")
    codes = generate_codes(owner)
    rescuer = browsers()
    assert recover(rescuer, "max@example.com", codes[0]) == 303
    restricted = rescuer.http.post("/api/v1/account/email", json={"email": "m2@example.com"})
    assert restricted.status_code == 403
    assert restricted.json()["error"] == "session_restricted"
    page = rescuer.post("/account/email", {"email": "m2@example.com"})
    assert page.status_code == 403

    # A change asked before the hold began cannot be confirmed during it either.
    with server.client() as client:
        email_sign_in(server, smtp, client, "max@example.com")
        assert client.post("/api/v1/account/email", json={"email": "m3@example.com"}).is_success
        _link, token, _code = confirmation(smtp, "m3@example.com")
        now = datetime.now(UTC)
        with server.database.engine.begin() as connection:
            connection.execute(
                insert(account_recoveries).values(
                    session_id="held",
                    user_id=user_id,
                    started_at=now,
                    completed_at=now,
                    hold_until=now + timedelta(hours=1),
                )
            )
        held = client.post("/api/v1/account/email", json={"email": "m4@example.com"})
        assert held.status_code == 403
        assert held.json()["error"] == "recovery_hold"
        late = client.post("/api/v1/account/email/link", json={"token": token})
        assert late.status_code == 403
        assert late.json()["error"] == "recovery_hold"
        assert 'id="email-change-form"' not in client.get("/account").text
    assert email_of(server, user_id) == "max@example.com"
    assert not smtp.to("m4@example.com")


def test_a_stale_sign_in_and_too_many_requests_are_refused(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    clock = SettableClock()
    server = make_server(clock=clock, limit_email_changes_per_account="2/hour")
    server.add_user("ned@example.com")
    with server.client() as stale:
        email_sign_in(server, smtp, stale, "ned@example.com")
        clock.advance(server.settings.recovery_codes_reauthentication_window + timedelta(seconds=1))
        refused = stale.post("/api/v1/account/email", json={"email": "n1@example.com"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauthentication_required"
        assert 'id="email-reauth-note"' in stale.get("/account").text
    with server.client() as client:
        email_sign_in(server, smtp, client, "ned@example.com")
        asked = client.post("/api/v1/account/email", json={"email": "n2@example.com"})
        assert asked.status_code == 202
        # The per-account limit counted the refused request too.
        limited = client.post("/api/v1/account/email", json={"email": "n3@example.com"})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
    with server.database.engine.connect() as connection:
        assert connection.execute(select(users.c.email)).scalars().all() == ["ned@example.com"]


def test_malformed_requests_are_refused(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("oz@example.com")
    with server.client() as client:
        anonymous = client.post("/api/v1/account/email", json={"email": "o2@example.com"})
        assert anonymous.status_code == 401
        email_sign_in(server, smtp, client, "oz@example.com")
        bad = client.post("/api/v1/account/email", json={"email": "not-an-address"})
        assert bad.status_code == 422
        extra = client.post("/api/v1/account/email", json={"email": "o2@example.com", "x": 1})
        assert extra.status_code == 422


def test_purge_removes_changes_long_expired(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("pia@example.com")
    with server.client() as client:
        email_sign_in(server, smtp, client, "pia@example.com")
        for address in ("p1@example.com", "p2@example.com"):
            assert client.post("/api/v1/account/email", json={"email": address}).is_success
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    with server.database.engine.begin() as connection:
        connection.execute(
            update(email_changes)
            .where(email_changes.c.new_email == "p1@example.com")
            .values(expires_at=long_ago)
        )
    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")
    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["email_changes"] == "1"
    with server.database.engine.connect() as connection:
        left = connection.execute(select(email_changes.c.new_email)).scalars().all()
    assert left == ["p2@example.com"]


TIERS = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.moving]
methods = ["passkey"]
signin_aal = 2
email_recovery = true
"""


def test_a_tier_restricted_session_is_refused(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(TIERS, encoding="utf-8")
    server = make_server(policy_file=policy)
    user_id = server.add_user("quin@example.com")
    moved = run_sekisho(
        server.settings.database_url,
        "users",
        "set-tier",
        "quin@example.com",
        "moving",
        SEKISHO_POLICY_FILE=str(policy),
    )
    assert moved.returncode == 0, moved.stderr
    wait_for_subject(smtp, "quin@example.com", gettext("en", NOTICES["tier_changed"][0]))
    with server.client() as client:
        email_sign_in(server, smtp, client, "quin@example.com")
        assert client.get("/api/v1/session").json()["restriction"] == "enrol_passkey"
        refused = client.post("/api/v1/account/email", json={"email": "q2@example.com"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "restricted_session"
        code = client.post("/api/v1/account/email/code", json={"code": "123456"})
        assert code.json()["error"] == "restricted_session"
    assert email_of(server, user_id) == "quin@example.com"
    assert not smtp.to("q2@example.com")


def test_a_confirmation_superseded_before_it_is_sent_is_not_sent(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(mail_worker=False)
    server.add_user("rui@example.com")
    database = server.database

    async def deliver() -> int:
        """One batch, by a worker (and SMTP connection) of this event loop's own."""
        worker, sender = outbox_worker(server, database)
        handled = await worker.deliver_due(limit=10)
        await sender.idle()
        return handled

    try:
        with server.client() as client:
            flow = client.post("/api/v1/signin/email", json={"email": "rui@example.com"})
            assert run_async(deliver()) == 1
            _link, code = link_and_code(smtp.wait_for("rui@example.com"))
            signed = client.post(
                f"/api/v1/signin/email/flows/{flow.json()['flow_id']}/code", json={"code": code}
            )
            assert signed.status_code == 200, signed.text
            for address in ("r1@example.com", "r2@example.com"):
                assert client.post("/api/v1/account/email", json={"email": address}).is_success
        assert run_async(deliver()) >= 2
        confirmation(smtp, "r2@example.com")
        assert not smtp.to("r1@example.com")
        with database.engine.connect() as connection:
            dropped = connection.execute(
                select(audit_events.c.email).where(
                    audit_events.c.event == "mail.dropped",
                    audit_events.c.detail.contains("change_ended"),
                )
            )
            assert list(dropped.scalars()) == ["r1@example.com"]
    finally:
        database.dispose()
