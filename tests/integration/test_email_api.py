"""The JSON API: the same flows as the pages, for apps that draw their own UI."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.outbox import wait_for_outbox
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code, text_of


def _client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def _request(client: httpx.Client, address: str, **extra: str) -> dict[str, object]:
    response = client.post("/api/v1/signin/email", json={"email": address, **extra})
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def _token(link: str) -> str:
    return link.split("token=", 1)[1]


def test_code_flow_and_session_management(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("api@example.com")
    with _client(server) as app, _client(server) as other:
        flow = _request(app, "api@example.com")
        assert set(flow) == {"flow_id", "approval_number", "expires_at"}
        assert app.get(f"/api/v1/signin/email/flows/{flow['flow_id']}").json()["state"] == "pending"
        assert other.get(f"/api/v1/signin/email/flows/{flow['flow_id']}").status_code == 400
        _link, code = link_and_code(smtp.wait_for("api@example.com"))
        signed_in = app.post(
            f"/api/v1/signin/email/flows/{flow['flow_id']}/code", json={"code": code}
        )
        assert signed_in.status_code == 200
        assert signed_in.json()["amr"] == ["email"]
        assert signed_in.json()["aal"] == 1
        assert (
            app.get(f"/api/v1/signin/email/flows/{flow['flow_id']}").json()["state"] == "completed"
        )
        sessions = app.get("/api/v1/sessions").json()
        assert [item["current"] for item in sessions] == [True]
        assert app.delete("/api/v1/session").status_code == 204
        assert app.get("/api/v1/session").status_code == 401


def test_link_inspect_confirm_and_other_device(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("link@example.com")
    with _client(server) as app, _client(server) as phone:
        _request(app, "link@example.com")
        link, code = link_and_code(smtp.wait_for("link@example.com"))
        info = phone.post("/api/v1/signin/email/link/inspect", json={"token": _token(link)}).json()
        assert info["same_browser"] is False
        assert "choices" not in info
        assert app.post("/api/v1/signin/email/link/inspect", json={"token": _token(link)}).json()[
            "same_browser"
        ]
        refused = phone.post("/api/v1/signin/email/link/confirm", json={"token": _token(link)})
        assert refused.status_code == 403
        assert refused.json()["error"] == "other_browser"
        wrong = phone.post(
            "/api/v1/signin/email/link/code", json={"token": _token(link), "code": "abc"}
        )
        assert wrong.status_code == 422
        assert wrong.json()["error"] == "invalid_code_format"
        done = phone.post(
            "/api/v1/signin/email/link/code", json={"token": _token(link), "code": code}
        )
        assert done.status_code == 200
        assert phone.get("/api/v1/session").status_code == 200
        assert app.get("/api/v1/session").status_code == 401


def test_number_matching_over_the_api(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("match@example.com")
    with _client(server) as app, _client(server) as phone:
        flow = _request(app, "match@example.com")
        link, _code = link_and_code(smtp.wait_for("match@example.com"))
        early = app.post(f"/api/v1/signin/email/flows/{flow['flow_id']}/complete", json={})
        assert early.status_code == 400
        approved = phone.post(
            "/api/v1/signin/email/link/approve",
            json={"token": _token(link), "number": flow["approval_number"]},
        )
        assert approved.status_code == 204
        done = app.post(f"/api/v1/signin/email/flows/{flow['flow_id']}/complete", json={})
        assert done.status_code == 200
        assert phone.get("/api/v1/session").status_code == 401


def test_wrong_code_reports_attempts_remaining(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("left@example.com")
    with _client(server) as app:
        flow = _request(app, "left@example.com")
        _link, code = link_and_code(smtp.wait_for("left@example.com"))
        wrong = "000000" if code != "000000" else "111111"
        response = app.post(
            f"/api/v1/signin/email/flows/{flow['flow_id']}/code", json={"code": wrong}
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "code_incorrect",
            "message": "That code is not correct.",
            "attempts_remaining": 4,
        }


def test_self_signup_creates_the_account_only_when_verified(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(self_signup=True)
    with _client(server) as app:
        flow = _request(app, "new@example.com")
        _link, code = link_and_code(smtp.wait_for("new@example.com"))
        with server.database.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        assert (
            app.post(
                f"/api/v1/signin/email/flows/{flow['flow_id']}/code", json={"code": code}
            ).status_code
            == 200
        )
    with server.database.engine.connect() as connection:
        email, verified = connection.execute(
            text("SELECT email, email_verified_at FROM users")
        ).one()
    assert email == "new@example.com"
    assert verified is not None


def test_unknown_address_gets_nothing_or_a_notice(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    quiet = make_server()
    with _client(quiet) as app:
        _request(app, "nobody@example.com")
    wait_for_outbox(quiet, "SELECT count(*) = 0 FROM outbox WHERE status = 'pending'")
    quiet.stop()
    noisy = make_server(notify_unknown_address=True)
    with _client(noisy) as app:
        _request(app, "nobody2@example.com")
    notice = smtp.wait_for("nobody2@example.com")
    assert "no account" in text_of(notice)
    assert "token=" not in text_of(notice)
    wait_for_outbox(noisy, "SELECT count(*) = 0 FROM outbox WHERE status = 'pending'")
    assert smtp.to("nobody@example.com") == []
    with quiet.database.engine.connect() as connection:
        statuses = sorted(connection.execute(text("SELECT status FROM outbox")).scalars())
    assert statuses == ["dropped", "sent"]


def test_disabled_account_gets_no_mail_and_cannot_finish(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("gone@example.com")
    with _client(server) as app:
        flow = _request(app, "gone@example.com")
        _link, code = link_and_code(smtp.wait_for("gone@example.com"))
        with server.database.engine.begin() as connection:
            connection.execute(text("UPDATE users SET status = 'disabled'"))
        refused = app.post(
            f"/api/v1/signin/email/flows/{flow['flow_id']}/code", json={"code": code}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_or_expired"
        _request(app, "gone@example.com")
    wait_for_outbox(server, "SELECT count(*) = 0 FROM outbox WHERE status = 'pending'")
    assert len(smtp.to("gone@example.com")) == 1


def test_japanese_email_from_accept_language(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("hanako@example.jp")
    with _client(server) as app:
        app.post(
            "/api/v1/signin/email",
            json={"email": "hanako@example.jp"},
            headers={"Accept-Language": "ja-JP,ja;q=0.9"},
        )
    message = smtp.wait_for("hanako@example.jp")
    assert "サインイン" in text_of(message)
    assert "コード" in str(message["Subject"])


def test_openapi_health_and_dev_mailbox(server: LiveServer) -> None:
    with _client(server) as client:
        schema = client.get("/api/openapi.json").json()
        assert "/api/v1/signin/email" in schema["paths"]
        assert "/signin/email" not in schema["paths"]
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["database"] == "up"
        assert client.head("/healthz").status_code == 200
        assert client.head("/readyz").status_code == 200
        assert client.get("/dev/mailbox").status_code == 200


def test_production_mode_has_no_dev_mailbox(make_server: ServerFactory) -> None:
    server = make_server(
        mode="production",
        public_origin="https://id.example",
        secret_key="p" * 48,
        mail_backend="smtp",
    )
    with _client(server) as client:
        assert client.get("/dev/mailbox").status_code == 404
        assert client.get("/healthz").status_code == 200
