""" "Connected apps" on the account page over real HTTP: the third-party clients a
person consented to, with the scopes and the date, and taking that consent back, which
also ends the client's grants for the person (its tokens are refused) and makes the
next authorization ask again."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import text

from tests.support.browser import FormBrowser
from tests.support.oidc import (
    Registered,
    authorize_url,
    exchange,
    query_of,
    register_client,
    response_of,
    signed_in_browser,
    userinfo_status,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

REQUEST_TAG = re.compile(r'name="request" value="([^"]+)"')
APP_ROW = re.compile(r'<tr class="app" data-client-id="([^"]+)">')


def _consent(browser: FormBrowser, registered: Registered, scope: str) -> str:
    """Allow the client on the consent page; its authorization code."""
    asked = browser.http.get(authorize_url(registered.client_id, scope=scope))
    assert asked.headers["location"] == "/authorize/resume", asked.text
    tag = REQUEST_TAG.search(browser.http.get("/authorize/resume").text)
    assert tag is not None
    allowed = browser.post("/authorize/consent", {"request": tag.group(1), "decision": "allow"})
    return query_of(response_of(allowed))["code"]


def _access_token(server: LiveServer, registered: Registered, code: str) -> str:
    answer = exchange(server, registered, code)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _events(server: LiveServer, event: str) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, detail FROM audit_events WHERE event = :e"), {"e": event}
        ).mappings()
        return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def test_the_account_page_lists_consented_apps_and_takes_consent_back(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    notes = register_client(server, first_party=False, name="Kabu <Notes>")
    charts = register_client(server, first_party=False, name="Chart Lab")
    own = register_client(server, first_party=True, name="Our brokerage")
    browser = signed_in_browser(server, smtp, "apps@example.com")
    neighbour = signed_in_browser(server, smtp, "neighbour@example.com")
    token = _access_token(server, notes, _consent(browser, notes, "openid email profile"))
    _consent(browser, charts, "openid")
    _consent(neighbour, notes, "openid")
    assert userinfo_status(server, token) == 200

    page = browser.http.get("/account")

    assert page.status_code == 200
    assert set(APP_ROW.findall(page.text)) == {notes.client_id, charts.client_id}
    assert own.client_id not in page.text
    assert "Kabu &lt;Notes&gt;" in page.text
    assert "See your email address" in page.text
    assert "See your name" in page.text
    assert 'aria-label="Remove access of Kabu &lt;Notes&gt;"' in page.text

    cross_site = browser.http.post(
        f"/account/apps/{notes.client_id}/revoke",
        data={"csrf_token": browser.csrf()},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403
    assert userinfo_status(server, token) == 200

    revoked = browser.post(f"/account/apps/{notes.client_id}/revoke", {})

    assert (revoked.status_code, revoked.headers["location"]) == (303, "/account?app_removed=1")
    after = browser.http.get("/account?app_removed=1")
    assert APP_ROW.findall(after.text) == [charts.client_id]
    assert 'id="app-removed"' in after.text
    assert userinfo_status(server, token) == 401
    assert browser.http.get(authorize_url(notes.client_id)).headers["location"] == (
        "/authorize/resume"
    )
    [event] = _events(server, "oidc.consent.revoked")
    assert event["detail"] == {"client_id": notes.client_id, "grants_ended": 1}
    neighbour_page = neighbour.http.get("/account")
    assert APP_ROW.findall(neighbour_page.text) == [notes.client_id]


def test_revoking_an_app_that_is_not_connected_is_not_found(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    notes = register_client(server, first_party=False, name="Kabu Notes")
    owner = signed_in_browser(server, smtp, "owner@example.com")
    _consent(owner, notes, "openid")
    stranger = signed_in_browser(server, smtp, "stranger@example.com")

    answers = [
        stranger.post(f"/account/apps/{notes.client_id}/revoke", {}),
        stranger.post("/account/apps/no-such-client/revoke", {}),
    ]

    assert [answer.status_code for answer in answers] == [404, 404]
    assert APP_ROW.findall(owner.http.get("/account").text) == [notes.client_id]
    assert _events(server, "oidc.consent.revoked") == []
    anonymous = FormBrowser(server.url)
    try:
        signed_out = anonymous.post(f"/account/apps/{notes.client_id}/revoke", {})
    finally:
        anonymous.close()
    assert signed_out.status_code == 401
