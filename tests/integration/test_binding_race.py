"""The browser binding cookie is fixed before the sign-in page can race itself
(issue 7, defect 5: the flaky "invalid or expired" right after requesting an email).

On /signin, passkey.js starts a passkey autofill request as the page loads, and that
request, like the email form, sets the binding cookie. A first-time visitor had none:
both requests drew their own value, and when the autofill answer came back after the
email form's redirect (a busy machine), its cookie replaced the one the new flow was
bound to, and the wait page refused the flow. Modelled here exactly: the autofill
request carries the cookies of the page load and its answer lands last.
"""

from __future__ import annotations

import httpx

from tests.support.browser import FormBrowser
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

BINDING = "sekisho_binding"


def test_late_autofill_answer_keeps_the_flow_bound(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("rin@example.com")
    browser = FormBrowser(server.url)
    try:
        browser.csrf()  # loads /signin, as the browser does before both requests
        at_page_load = dict(browser.http.cookies.items())
        flow = browser.request_email("rin@example.com")
        with httpx.Client(base_url=server.url, cookies=at_page_load, timeout=30) as autofill:
            options = autofill.post(
                "/api/v1/signin/passkey/options", json={}, headers={"Origin": server.url}
            )
        assert options.status_code == 200, options.text
        late = options.cookies.get(BINDING)
        if late is not None:
            browser.http.cookies.delete(BINDING)
            browser.http.cookies.set(BINDING, late, domain="127.0.0.1")
        wait = browser.http.get("/signin/email/wait", params={"flow": flow})
        assert wait.status_code == 200, wait.text
        assert 'id="approval-number"' in wait.text
    finally:
        browser.close()
