"""Hostile requests to the JSON API and the HTTP layer (issue 7, defects 10 and 11).

Each test sends what a fuzzer or an attacker sent and checks the answer is a clear 4xx
with a stable code: never a 500, never a false 503, never a redirect built from the Host
header, never a forged log line, never a connection held open forever.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.integration.admin.support import create_key
from tests.support.passkeys import email_sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

#: Deeper than CPython's recursion limit lets ``json.loads`` go.
DEEP = 1000


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == code


def _deep_client_data() -> str:
    nested = "[" * DEEP + "]" * DEEP
    raw = json.dumps({"type": "webauthn.get", "challenge": "AAAA", "x": 0})
    raw = raw[:-1] + ', "deep": ' + nested + "}"
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _credential() -> dict[str, object]:
    return {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "clientDataJSON": _deep_client_data(),
            "authenticatorData": "AAAA",
            "signature": "AAAA",
            "attestationObject": "AAAA",
        },
    }


def test_case33_cross_site_json_api_gets_403_whatever_the_content_type(
    server: LiveServer,
) -> None:
    with server.client() as client:
        for headers in (
            {"Origin": "https://evil.example", "Content-Type": "text/plain"},
            {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
            {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            response = client.post(
                "/api/v1/signin/email", content='{"email":"a@example.com"}', headers=headers
            )
            _error(response, 403, "csrf_failed")


def test_deeply_nested_client_data_is_a_bad_credential(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("deep@example.com")
    with server.client() as anonymous, server.client() as signed_in:
        options = anonymous.post("/api/v1/signin/passkey/options", json={}).json()
        response = anonymous.post(
            "/api/v1/signin/passkey/verify",
            json={"flow_id": options["flow_id"], "credential": _credential()},
        )
        _error(response, 400, "passkey_invalid")
        email_sign_in(server, smtp, signed_in, "deep@example.com")
        options = signed_in.post("/api/v1/passkeys/registration/options", json={}).json()
        response = signed_in.post(
            "/api/v1/passkeys/registration/verify",
            json={"flow_id": options["flow_id"], "credential": _credential()},
        )
        _error(response, 400, "passkey_invalid")


def test_deeply_nested_request_body_is_a_bad_request(server: LiveServer) -> None:
    with server.client() as client:
        body = '{"flow_id": "x", "credential": ' + "[" * 20000 + "]" * 20000 + "}"
        response = client.post(
            "/api/v1/signin/passkey/verify",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text


def test_nul_in_path_query_or_body_is_a_4xx_on_every_backend(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("nul@example.com")
    with server.client() as anonymous, server.client() as signed_in:
        email_sign_in(server, smtp, signed_in, "nul@example.com")
        answers = [
            anonymous.get("/api/v1/signin/email/flows/%00"),
            anonymous.get("/api/v1/signin/email/flows/a%00b"),
            anonymous.post("/api/v1/signin/email/flows/%00/code", json={"code": "123456"}),
            anonymous.post("/api/v1/signin/email/flows/%00/complete", json={}),
            anonymous.get("/dev/mailbox/%00"),
            anonymous.get("/api/v1/session?x=%00"),
            anonymous.post("/api/v1/signin/email", json={"email": "nul\u0000@example.com"}),
            anonymous.post("/api/v1/signin/email/link/confirm", json={"token": "a\u0000b"}),
            anonymous.post("/api/v1/signin/passkey/options", json={"email": "a\u0000@x.example"}),
            signed_in.patch("/api/v1/passkeys/%00", json={"name": "x"}),
            signed_in.patch("/api/v1/passkeys/abc", json={"name": "x\u0000y"}),
            signed_in.delete("/api/v1/passkeys/%00"),
            signed_in.delete("/api/v1/sessions/%00"),
        ]
        for response in answers:
            assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert signed_in.get("/api/v1/session").status_code == 200


def test_dev_mailbox_id_out_of_range_is_a_4xx(server: LiveServer) -> None:
    with server.client() as client:
        for message_id in ("99999999999999999999999", "-1", "0", "9223372036854775808"):
            response = client.get(f"/dev/mailbox/{message_id}")
            assert 400 <= response.status_code < 500, (message_id, response.status_code)


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access log lines, once the server has written one: it writes after the
    response has gone out, so the client may read the response first."""
    deadline = time.monotonic() + 10
    while True:
        lines = [r.getMessage() for r in caplog.records if r.name == "sekisho.access"]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_access_log_cannot_be_forged_with_a_newline(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sekisho.access"), server.client() as client:
        client.get("/api/v1/x%0D%0A127.0.0.1%20%22GET%20/admin%22%20200")
        lines = _access_lines(caplog)
    assert len(lines) == 1
    assert "\r" not in lines[0]
    assert "\n" not in lines[0]
    assert "%0D%0A" in lines[0]


def test_no_redirect_is_built_from_the_host_header(server: LiveServer) -> None:
    with server.client() as client:
        for method, path in (
            ("POST", "/api/v1/signin/email/"),
            ("GET", "/api/v1/session/"),
            ("GET", "/signin/"),
        ):
            response = client.request(
                method,
                path,
                json={"email": "a@example.com"},
                headers={"Host": "evil.example"},
            )
            assert not response.is_redirect, (path, response.headers.get("location"))
            assert "evil.example" not in response.headers.get("location", "")


def test_405_says_what_is_allowed_and_head_works_on_get_routes(server: LiveServer) -> None:
    with server.client() as client:
        refused = client.put("/api/v1/session")
        _error(refused, 405, "method_not_allowed")
        assert set(refused.headers["allow"].replace(" ", "").split(",")) == {
            "GET",
            "HEAD",
            "DELETE",
        }
        post_only = client.get("/api/v1/signin/email")
        _error(post_only, 405, "method_not_allowed")
        assert post_only.headers["allow"] == "POST"
        for path in ("/api/v1/session", "/healthz", "/signin", "/api/openapi.json"):
            get = client.get(path)
            head = client.head(path)
            assert head.status_code == get.status_code, path
            assert head.content == b""
            assert head.headers["content-type"] == get.headers["content-type"]


def _raw(server: LiveServer, request: bytes, timeout: float = 20) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_chunked_body_over_the_limit_gets_413(make_server: ServerFactory) -> None:
    server = make_server(max_body_bytes=1024)
    chunk = b'{"email": "' + b"a" * 2000 + b'"}'
    request = (
        b"POST /api/v1/signin/email HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(chunk):x}\r\n".encode()
        + chunk
        + b"\r\n0\r\n\r\n"
    )
    answer = _raw(server, request)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"error":"payload_too_large"' in answer.replace(b" ", b"")


def test_stalled_body_gets_408_and_the_connection_is_closed(make_server: ServerFactory) -> None:
    server = make_server(body_read_timeout_seconds=0.5)
    request = (
        b"POST /api/v1/signin/email HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"email": '
    )
    answer = _raw(server, request)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"error":"request_timeout"' in answer.replace(b" ", b"")


def test_every_answer_of_the_edge_carries_its_headers(make_server: ServerFactory) -> None:
    """The edge middleware's own refusal (a declared body over the cap, answered before
    the app runs), a HEAD answer and a static file all get the request id and the
    security headers; only static files may be cached."""
    server = make_server(max_body_bytes=1024)
    with server.client() as client:
        refused = client.post(
            "/api/v1/signin/email",
            content=b"x" * 2048,
            headers={"Content-Type": "application/json"},
        )
        head = client.head("/signin")
        static = client.get("/static/sekisho.css")
    _error(refused, 413, "payload_too_large")
    assert head.status_code == 200
    assert head.content == b""
    assert static.status_code == 200
    for answer in (refused, head, static):
        assert len(answer.headers["x-request-id"]) == 32
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert refused.headers["cache-control"] == "no-store"
    assert head.headers["cache-control"] == "no-store"
    assert static.headers.get("cache-control") != "no-store"
    assert len({answer.headers["x-request-id"] for answer in (refused, head, static)}) == 3


#: JSON endpoints of the account, admin and sign-in APIs, with a body of each's shape.
_JSON_BODIES: dict[str, dict[str, object]] = {
    "/api/v1/signin/email": {"email": "lone@example.com"},
    "/api/v1/signin/passkey/options": {"email": "lone@example.com"},
    "/api/v1/account/email": {"email": "new@example.com"},
    "/api/v1/account/email/code": {"code": "123456"},
    "/api/v1/account/email/link": {"token": "x" * 43},
    "/api/v1/admin/clients": {"name": "n", "redirect_uris": ["https://rp.example/cb"]},
    "/api/v1/admin/users/lookup": {"email": "lone@example.com"},
    "/api/v1/admin/users/tier": {"email": "lone@example.com", "tier": "standard"},
    "/api/v1/admin/users/attribute": {"email": "lone@example.com", "name": "n", "value": "v"},
    "/api/v1/admin/recoveries": {"email": "lone@example.com", "reason": "a reason long enough"},
    f"/api/v1/admin/recoveries/{'0' * 32}/cancel": {"reason": "a reason long enough"},
}


def _with_lone_surrogates(body: dict[str, object]) -> list[dict[str, object]]:
    """The body with an extra member named by a lone surrogate, then with each string
    (or list of strings) replaced by one."""
    variants: list[dict[str, object]] = [{**body, "\ud800": 1}]
    for name, value in body.items():
        if isinstance(value, str):
            variants.append({**body, name: "\ud800"})
        elif isinstance(value, list):
            variants.append({**body, name: ["\ud800"]})
    return variants


def test_lone_surrogates_in_json_are_a_4xx_everywhere(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """A ``\\ud800`` escape is valid JSON but no UTF-8 text: wherever it lands (a member
    name, a value), the answer is a 4xx with a stable code, never a 500 from echoing it."""
    server = make_server(admin_emails=["ops@example.com"])
    server.add_user("lone@example.com")
    scopes = ("clients:write", "users:read", "users:write", "recovery:open")
    _key_id, key = create_key(server, *scopes, operator="ops@example.com")
    with server.client() as http:
        email_sign_in(server, smtp, http, "lone@example.com")
        for path, body in _JSON_BODIES.items():
            headers = {"Content-Type": "application/json", "Origin": server.url}
            if path.startswith("/api/v1/admin/"):
                headers["Authorization"] = f"Bearer {key}"
            for variant in _with_lone_surrogates(body):
                raw = json.dumps(variant)  # ASCII: the surrogate travels as \ud800
                answer = http.post(path, content=raw, headers=headers)
                assert 400 <= answer.status_code < 500, (path, raw, answer.text)
                assert answer.json()["error"], (path, raw)
        assert http.get("/api/v1/session").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/account/email",
        "/account/email/code",
        "/account/email/confirm",
        "/account/apps/any/revoke",
        "/authorize/consent",
        "/logout/confirm",
        "/signin/recovery/operator",
    ],
)
def test_multipart_posts_to_form_pages_are_415(
    server: LiveServer, smtp: SmtpCapture, path: str
) -> None:
    """Form pages read url-encoded forms only: a multipart body (files included) is
    refused before any field is read, the CSRF token field included."""
    server.add_user("parts@example.com")
    with server.client() as http:
        email_sign_in(server, smtp, http, "parts@example.com")
        answer = http.post(
            path,
            files={"csrf_token": ("t.txt", b"x"), "email": ("e.txt", b"new@example.com")},
            headers={"Origin": server.url},
        )
        assert answer.status_code == 415, answer.text
        assert http.get("/api/v1/session").status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "streamed"])
def test_a_form_body_over_the_limit_gets_a_page_not_json(
    make_server: ServerFactory, chunked: bool
) -> None:
    """A page's form over the cap is answered as every page refusal is: HTML in the
    visitor's language, with the stable code, and the connection closed."""
    server = make_server(max_body_bytes=1024)
    form = b"email=" + b"a" * 2000
    framing = (
        b"Transfer-Encoding: chunked\r\n\r\n"
        + f"{len(form):x}\r\n".encode()
        + form
        + b"\r\n0\r\n\r\n"
        if chunked
        else f"Content-Length: {len(form)}\r\n\r\n".encode() + form
    )
    request = (
        b"POST /signin/email HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: ja\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n" + framing
    )
    answer = _raw(server, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"content-type: text/html" in head.lower()
    assert b"connection: close" in head.lower()
    assert b"payload_too_large" in body
    assert b'lang="ja"' in body
