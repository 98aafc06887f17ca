"""Recovery codes and recovery over real HTTP, on SQLite and PostgreSQL, with the real
SMTP capture and the software authenticator (SECURITY.md cases 31, 32 and 54; issue 10)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from sekisho.core import recovery_codes
from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from sekisho.store.tables import account_recoveries
from sekisho.store.tables import recovery_codes as recovery_codes_table
from tests.conftest import ServerFactory
from tests.support.attestation import AttestedDeployment, synced_and_hardware
from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
from tests.support.clock import SettableClock
from tests.support.passkeys import email_sign_in, refused_as_adding_a_passkey, register, sign_in
from tests.support.recovery import generate_codes, recover, subjects, wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of

Browsers = Callable[..., FormBrowser]
GROUPED = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


def subject(notice: str, locale: str = "en") -> str:
    return gettext(locale, NOTICES[notice][0])


def with_codes(server: LiveServer, smtp: SmtpCapture, browsers: Browsers, email: str) -> list[str]:
    """A user who signed in by email (no passkey yet) and made a set of codes."""
    server.add_user(email)
    owner = browsers()
    email_sign_in(server, smtp, owner.http, email)
    return generate_codes(owner)


def stored_digests(server: LiveServer) -> list[tuple[str, object]]:
    database = server.database
    try:
        with database.reading() as repos:
            rows = repos.connection.execute(
                select(recovery_codes_table.c.digest, recovery_codes_table.c.used_at)
            ).all()
            return [(row[0], row[1]) for row in rows]
    finally:
        database.dispose()


def test_codes_are_shown_once_stored_hashed_and_work_once(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    codes = with_codes(server, smtp, browsers, "ada@example.com")
    assert len(set(codes)) == 10
    assert all(GROUPED.match(code) for code in codes)
    assert recovery_codes.ENTROPY_BITS >= 64
    stored = stored_digests(server)
    assert len(stored) == 10
    plain = {recovery_codes.canonical(code) for code in codes} | set(codes)
    assert not plain.intersection(digest for digest, _used in stored)
    notice = wait_for_subject(smtp, "ada@example.com", subject("recovery_codes_generated"))
    assert "10" in text_of(notice)
    assert f"{server.url}/account" in text_of(notice)

    assert recover(browsers(), "ada@example.com", codes[0]) == 303
    replay = browsers()
    assert recover(replay, "ada@example.com", codes[0]) == 400
    assert not replay.signed_in()
    # Typed by hand: lower case, spaces, O for 0 and I/L for 1 are forgiven.
    sloppy = codes[1].lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert recover(browsers(), " ada@example.com ", sloppy) == 303
    used = wait_for_subject(smtp, "ada@example.com", subject("recovery_code_used"))
    assert "9" in text_of(used) or "8" in text_of(used)
    assert sum(1 for _digest, used_at in stored_digests(server) if used_at) == 2


def _comparable(response: httpx.Response) -> tuple[int, str, list[str]]:
    """Status, body without this browser's CSRF token and the echoed address, and the
    header names: what could tell an existing account from a missing one."""
    body = re.sub(r'name="csrf_token" value="[^"]+"', "", response.text)
    body = re.sub(r'name="email" type="email"([^>]*)value="[^"]*"', r"\1", body)
    names = sorted(name for name in response.headers if name not in ("date", "x-request-id"))
    return response.status_code, body, names


def test_unknown_address_wrong_and_used_codes_get_the_same_answer(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    codes = with_codes(server, smtp, browsers, "bea@example.com")
    server.add_user("nocodes@example.com")
    assert recover(browsers(), "bea@example.com", codes[0]) == 303
    attempts = [
        ("bea@example.com", codes[0]),  # used
        ("bea@example.com", "ABCD-EFGH-JKMN-PQRS"),  # wrong
        ("nobody@example.com", codes[1]),  # unknown address, a real code of someone else
        ("nocodes@example.com", codes[2]),  # an account without codes
    ]
    answers = []
    for email, code in attempts:
        browser = browsers()
        browser.csrf()
        response = browser.post("/signin/recovery", {"email": email, "code": code})
        answers.append(_comparable(response))
    assert answers[0][0] == 400
    assert all(answer == answers[0] for answer in answers), [a[0] for a in answers]
    malformed = browsers().post("/signin/recovery", {"email": "bea@example.com", "code": "123"})
    assert malformed.status_code == 422


def test_recovery_attempts_are_throttled(make_server: ServerFactory, smtp: SmtpCapture) -> None:
    server = make_server(limit_recovery_per_address="3/hour")
    server.add_user("cy@example.com")
    for email in ("cy@example.com", "nobody@example.com"):
        browser = FormBrowser(server.url)
        try:
            statuses = [recover(browser, email, "ABCD-EFGH-JKMN-PQRS") for _attempt in range(4)]
            last = browser.post("/signin/recovery", {"email": email, "code": "ABCD-EFGH-JKMN-PQRS"})
        finally:
            browser.close()
        assert statuses == [400, 400, 400, 429], email
        assert last.status_code == 429
        assert int(last.headers["Retry-After"]) >= 1


def test_a_code_raced_in_parallel_signs_in_once(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    codes = with_codes(server, smtp, browsers, "dot@example.com")
    # Five racers: the four losers stay within the free failures per address, after
    # which the progressive delay (429) would answer instead.
    racers = [browsers() for _ in range(5)]
    for racer in racers:
        racer.csrf()
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(racers))

    def race(browser: FormBrowser) -> None:
        start.wait()
        status = recover(browser, "dot@example.com", codes[3])
        with lock:
            results.append(status)

    threads = [threading.Thread(target=race, args=(racer,)) for racer in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [303] + [400] * 4


def test_recovery_session_adds_a_passkey_only_then_ends_the_others_and_holds(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    lost = SoftAuthenticator()
    owner = browsers()
    server.add_user("eve@example.com")
    email_sign_in(server, smtp, owner.http, "eve@example.com")
    codes = generate_codes(owner)
    old = register(server, owner.http, lost)
    assert old.status_code == 201, old.text
    with httpx.Client(base_url=server.url) as other:
        assert sign_in(server, other, lost).status_code == 200

        rescuer = browsers()
        rescuer.http.headers["Accept-Language"] = "ja"
        assert recover(rescuer, "eve@example.com", codes[0]) == 303
        page = rescuer.http.get("/account")
        assert page.status_code == 200
        assert 'id="add-passkey"' in page.text
        http = rescuer.http
        assert http.get("/api/v1/session").json()["restriction"] == "recovery"
        for response in (
            http.get("/api/v1/passkeys"),
            http.get("/api/v1/sessions"),
            http.delete(f"/api/v1/passkeys/{old.json()['id']}"),
            http.patch(f"/api/v1/passkeys/{old.json()['id']}", json={"name": "x"}),
            http.post("/api/v1/sessions/revoke-others", json={}),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "session_restricted"
        for path in ("/account/recovery-codes", "/account/sessions/revoke-others"):
            refused = rescuer.post(path, {})
            assert refused.status_code == 403
            assert 'data-error="session_restricted"' in refused.text
        assert http.get("/admin/migration").status_code == 404

        replacement = SoftAuthenticator()
        added = register(server, http, replacement)
        assert added.status_code == 201, added.text
        assert other.get("/api/v1/session").status_code == 401
        assert owner.http.get("/api/v1/session").status_code == 401
        again = http.post("/api/v1/passkeys/registration/options", json={})
        assert again.status_code == 403
        assert again.json()["error"] == "session_restricted"
        done = rescuer.http.get("/account")
        assert 'id="recovery-complete"' in done.text
        new_codes = generate_codes(rescuer)
        assert not set(new_codes).intersection(codes)
        assert recover(browsers(), "eve@example.com", codes[1]) == 400

    with httpx.Client(base_url=server.url) as fresh:
        signed = sign_in(server, fresh, replacement)
        assert signed.status_code == 200
        assert signed.json()["aal"] == 2
        held = fresh.delete(f"/api/v1/passkeys/{old.json()['id']}")
        assert held.status_code == 403
        assert held.json()["error"] == "recovery_hold"
        assert held.json()["until"]
    holder = browsers()
    sign_in(server, holder.http, replacement)
    refused = holder.post("/account/recovery-codes", {})
    assert refused.status_code == 403
    assert 'data-error="recovery_hold"' in refused.text
    assert 'id="recovery-hold"' in holder.http.get("/account").text

    for notice in ("recovery_code_used", "recovery_completed", "recovery_codes_generated"):
        japanese = subject(notice, "ja")
        assert japanese != subject(notice, "en")
        message = wait_for_subject(smtp, "eve@example.com", japanese)
        assert message["To"] == "eve@example.com"
    completed = wait_for_subject(smtp, "eve@example.com", subject("recovery_completed", "ja"))
    assert "Passkey" in text_of(completed)


def test_the_hold_ends_after_its_period(make_server: ServerFactory, smtp: SmtpCapture) -> None:
    server = make_server(recovery_hold="PT1S")
    server.add_user("fay@example.com")
    lost = SoftAuthenticator()
    replacement = SoftAuthenticator()
    owner = FormBrowser(server.url)
    rescuer = FormBrowser(server.url)
    try:
        email_sign_in(server, smtp, owner.http, "fay@example.com")
        codes = generate_codes(owner)
        old = register(server, owner.http, lost).json()
        assert recover(rescuer, "fay@example.com", codes[0]) == 303
        assert register(server, rescuer.http, replacement).status_code == 201
    finally:
        owner.close()
        rescuer.close()
    with httpx.Client(base_url=server.url) as fresh:
        assert sign_in(server, fresh, replacement).status_code == 200
        time.sleep(1.2)
        assert fresh.delete(f"/api/v1/passkeys/{old['id']}").status_code == 204


def test_new_codes_need_a_fresh_passkey_sign_in_when_the_account_has_one(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    clock = SettableClock()
    server = make_server(clock=clock)
    server.add_user("gus@example.com")
    authenticator = SoftAuthenticator()
    browser = FormBrowser(server.url)
    passkey_browser = FormBrowser(server.url)
    try:
        email_sign_in(server, smtp, browser.http, "gus@example.com")
        assert register(server, browser.http, authenticator).status_code == 201
        by_email = browser.post("/account/recovery-codes", {})
        assert by_email.status_code == 403
        assert 'data-error="reauthentication_required"' in by_email.text
        assert sign_in(server, passkey_browser.http, authenticator).status_code == 200
        assert len(generate_codes(passkey_browser)) == 10
        clock.advance(server.settings.recovery_codes_reauthentication_window + timedelta(seconds=1))
        stale = passkey_browser.post("/account/recovery-codes", {})
        assert stale.status_code == 403
        assert 'id="recovery-reauth-note"' in passkey_browser.http.get("/account").text
    finally:
        browser.close()
        passkey_browser.close()


def test_an_account_holding_an_aal3_key_makes_new_codes_only_with_that_key(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    """SECURITY.md case 31: new codes need the account's *highest* AAL. A synced
    passkey's AAL2 session gets the refusal adding a passkey gets; the attested
    device-bound key's AAL3 session may make them."""
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    server = make_server(**attested.settings())
    server.add_user("kou@example.com")
    synced, hardware = synced_and_hardware(server, smtp, attested, "kou@example.com")
    with server.client() as weak, server.client() as strong:
        assert sign_in(server, weak, synced).json()["aal"] == 2
        assert weak.get("/api/v1/recovery-codes").json()["may_generate"] is False
        refused_as_adding_a_passkey(weak, weak.post("/api/v1/recovery-codes", json={}))
        assert weak.get("/api/v1/recovery-codes").json()["remaining"] == 0

        assert sign_in(server, strong, hardware).json()["aal"] == 3
        assert strong.get("/api/v1/recovery-codes").json()["may_generate"] is True
        made = strong.post("/api/v1/recovery-codes", json={})
        assert made.status_code == 201, made.text
        assert len(made.json()["codes"]) == 10


