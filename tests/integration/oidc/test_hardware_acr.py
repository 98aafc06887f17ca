"""``phrh`` over HTTP (OpenID EAP ACR Values 1.0; issue 9): only an attested,
allow-listed, device-bound passkey (AAL3, SECURITY.md case 55) earns it in an ID token;
a synced passkey of the same attested model (backup eligible) never does, and a request
for ``phrh`` from such an account answers ``unmet_authentication_requirements``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.support.attestation import AttestedDeployment
from tests.support.oidc import (
    REDIRECT_URI,
    Registered,
    authorize_url,
    exchange,
    query_of,
    register_client,
    response_of,
    verify_id_token,
)
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


def _attested_server(
    make_server: ServerFactory, tmp_path: Path, email: str
) -> tuple[LiveServer, AttestedDeployment, Registered]:
    """A server trusting a throwaway attestation root, an account and a client."""
    attested = AttestedDeployment(tmp_path / "attestation-root.pem")
    server = make_server(**attested.settings())
    server.add_user(email)
    return server, attested, register_client(server)


def test_a_device_bound_attested_key_signs_in_for_phrh(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    server, attested, registered = _attested_server(make_server, tmp_path, "jun@example.com")
    hardware = attested.key()
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "jun@example.com")
        assert register(server, browser, hardware).status_code == 201
        asked = browser.get(authorize_url(registered.client_id, acr_values="phrh"))
        assert asked.status_code == 303, asked.text
        assert asked.headers["location"] == "/signin"
        signed_in = sign_in(server, browser, hardware)
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["aal"] == 3
        callback = response_of(browser.get("/authorize/resume"))
    assert callback.startswith(REDIRECT_URI + "?")
    tokens = exchange(server, registered, query_of(callback)["code"])
    assert tokens.status_code == 200, tokens.text
    claims = verify_id_token(server, tokens.json()["id_token"], client_id=registered.client_id)
    assert claims["acr"] == "phrh"
    assert "hwk" in claims["amr"]
    assert server.audited("oidc.authorization.step_up")[-1]["acr_values"] == "phrh"


def test_a_synced_passkey_asking_for_phrh_gets_unmet_authentication_requirements(
    make_server: ServerFactory, smtp: SmtpCapture, tmp_path: Path
) -> None:
    server, attested, registered = _attested_server(make_server, tmp_path, "mio@example.com")
    synced = attested.key(synced=True)
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "mio@example.com")
        assert register(server, browser, synced).status_code == 201
        signed_in = sign_in(server, browser, synced)
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["aal"] == 2
        refused = browser.get(authorize_url(registered.client_id, acr_values="phrh"))
        phr = browser.get(authorize_url(registered.client_id, acr_values="phr"))
    assert refused.status_code == 303, refused.text
    refusal = query_of(refused.headers["location"])
    assert refusal["error"] == "unmet_authentication_requirements"
    assert "code" not in refusal
    assert phr.status_code == 303, phr.text
    tokens = exchange(server, registered, query_of(phr.headers["location"])["code"])
    claims = verify_id_token(server, tokens.json()["id_token"], client_id=registered.client_id)
    assert claims["acr"] == "phr"
