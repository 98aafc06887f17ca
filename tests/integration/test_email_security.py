"""SECURITY.md cases 1-16 for email sign-in, black-box: HTTP in, SMTP out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser
from tests.support.clock import SettableClock
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, html_of, link_and_code, text_of

Browsers = Callable[..., FormBrowser]
SCANNER_UA = "Mozilla/5.0 (compatible; SafeLinks-Scanner/2.0)"


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def _path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def _mail(
    server: LiveServer, smtp: SmtpCapture, browser: FormBrowser, address: str, nth: int = 1
) -> tuple[str, str, str]:
    flow = browser.request_email(address)
    link, code = link_and_code(smtp.wait_for(address, nth))
    return flow, link, code


def test_case1_get_and_head_never_consume(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("carol@example.com")
    browser = browsers()
    _flow, link, _code = _mail(server, smtp, browser, "carol@example.com")
    for _ in range(3):
        with httpx.Client(headers={"User-Agent": SCANNER_UA}, base_url=server.url) as scanner:
            seen = scanner.get(_path(link))
            assert seen.status_code == 200
            assert not any("sekisho_session" in v for v in seen.headers.get_list("set-cookie"))
            assert scanner.head(_path(link)).status_code == 200
    response = browser.post("/signin/email/link", {"token": _token(link)})
    assert response.status_code == 303
    assert browser.signed_in()


def test_case2_bot_without_binding_gets_no_session(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("dave@example.com")
    user = browsers()
    _flow, link, _code = _mail(server, smtp, user, "dave@example.com")
    bot = browsers(user_agent=SCANNER_UA)
    page = bot.http.get(_path(link))
    assert 'action="/signin/email/link/code"' in page.text
    assert 'action="/signin/email/link"' not in page.text.replace('action="/signin/email/link/', "")
    refused = bot.post("/signin/email/link", {"token": _token(link)})
    assert refused.status_code == 403
    assert "other_browser" in refused.text
    assert bot.session_cookie() is None
    assert user.post("/signin/email/link", {"token": _token(link)}).status_code == 303


def test_case3_parallel_redemption_gives_one_session(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("erin@example.com")
    browser = browsers()
    _flow, link, _code = _mail(server, smtp, browser, "erin@example.com")
    token, csrf = _token(link), browser.csrf()

    def redeem(_: int) -> int:
        with httpx.Client(base_url=server.url, cookies=dict(browser.http.cookies)) as client:
            return client.post(
                "/signin/email/link", data={"csrf_token": csrf, "token": token}
            ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(redeem, range(20)))
    assert statuses.count(303) == 1, statuses
    assert all(status == 400 for status in statuses if status != 303)
    with server.database.engine.connect() as connection:
        sessions = connection.execute(text("SELECT count(*) FROM sessions")).scalar_one()
    assert sessions == 1


def test_case4_used_and_expired_tokens_get_the_same_answer(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    clock = SettableClock()
    server = make_server(clock=clock)
    server.add_user("frank@example.com")
    browser = FormBrowser(server.url)
    _flow, used_link, _ = _mail(server, smtp, browser, "frank@example.com")
    assert browser.post("/signin/email/link", {"token": _token(used_link)}).status_code == 303
    other = FormBrowser(server.url)
    used = other.post("/signin/email/link", {"token": _token(used_link)})
    _flow, expired_link, _ = _mail(server, smtp, other, "frank@example.com", nth=2)
    clock.advance(server.settings.email_link_ttl + timedelta(seconds=1))
    expired = other.post("/signin/email/link", {"token": _token(expired_link)})
    bogus = other.post("/signin/email/link", {"token": "not-a-real-token"})
    assert used.status_code == expired.status_code == bogus.status_code == 400
    assert "invalid_or_expired" in used.text
    assert "invalid_or_expired" in expired.text
    assert "invalid_or_expired" in bogus.text
    assert other.http.get(_path(expired_link)).status_code == 400
    # A signed-in browser is told it is signed in, whatever the token: still no difference.
    for token in (_token(used_link), "not-a-real-token"):
        notice = browser.post("/signin/email/link", {"token": token})
        assert notice.status_code == 200
        assert 'id="signed-in"' in notice.text
    browser.close()
    other.close()


def test_case5_new_request_supersedes_previous_link_and_code(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("gina@example.com")
    browser = browsers()
    first_flow, first_link, first_code = _mail(server, smtp, browser, "gina@example.com")
    second_flow, _link, second_code = _mail(server, smtp, browser, "gina@example.com", nth=2)
    assert browser.post("/signin/email/link", {"token": _token(first_link)}).status_code == 400
    stale = browser.post("/signin/email/code", {"flow": first_flow, "code": first_code})
    assert stale.status_code == 400
    assert (
        browser.post("/signin/email/code", {"flow": second_flow, "code": second_code}).status_code
        == 303
    )


def test_case6_secrets_are_bound_to_their_purpose(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    """A sign-in link token is not a session, a CSRF token or a code, and vice versa."""
    server.add_user("hana@example.com")
    browser = browsers()
    flow, link, code = _mail(server, smtp, browser, "hana@example.com")
    with httpx.Client(base_url=server.url, cookies={"sekisho_session": _token(link)}) as forged:
        assert forged.get("/api/v1/session").status_code == 401
    wrong_purpose = browser.post("/signin/email/code", {"flow": flow, "code": _token(link)[:6]})
    assert wrong_purpose.status_code in (400, 422)
    assert (
        browser.http.post(
            "/signin/email/link", data={"csrf_token": _token(link), "token": _token(link)}
        ).status_code
        == 403
    )
    assert browser.post("/signin/email/code", {"flow": flow, "code": code}).status_code == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example"},
        {"Forwarded": "host=evil.example;proto=https"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example:443"},
    ],
)
def test_case7_links_use_the_configured_origin(
    server: LiveServer, smtp: SmtpCapture, headers: dict[str, str]
) -> None:
    server.add_user("ian@example.com")
    with httpx.Client(base_url=server.url) as client:
        client.headers.update({"Content-Type": "application/json"})
        response = client.post(
            "/api/v1/signin/email", json={"email": "ian@example.com"}, headers=headers
        )
        assert response.status_code in (202, 400)
    if response.status_code == 202:
        message = smtp.wait_for("ian@example.com")
        link, _ = link_and_code(message)
        assert link.startswith(server.settings.public_origin + "/")
        assert "evil.example" not in text_of(message)
        assert "evil.example" not in html_of(message)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("email[]=a@example.com&email[]=b@example.com", "form"),
        ("email=a@example.com&email=b@example.com", "form"),
        ('email="a@evil"@example.com', "form"),
        ("email=a%EF%BC%A0example.com", "form"),
        ("email=%D0%B0dmin@example.com", "form"),
        ("email=" + "a" * 300 + "@example.com", "form"),
        ("email=a@example.com%0ABcc:victim@example.com", "form"),
        ("", "form"),
        ('{"email": ["a@example.com", "b@example.com"]}', "json"),
        ('{"email": "a@evil@example.com"}', "json"),
        ('{"email": 12}', "json"),
        ('{"address": "a@example.com"}', "json"),
    ],
)
def test_case8_address_tricks_get_a_clear_422(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers, body: str, content_type: str
) -> None:
    browser = browsers()
    if content_type == "form":
        response = browser.http.post(
            "/signin/email",
            content=f"csrf_token={browser.csrf()}&{body}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = browser.http.post(
            "/api/v1/signin/email", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert "Traceback" not in response.text
    time.sleep(0.3)
    assert smtp.messages == []
    with server.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM flows")).scalar_one() == 0
        assert connection.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0


def test_case8_address_is_normalised_to_one_recipient(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("jun@example.com")
    browser = browsers()
    browser.request_email("  JUN@Example.COM ")
    smtp.wait_for("jun@example.com")
    time.sleep(0.3)
    assert [rcpts for rcpts, _ in smtp.messages] == [["jun@example.com"]]


def test_case9_token_pages_are_not_cached_or_referred_and_not_logged(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add_user("kai@example.com")
    browser = browsers()
    flow, link, code = _mail(server, smtp, browser, "kai@example.com")
    page = browser.http.get(_path(link))
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    wrong = "000000" if code != "000000" else "111111"
    browser.post("/signin/email/code", {"flow": flow, "code": wrong})
    assert browser.post("/signin/email/link", {"token": _token(link)}).status_code == 303
    server_side = [
        r for r in caplog.records if r.name.startswith(("sekisho", "uvicorn", "sqlalchemy"))
    ]
    logged = "\n".join(record.getMessage() for record in server_side)
    assert "/signin/email/link" in logged
    assert _token(link) not in logged
    assert code not in logged


def test_case10_known_and_unknown_addresses_look_the_same(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("known@example.com")

    def ask(address: str) -> httpx.Response:
        with httpx.Client(base_url=server.url) as client:
            return client.post("/api/v1/signin/email", json={"email": address})

    known, unknown = ask("known@example.com"), ask("unknown@example.com")
    assert known.status_code == unknown.status_code == 202
    assert set(known.json()) == set(unknown.json())
    ignore = {"date", "content-length", "set-cookie", "x-request-id"}  # per request
    assert {k: v for k, v in known.headers.items() if k not in ignore} == {
        k: v for k, v in unknown.headers.items() if k not in ignore
    }
    assert [c.split("=")[0] for c in known.headers.get_list("set-cookie")] == [
        c.split("=")[0] for c in unknown.headers.get_list("set-cookie")
    ]
    browser = browsers()
    page_known = browser.post("/signin/email", {"email": "known@example.com"})
    page_unknown = browser.post("/signin/email", {"email": "unknown@example.com"})
    assert page_known.status_code == page_unknown.status_code == 303
    # The second request for each address supersedes the first; a message whose flow
    # ended before delivery is dropped, so wait for the outbox to settle instead.
    deadline = time.monotonic() + 15
    pending = 1
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        with server.database.engine.connect() as connection:
            pending = connection.execute(
                text("SELECT count(*) FROM outbox WHERE status = 'pending'")
            ).scalar_one()
    assert pending == 0
    assert smtp.to("known@example.com")
    assert smtp.to("unknown@example.com") == []


def _approval_number(browser: FormBrowser, flow: str) -> int:
    wait_page = browser.http.get(f"/signin/email/wait?flow={flow}")
    return int(wait_page.text.split('id="approval-number"')[1].split(">")[1].split("<")[0])


def test_case11_email_says_who_asked_and_approval_needs_the_number(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("lee@example.com")
    waiting = browsers(
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
    )
    flow = waiting.request_email("lee@example.com")
    message = smtp.wait_for("lee@example.com")
    body = text_of(message)
    assert "127.0.0.1" in body
    assert "Chrome on Windows" in body
    link, _ = link_and_code(message)
    number = _approval_number(waiting, flow)
    phone = browsers()
    page = phone.http.get(_path(link))
    assert 'id="approve-form"' in page.text
    approve_form = page.text.split('id="approve-form"')[1].split("</form>")[0]
    assert f">{number}<" not in approve_form
    assert f'value="{number}"' not in approve_form
    approved = phone.post(
        "/signin/email/link/approve", {"token": _token(link), "number": str(number)}
    )
    assert approved.status_code == 200
    assert waiting.http.get(f"/api/v1/signin/email/flows/{flow}").json()["state"] == "approved"
    assert waiting.http.get(f"/signin/email/wait?flow={flow}").status_code == 200
    assert not phone.signed_in()
    assert waiting.post("/signin/email/complete", {"flow": flow}).status_code == 303
    assert waiting.signed_in()
    session = waiting.session_cookie()
    again = waiting.post("/signin/email/complete", {"flow": flow})
    assert again.status_code == 200  # "You are signed in as ...": no second session
    assert 'id="signed-in"' in again.text
    assert waiting.session_cookie() == session
    assert browsers().post("/signin/email/complete", {"flow": flow}).status_code == 400


def test_case11_wrong_number_burns_the_link_but_the_code_still_works(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    """One guess per email (1 in 90); a bot's wrong guess does not lock the real user out."""
    server.add_user("mia@example.com")
    waiting = browsers()
    flow, link, code = _mail(server, smtp, waiting, "mia@example.com")
    number = _approval_number(waiting, flow)
    scanner = browsers(user_agent=SCANNER_UA)
    wrong = 10 + (number - 10 + 1) % 90
    refused = scanner.post(
        "/signin/email/link/approve", {"token": _token(link), "number": str(wrong)}
    )
    assert refused.status_code == 400
    assert "approval_refused" in refused.text
    retry = scanner.post(
        "/signin/email/link/approve", {"token": _token(link), "number": str(number)}
    )
    assert retry.status_code == 400
    assert "invalid_or_expired" in retry.text
    assert waiting.http.get(f"/api/v1/signin/email/flows/{flow}").json()["state"] == "pending"
    assert waiting.post("/signin/email/complete", {"flow": flow}).status_code == 400
    assert not scanner.signed_in()
    assert waiting.post("/signin/email/code", {"flow": flow, "code": code}).status_code == 303
    assert waiting.signed_in()


