"""The operator pages for operator-assisted recovery (``web/admin_recoveries.py``) over
real HTTP, on SQLite and PostgreSQL, with the real SMTP capture and the software
authenticator (issue 10 "Recovery that keeps the tier" and "Operators"; SECURITY.md case
54): one operator opens a case with a reason, a second one approves it and alone sees
the one-time code, on an answer no cache keeps; every refusal is a page that says why,
never a 500; the forms are CSRF-checked like every other form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from sekisho.i18n import gettext
from sekisho.store.tables import operator_recoveries
from sekisho.web.admin_recoveries import REFUSALS
from tests.conftest import ServerFactory
from tests.integration.admin.support import audit_events, bearer, create_key
from tests.integration.test_operator_recovery import (
    REASON,
    approve_on_the_command_line,
    high_value_holder,
    open_on_the_command_line,
    subject,
)
from tests.integration.test_tiers import email_code, sekisho
from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.recovery import wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

ALICE = "alice@example.com"
BOB = "bob@example.com"
HOLDER = "mio@example.com"
CASES = "/admin/recoveries"
CODE = re.compile(r'<code id="one-time-code" lang="en">([A-Z0-9-]+)</code>')
CASE = re.compile(r'id="case-([0-9a-f]{32})"')


@pytest.fixture
def server(make_server: ServerFactory, policy_file: Path) -> LiveServer:
    return make_server(policy_file=policy_file, admin_emails=[ALICE, BOB])


@pytest.fixture
def browsers(server: LiveServer) -> Iterator[list[FormBrowser]]:
    opened: list[FormBrowser] = []
    yield opened
    for browser in opened:
        browser.close()


def operator(
    server: LiveServer, smtp: SmtpCapture, browsers: list[FormBrowser], address: str
) -> FormBrowser:
    """A browser signed in as the operator ``address`` with a passkey (AAL2)."""
    server.add_user(address)
    browser = FormBrowser(server.url)
    browsers.append(browser)
    key = SoftAuthenticator()
    email_sign_in(server, smtp, browser.http, address)
    assert register(server, browser.http, key).status_code == 201
    assert sign_in(server, browser.http, key).json()["aal"] == 2
    return browser


def two_operators(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> tuple[FormBrowser, FormBrowser]:
    """Alice and Bob signed in with passkeys, and the passkey-only holder they help."""
    high_value_holder(server, smtp, policy_file, HOLDER)
    return operator(server, smtp, browsers, ALICE), operator(server, smtp, browsers, BOB)


def refusal(answer: httpx.Response, why: str, status: int = 409) -> None:
    """A refusal page saying ``why`` in English, with the way back to the cases."""
    assert answer.status_code == status, answer.text
    assert 'data-error="recovery_case_refused"' in answer.text
    assert _html(gettext("en", REFUSALS[why])) in answer.text
    assert f'href="{CASES}"' in answer.text


def _html(text: str) -> str:
    return text.replace("'", "&#39;")


def open_case(browser: FormBrowser, email: str = HOLDER) -> str:
    opened = browser.post(CASES, {"email": email, "reason": REASON})
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == CASES
    match = CASE.search(browser.http.get(CASES).text)
    assert match is not None
    return match.group(1)


def test_two_operators_recover_an_account_from_the_pages(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    alice, bob = two_operators(server, smtp, policy_file, browsers)
    assert 'href="/admin/recoveries"' in alice.http.get("/admin/migration").text

    case_id = open_case(alice)
    listed = alice.http.get(CASES).text
    assert 'href="/admin/migration"' in listed
    assert REASON in listed
    assert f"operator:{ALICE}" in listed
    assert f'action="/admin/recoveries/{case_id}/approve"' not in listed, "not for the opener"
    wait_for_subject(smtp, HOLDER, subject("operator_recovery_opened"))

    refusal(alice.post(f"{CASES}/{case_id}/approve", {}), "own_case")
    assert f'action="/admin/recoveries/{case_id}/approve"' in bob.http.get(CASES).text
    approved = bob.post(f"{CASES}/{case_id}/approve", {})
    assert approved.status_code == 200, approved.text
    assert approved.headers["cache-control"] == "no-store"
    code = CODE.search(approved.text)
    assert code is not None
    assert "/signin/recovery/operator" in approved.text
    wait_for_subject(smtp, HOLDER, subject("operator_recovery_approved"))
    after = bob.http.get(CASES).text
    assert code.group(1) not in after, "the code is shown once, on the approval only"
    assert f"operator:{BOB}" in after
    refusal(bob.post(f"{CASES}/{case_id}/approve", {}), "approved")

    with closing(FormBrowser(server.url)) as holder:
        used = holder.post("/signin/recovery/operator", {"email": HOLDER, "code": code.group(1)})
        assert used.status_code == 303, used.text
    refusal(bob.post(f"{CASES}/{case_id}/cancel", {"reason": "The holder never asked us"}), "used")
    assert 'data-state="used"' in bob.http.get(CASES).text

    events = audit_events(server, "recovery.operator.")
    assert [(event, outcome, ip) for event, outcome, ip, _detail in events] == [
        ("recovery.operator.opened", "success", f"operator:{ALICE}"),
        ("recovery.operator.approve_refused", "failure", f"operator:{ALICE}"),
        ("recovery.operator.approved", "success", f"operator:{BOB}"),
        ("recovery.operator.approve_refused", "failure", f"operator:{BOB}"),
        ("recovery.operator.used", "success", events[4][2]),
    ]
    assert events[0][3]["reason"] == REASON


def test_opening_refusals_show_the_form_again_with_why(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    high_value_holder(server, smtp, policy_file, HOLDER)
    alice = operator(server, smtp, browsers, ALICE)
    short = alice.post(CASES, {"email": HOLDER, "reason": "because"})
    assert short.status_code == 400, short.text
    assert 'id="error"' in short.text
    assert f'value="{HOLDER}"' in short.text
    assert ">because</textarea>" in short.text
    unknown = alice.post(CASES, {"email": "nobody@example.com", "reason": REASON})
    assert unknown.status_code == 409
    assert gettext("en", REFUSALS["no_account"]) in unknown.text
    open_case(alice)
    again = alice.post(CASES, {"email": HOLDER, "reason": REASON})
    assert again.status_code == 409
    assert gettext("en", REFUSALS["pending"]) in again.text
    ja = alice.post(CASES, {"email": HOLDER, "reason": REASON}, headers={"Accept-Language": "ja"})
    assert gettext("ja", REFUSALS["pending"]) in ja.text
    missing = alice.post(CASES, {"email": HOLDER})
    assert missing.status_code == 422
    assert 'data-error="invalid_field"' in missing.text


def test_cancel_with_a_reason_and_refusals_of_finished_or_unknown_cases(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    alice, bob = two_operators(server, smtp, policy_file, browsers)
    case_id = open_case(alice)
    refusal(bob.post(f"{CASES}/{case_id}/cancel", {"reason": "short"}), "cancel_reason", status=400)
    cancelled = bob.post(
        f"{CASES}/{case_id}/cancel", {"reason": "The holder says they never asked"}
    )
    assert cancelled.status_code == 303, cancelled.text
    listed = bob.http.get(CASES).text
    assert 'data-state="cancelled"' in listed
    assert f'action="/admin/recoveries/{case_id}/cancel"' not in listed
    wait_for_subject(smtp, HOLDER, subject("operator_recovery_cancelled"))
    refusal(bob.post(f"{CASES}/{case_id}/approve", {}), "cancelled")
    refusal(
        bob.post(f"{CASES}/{case_id}/cancel", {"reason": "Cancelled twice by mistake"}), "cancelled"
    )
    cancel_event = audit_events(server, "recovery.operator.cancelled")[0]
    assert cancel_event[2] == f"operator:{BOB}"
    assert cancel_event[3]["reason"] == "The holder says they never asked"

    expiring = open_case(alice)
    with server.database.engine.begin() as connection:
        connection.execute(
            update(operator_recoveries)
            .where(operator_recoveries.c.id == expiring)
            .values(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    refusal(bob.post(f"{CASES}/{expiring}/approve", {}), "expired")
    assert 'data-state="expired"' in bob.http.get(CASES).text
    refusal(bob.post(f"{CASES}/{'0' * 32}/approve", {}), "unknown")
    not_an_id = bob.post(f"{CASES}/nothing/approve", {})
    assert not_an_id.status_code == 404
    assert 'data-error="not_found"' in not_an_id.text


def test_only_operators_with_a_passkey_session_reach_the_pages(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    """Nobody signed in and a non-operator get the 404 of a missing page; an operator
    signed in by email gets ``operator_passkey_required``, an operator whose session may
    only add a passkey ``restricted_session``: for the list and for every form."""
    high_value_holder(server, smtp, policy_file, HOLDER)
    alice = operator(server, smtp, browsers, ALICE)
    case_id = open_case(alice)
    posts = [
        (CASES, {"email": HOLDER, "reason": REASON}),
        (f"{CASES}/{case_id}/approve", {}),
        (f"{CASES}/{case_id}/cancel", {"reason": "The holder says they never asked"}),
    ]

    def answers(browser: FormBrowser) -> list[httpx.Response]:
        return [browser.http.get(CASES), *(browser.post(path, data) for path, data in posts)]

    stranger = FormBrowser(server.url)
    browsers.append(stranger)
    holder = operator(server, smtp, browsers, "user@example.com")
    by_email = FormBrowser(server.url)
    browsers.append(by_email)
    server.add_user(BOB)
    email_sign_in(server, smtp, by_email.http, BOB)
    for who, code in (
        (stranger, "not_found"),
        (holder, "not_found"),
        (by_email, "operator_passkey_required"),
    ):
        for answer in answers(who):
            assert answer.status_code == (404 if code == "not_found" else 403), answer.text
            assert f'data-error="{code}"' in answer.text
    assert [event for event, *_rest in audit_events(server, "recovery.operator.")] == [
        "recovery.operator.opened"
    ]


def test_operator_forms_are_csrf_checked(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    high_value_holder(server, smtp, policy_file, HOLDER)
    alice = operator(server, smtp, browsers, ALICE)
    data = {"email": HOLDER, "reason": REASON}
    no_token = alice.http.post(CASES, data=data)
    assert no_token.status_code == 403
    assert 'data-error="csrf_failed"' in no_token.text
    cross_site = alice.post(CASES, data, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    other_origin = alice.post(CASES, data, headers={"Origin": "https://evil.example"})
    assert other_origin.status_code == 403
    assert CASE.search(alice.http.get(CASES).text) is None


def test_a_restricted_operator_session_is_refused(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path
) -> None:
    """An operator moved into a passkey-only tier who signs in by email gets a session
    that may only add a passkey: the recovery pages refuse it."""
    server.add_user(ALICE)
    status, _out, err = sekisho(server, policy_file, "users", "set-tier", ALICE, "moving")
    assert status == 0, err
    with closing(FormBrowser(server.url)) as alice:
        assert email_code(smtp, alice.http, ALICE).json()["restriction"] == "enrol_passkey"
        for answer in (
            alice.http.get(CASES),
            alice.post(CASES, {"email": HOLDER, "reason": REASON}),
        ):
            assert answer.status_code == 403, answer.text
            assert 'data-error="restricted_session"' in answer.text


def test_one_operator_cannot_approve_on_another_channel_what_they_opened_on_the_pages(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    """Pages + API and pages + command line by the same person are refused: the rule
    compares Alice, not her channels; Bob's key, on another channel, approves."""
    alice, _bob = two_operators(server, smtp, policy_file, browsers)
    case_id = open_case(alice)
    alice_id, alice_key = create_key(server, "recovery:approve", operator=ALICE)
    with server.client(headers=bearer(alice_key)) as api:
        own = api.post(f"/api/v1/admin/recoveries/{case_id}/approve", json={})
    assert own.status_code == 409, own.text
    assert own.json()["error"] == "recovery_case_refused"
    status, _out, err = approve_on_the_command_line(server, policy_file, case_id, ALICE.upper())
    assert status == 1
    assert "a second operator must" in err
    bob_id, bob_key = create_key(server, "recovery:approve", operator=BOB)
    with server.client(headers=bearer(bob_key)) as api:
        approved = api.post(f"/api/v1/admin/recoveries/{case_id}/approve", json={})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["opened_by"], approved.json()["approved_by"]) == (
        f"operator:{ALICE}",
        f"operator:{BOB}",
    )
    steps = [
        (event, detail["operator"], detail["channel"])
        for event, _outcome, _ip, detail in audit_events(server, "recovery.operator.")
    ]
    assert steps == [
        ("recovery.operator.opened", ALICE, "pages"),
        ("recovery.operator.approve_refused", ALICE, f"api-key:{alice_id}"),
        ("recovery.operator.approve_refused", ALICE, "cli"),
        ("recovery.operator.approved", BOB, f"api-key:{bob_id}"),
    ]