def test_download_echoes_only_well_formed_codes(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("hal@example.com")
    owner = browsers()
    email_sign_in(server, smtp, owner.http, "hal@example.com")
    codes = generate_codes(owner)
    download = owner.post("/account/recovery-codes/download", {"code": codes})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert "attachment" in download.headers["content-disposition"]
    assert all(code in download.text for code in codes)
    hostile = owner.post("/account/recovery-codes/download", {"code": ["<script>x</script>"]})
    assert hostile.status_code == 422
    assert browsers().post("/account/recovery-codes/download", {"code": codes}).status_code == 401


@pytest.mark.parametrize(("language", "other"), [("ja", "en"), ("en", "ja")])
def test_a_sign_in_from_a_new_browser_is_notified(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers, language: str, other: str
) -> None:
    """Once per new browser, in that browser's language."""
    server.add_user("ivy@example.com")
    first = browsers()
    first.http.headers["Accept-Language"] = other
    email_sign_in(server, smtp, first.http, "ivy@example.com")
    email_sign_in(server, smtp, first.http, "ivy@example.com")
    second = browsers()
    second.http.headers["Accept-Language"] = language
    email_sign_in(server, smtp, second.http, "ivy@example.com")
    notice = wait_for_subject(smtp, "ivy@example.com", subject("new_browser", language))
    assert f"{server.url}/account" in text_of(notice)
    email_sign_in(server, smtp, second.http, "ivy@example.com")
    email_sign_in(server, smtp, first.http, "ivy@example.com")
    time.sleep(0.5)  # let the worker deliver anything else it was given
    titles = subjects(smtp, "ivy@example.com")
    assert titles.count(subject("new_browser", language)) == 1
    assert subject("new_browser", other) not in titles


def test_operator_pages_refuse_an_email_session_in_both_languages(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(admin_emails=["op@example.com"])
    server.add_user("op@example.com")
    key = SoftAuthenticator()
    with httpx.Client(base_url=server.url) as operator:
        email_sign_in(server, smtp, operator, "op@example.com")
        for language in ("en", "ja"):
            refused = operator.get("/admin/migration", headers={"Accept-Language": language})
            assert refused.status_code == 403
            assert 'data-error="operator_passkey_required"' in refused.text
            heading = gettext(language, "Sign in with a passkey")
            assert f"<h1>{heading}</h1>" in refused.text
        assert "パスキーでのサインインが必要です" in refused.text
        assert operator.get("/admin/migration?format=json").status_code == 403
        assert register(server, operator, key).status_code == 201
        assert operator.get("/admin/migration").status_code == 403
    with httpx.Client(base_url=server.url) as operator:
        assert sign_in(server, operator, key).status_code == 200
        assert operator.get("/admin/migration").status_code == 200
        assert operator.get("/admin/migration?format=json").status_code == 200


def test_the_json_api_recovers_the_same_way(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("jo@example.com")
    with httpx.Client(base_url=server.url) as owner:
        email_sign_in(server, smtp, owner, "jo@example.com")
        status = owner.get("/api/v1/recovery-codes").json()
        assert status["remaining"] == 0
        assert status["may_generate"] is True
        made = owner.post("/api/v1/recovery-codes", json={})
        assert made.status_code == 201, made.text
        codes = made.json()["codes"]
        assert len(codes) == 10
        assert owner.get("/api/v1/recovery-codes").json()["remaining"] == 10
    with httpx.Client(base_url=server.url) as rescuer:
        body = {"email": "jo@example.com", "recovery_code": codes[0]}
        recovered = rescuer.post("/api/v1/signin/recovery", json=body)
        assert recovered.status_code == 200, recovered.text
        session = recovered.json()
        assert (session["aal"], session["amr"], session["restriction"]) == (1, ["otp"], "recovery")
        early = rescuer.post("/api/v1/recovery-codes", json={})
        assert early.status_code == 403
        assert early.json()["error"] == "session_restricted"
        assert register(server, rescuer, SoftAuthenticator()).status_code == 201
        assert rescuer.post("/api/v1/recovery-codes", json={}).status_code == 201
        held = rescuer.get("/api/v1/recovery-codes").json()
        assert held["hold_until"] is not None
        assert rescuer.delete("/api/v1/session").status_code == 204
    with httpx.Client(base_url=server.url) as stranger:
        replay = stranger.post("/api/v1/signin/recovery", json=body)
        unknown = stranger.post(
            "/api/v1/signin/recovery", json={"email": "no@example.com", "recovery_code": codes[1]}
        )
        assert replay.status_code == unknown.status_code == 400
        assert replay.json() == unknown.json()
        assert replay.json()["error"] == "recovery_failed"
        malformed = stranger.post(
            "/api/v1/signin/recovery", json={"email": "jo@example.com", "recovery_code": "x"}
        )
        assert malformed.status_code == 422
        assert malformed.json() == {
            "error": "invalid_field",
            "message": "A field is missing, repeated or malformed.",
            "field": "recovery_code",
        }


def test_purge_removes_recoveries_long_over(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    codes = with_codes(server, smtp, browsers, "kim@example.com")
    assert recover(browsers(), "kim@example.com", codes[0]) == 303
    rescuer = browsers()
    assert recover(rescuer, "kim@example.com", codes[1]) == 303
    assert register(server, rescuer.http, SoftAuthenticator()).status_code == 201
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    with server.database.engine.begin() as connection:
        connection.execute(
            update(account_recoveries).values(started_at=long_ago, hold_until=long_ago)
        )
        connection.execute(
            update(account_recoveries)
            .where(account_recoveries.c.completed_at.is_(None))
            .values(hold_until=None)
        )
    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")
    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["account_recoveries"] == "2"