@pytest.mark.parametrize("number", ["", "abc", "\uff15\uff10", "1" * 20])
def test_case11_malformed_numbers_are_refused_without_spending(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers, number: str
) -> None:
    server.add_user("nia@example.com")
    waiting = browsers()
    _flow, link, _code = _mail(server, smtp, waiting, "nia@example.com")
    response = browsers().post(
        "/signin/email/link/approve", {"token": _token(link), "number": number}
    )
    assert response.status_code == 422
    assert waiting.post("/signin/email/link", {"token": _token(link)}).status_code == 303


def test_case12_code_burns_after_five_and_account_count_survives_resend(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(account_failure_free_attempts=8)
    server.add_user("nao@example.com")
    browser = FormBrowser(server.url)
    flow, _link, code = _mail(server, smtp, browser, "nao@example.com")
    wrong = "000000" if code != "000000" else "111111"
    statuses = [
        browser.post("/signin/email/code", {"flow": flow, "code": wrong}).status_code
        for _ in range(5)
    ]
    assert statuses == [400] * 5
    burned = browser.post("/signin/email/code", {"flow": flow, "code": code})
    assert burned.status_code == 400
    assert "Too many wrong codes" in burned.text
    flow2, _link, code2 = _mail(server, smtp, browser, "nao@example.com", nth=2)
    wrong2 = "000000" if code2 != "000000" else "111111"
    browser.post("/signin/email/code", {"flow": flow2, "code": wrong2})
    browser.post("/signin/email/code", {"flow": flow2, "code": wrong2})
    with server.database.engine.connect() as connection:
        consecutive = connection.execute(
            text("SELECT consecutive FROM failure_counters")
        ).scalar_one()
    assert consecutive == 7
    delayed = browser.post("/signin/email/code", {"flow": flow2, "code": wrong2})
    assert delayed.status_code == 400
    held = browser.post("/signin/email/code", {"flow": flow2, "code": code2})
    assert held.status_code == 429
    assert int(held.headers["retry-after"]) >= 1
    browser.close()


def test_case13_concurrent_wrong_guesses_never_exceed_the_cap(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("olu@example.com")
    browser = browsers()
    flow, _link, code = _mail(server, smtp, browser, "olu@example.com")
    csrf = browser.csrf()
    guesses = [f"{n:06d}" for n in range(50) if f"{n:06d}" != code]

    def guess(value: str) -> int:
        # All 49 guesses queue on the one code's lock, so the last waits for the 48
        # before it: on a host busy with other work that took longer than httpx's 5 s.
        with httpx.Client(
            base_url=server.url, cookies=dict(browser.http.cookies), timeout=60
        ) as client:
            return client.post(
                "/signin/email/code", data={"csrf_token": csrf, "flow": flow, "code": value}
            ).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(guess, guesses))
    assert all(status in (400, 429) for status in statuses), statuses
    with server.database.engine.connect() as connection:
        attempts = connection.execute(
            text("SELECT attempts FROM onetime_secrets WHERE kind = 'code'")
        ).scalar_one()
        evaluated = connection.execute(
            text(
                "SELECT count(*) FROM audit_events WHERE event = 'signin.email.failed' AND detail LIKE '%code_incorrect%'"
            )
        ).scalar_one()
    assert attempts == 5
    assert evaluated == 5


def test_case14_guessing_across_accounts_hits_ip_and_global_limits(
    make_server: ServerFactory, smtp: SmtpCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sekisho.ratelimits")
    server = make_server(
        limit_verify_per_ip="10/hour", limit_sends_per_ip="100/hour", limit_verify_global="15/hour"
    )
    browser = FormBrowser(server.url)
    flows = [browser.request_email(f"user{n}@example.com") for n in range(12)]
    statuses = [
        browser.post("/signin/email/code", {"flow": flow, "code": "123456"}).status_code
        for flow in flows
    ]
    assert statuses[:10] == [400] * 10
    assert statuses[10:] == [429, 429]
    assert any("verify-ip" in record.getMessage() for record in caplog.records)
    browser.close()


def test_case15_code_is_bound_to_its_flow(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("pia@example.com")
    server.add_user("quin@example.com")
    browser = browsers()
    flow_a, _link, _code_a = _mail(server, smtp, browser, "pia@example.com")
    _flow_b, _link_b, code_b = _mail(server, smtp, browser, "quin@example.com")
    assert browser.post("/signin/email/code", {"flow": flow_a, "code": code_b}).status_code == 400
    other = browsers()
    _flow, _l, code_c = _mail(server, smtp, other, "pia@example.com", nth=2)
    assert browser.post("/signin/email/code", {"flow": flow_a, "code": code_c}).status_code == 400


def test_case16_no_plaintext_secrets_at_rest(
    server: LiveServer, smtp: SmtpCapture, browsers: Browsers
) -> None:
    server.add_user("rui@example.com")
    browser = browsers()
    _flow, link, code = _mail(server, smtp, browser, "rui@example.com")
    token = _token(link)
    dump: list[str] = []
    with server.database.engine.connect() as connection:
        for table in ("flows", "onetime_secrets", "outbox", "audit_events", "sessions", "users"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                dump.extend(str(value) for value in row)
    joined = "\n".join(dump)
    assert token not in joined
    assert code not in joined