def test_a_case_opened_on_the_command_line_is_approved_on_the_pages_only_by_another(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    alice, bob = two_operators(server, smtp, policy_file, browsers)
    status, out, err = open_on_the_command_line(server, policy_file, HOLDER, BOB)
    assert status == 0, err
    found = re.search(r"^opened recovery (\S+) for ", out, re.MULTILINE)
    assert found is not None
    case_id = found.group(1)
    refusal(bob.post(f"{CASES}/{case_id}/approve", {}), "own_case")
    approved = alice.post(f"{CASES}/{case_id}/approve", {})
    assert approved.status_code == 200, approved.text
    assert CODE.search(approved.text) is not None


def test_a_case_whose_opener_names_no_operator_cannot_be_approved(
    server: LiveServer, smtp: SmtpCapture, policy_file: Path, browsers: list[FormBrowser]
) -> None:
    """A case opened before cases recorded people (its opener an API key id or a
    command-line name) could be approved by its own opener on another channel: it is
    refused, and can still be cancelled."""
    alice, bob = two_operators(server, smtp, policy_file, browsers)
    case_id = open_case(alice)
    with server.database.engine.begin() as connection:
        connection.execute(
            update(operator_recoveries)
            .where(operator_recoveries.c.id == case_id)
            .values(opened_by="api-key:0123456789abcdef")
        )
    refusal(bob.post(f"{CASES}/{case_id}/approve", {}), "unattributed")
    cancelled = bob.post(f"{CASES}/{case_id}/cancel", {"reason": REASON})
    assert cancelled.status_code == 303, cancelled.text
