"""Driving Sekisho's passkey API with the software authenticator, like the pages' JS."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.authenticator import SoftAuthenticator, b64url_decode
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code


def email_sign_in(
    server: LiveServer, smtp: SmtpCapture, client: httpx.Client, address: str
) -> None:
    """Sign ``client`` in by email (API, code), counting earlier messages to the address."""
    earlier = len(smtp.to(address))
    flow = client.post("/api/v1/signin/email", json={"email": address}).json()
    _link, code = link_and_code(smtp.wait_for_signin(address, earlier))
    response = client.post(
        f"/api/v1/signin/email/flows/{flow['flow_id']}/code", json={"code": code}
    )
    assert response.status_code == 200, response.text


def origin_of(server: LiveServer) -> str:
    return server.settings.public_origin


def registration_answer(
    server: LiveServer, client: httpx.Client, authenticator: SoftAuthenticator, **overrides: Any
) -> dict[str, Any]:
    """Open a registration ceremony and let ``authenticator`` answer it; the body for
    ``/passkeys/registration/verify``, not yet sent. ``overrides`` go to
    ``SoftAuthenticator.register``."""
    options = client.post("/api/v1/passkeys/registration/options", json={})
    assert options.status_code == 200, options.text
    public_key = options.json()["publicKey"]
    arguments: dict[str, Any] = {
        "rp_id": public_key["rp"]["id"],
        "origin": origin_of(server),
        "challenge": b64url_decode(public_key["challenge"]),
        "user_handle": b64url_decode(public_key["user"]["id"]),
    }
    arguments.update(overrides)
    credential = authenticator.register(**arguments)
    return {"flow_id": options.json()["flow_id"], "credential": credential}


def register(
    server: LiveServer, client: httpx.Client, authenticator: SoftAuthenticator, **overrides: Any
) -> httpx.Response:
    """Run a registration ceremony; ``overrides`` go to ``SoftAuthenticator.register``."""
    answer = registration_answer(server, client, authenticator, **overrides)
    return client.post("/api/v1/passkeys/registration/verify", json=answer)


def sign_in(
    server: LiveServer,
    client: httpx.Client,
    authenticator: SoftAuthenticator,
    *,
    email: str | None = None,
    **overrides: Any,
) -> httpx.Response:
    """Run a sign-in ceremony (usernameless unless ``email``)."""
    body = {"email": email} if email else {}
    options = client.post("/api/v1/signin/passkey/options", json=body)
    assert options.status_code == 200, options.text
    public_key = options.json()["publicKey"]
    arguments: dict[str, Any] = {
        "rp_id": public_key["rpId"],
        "origin": origin_of(server),
        "challenge": b64url_decode(public_key["challenge"]),
        "allow_credentials": [
            b64url_decode(c["id"]) for c in public_key.get("allowCredentials", [])
        ]
        or None,
    }
    arguments.update(overrides)
    credential = authenticator.assert_(**arguments)
    return client.post(
        "/api/v1/signin/passkey/verify",
        json={"flow_id": options.json()["flow_id"], "credential": credential},
    )


def refused_as_adding_a_passkey(client: httpx.Client, refused: httpx.Response) -> None:
    """``refused`` is the step-up refusal that adding a passkey gets from this session:
    403 ``reauthentication_required``."""
    adding = client.post("/api/v1/passkeys/registration/options", json={})
    expected = (403, "reauthentication_required")
    assert (adding.status_code, adding.json()["error"]) == expected
    assert (refused.status_code, refused.json()["error"]) == expected
