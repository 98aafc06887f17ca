"""Relying-party helpers for the OpenID Connect tests: clients registered in the live
server's database, Sekisho's sign-in pages driven like a browser, Authlib's OAuth 2.0
client for the protocol, and joserfc (not the server's code) to check ID tokens."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt as pyjwt
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from sekisho.core.keys import Keyring
from sekisho.oidc import clients
from sekisho.oidc.signing_keys import ALGORITHM
from sekisho.store.oidc import SqlOidc
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
from tests.support.server import SECRET_KEY, LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

REDIRECT_URI = "https://rp.example/callback"
CONTINUE = re.compile(r'<a href="([^"]+)" id="continue">')
FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)" id="form-post">')
VERIFIER = "v" * 20 + "-._~" + "0123456789abcdefghijklmn"


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None


def register_client(
    server: LiveServer,
    *,
    auth_method: str = "client_secret_basic",
    first_party: bool = True,
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    application_type: str = "web",
    scopes: tuple[str, ...] = ("openid", "email", "profile"),
    name: str = "Brokerage",
    secret_key: str = SECRET_KEY,
    jwks: dict[str, Any] | None = None,
    require_par: bool = False,
    id_token_alg: str = ALGORITHM,
    post_logout_redirect_uris: tuple[str, ...] = (),
    backchannel_logout_uri: str | None = None,
    subject_type: str = "public",
    jwks_uri: str | None = None,
    sector_identifier_uri: str | None = None,
    introspects: tuple[str, ...] = (),
) -> Registered:
    made = clients.register(
        Keyring(secret_key),
        name=name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        auth_method=auth_method,
        application_type=application_type,
        first_party=first_party,
        scopes=list(scopes),
        id_token_lifetime=timedelta(minutes=10),
        access_token_lifetime=timedelta(minutes=5),
        now=datetime.now(UTC),
        jwks=jwks,
        require_par=require_par,
        id_token_alg=id_token_alg,
        backchannel_logout_uri=backchannel_logout_uri,
        subject_type=subject_type,
        jwks_uri=jwks_uri,
        sector_identifier_uri=sector_identifier_uri,
        introspects=introspects,
    )
    database = server.database
    try:
        with database.transaction() as repos:
            SqlOidc(repos.connection).add_client(made.client)
    finally:
        database.dispose()
    return Registered(made.client.id, made.secret)


def add_client_by_cli(server: LiveServer, *options: str) -> Registered:
    """A first-party client for :data:`REDIRECT_URI` registered by ``sekisho clients
    add`` as an operator runs it, with ``options`` added; its printed id and secret."""
    added = run_sekisho(
        server.settings.database_url,
        "clients",
        "add",
        "--name",
        "Brokerage",
        "--redirect-uri",
        REDIRECT_URI,
        "--first-party",
        *options,
    )
    assert added.returncode == 0, added.stderr
    client_id = re.search(r"client_id: (\S+)", added.stdout)
    secret = re.search(r"client_secret: (\S+)", added.stdout)
    assert client_id is not None
    assert secret is not None
    return Registered(client_id.group(1), secret.group(1))


def rp_client(server: LiveServer, registered: Registered, **kwargs: Any) -> OAuth2Session:
    """Authlib's client as a relying party configures it (PKCE S256 on)."""
    default_method = "none" if registered.secret is None else "client_secret_basic"
    return OAuth2Session(
        client_id=registered.client_id,
        client_secret=registered.secret,
        token_endpoint_auth_method=kwargs.pop("token_endpoint_auth_method", default_method),
        scope=kwargs.pop("scope", "openid email profile"),
        redirect_uri=kwargs.pop("redirect_uri", REDIRECT_URI),
        code_challenge_method="S256",
        **kwargs,
    )


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def sign_in_by_code(browser: FormBrowser, smtp: SmtpCapture, email: str) -> httpx.Response:
    """Sekisho's email sign-in with the code, as a person does it: the answer is the
    303 that follows the code form."""
    before = len(smtp.to(email))  # counted first: the message may arrive before we look
    flow = browser.request_email(email)
    _link, code = link_and_code(smtp.wait_for_signin(email, before))
    answer = browser.post("/signin/email/code", {"flow": flow, "code": code})
    assert answer.status_code == 303, answer.text
    return answer


def response_of(page: httpx.Response) -> str:
    """The client callback URL a ``query`` answer page moves on to."""
    assert page.status_code == 200, page.text
    match = CONTINUE.search(page.text)
    assert match is not None, page.text
    return html.unescape(match.group(1))


def form_post_of(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and fields of a ``form_post`` answer page."""
    assert page.status_code == 200, page.text
    action = FORM_ACTION.search(page.text)
    assert action is not None, page.text
    fields = {name: html.unescape(value) for name, value in FIELD.findall(page.text)}
    fields.pop("csrf_token", None)
    return html.unescape(action.group(1)), fields


def verify_id_token(
    server: LiveServer, id_token: str, *, client_id: str, alg: str = "ES256"
) -> dict[str, Any]:
    """Check an ID token against the published JWKS as a relying party would (OIDC Core
    §3.1.3.7), with two JOSE implementations: joserfc, which Sekisho signs with, and
    PyJWT, which shares no code with it, so that a fault common to the signer and its
    own library cannot pass unseen. Only ``alg`` is accepted; returns the claims."""
    with httpx.Client(timeout=30) as http:
        metadata = http.get(server.url + "/.well-known/openid-configuration").json()
        published = http.get(metadata["jwks_uri"]).json()
    token = jwt.decode(id_token, KeySet.import_key_set(published), algorithms=[alg])
    assert token.header["alg"] == alg
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
    ).validate(token.claims)
    signing_key = pyjwt.PyJWKSet.from_dict(published)[token.header["kid"]]
    independent = pyjwt.decode(
        id_token,
        signing_key,
        algorithms=[alg],
        audience=client_id,
        issuer=metadata["issuer"],
        options={"require": ["iss", "aud", "exp", "iat", "sub"]},
    )
    assert independent == dict(token.claims)
    return dict(token.claims)


def challenge(verifier: str = VERIFIER) -> str:
    return str(create_s256_code_challenge(verifier))


def authorize_url(client_id: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid email",
        "state": "st-1",
        "nonce": "no-1",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        **overrides,
    }
    return "/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def signed_in_browser(server: LiveServer, smtp: SmtpCapture, email: str) -> FormBrowser:
    """A new account and a browser signed in to it by the email code."""
    server.add_user(email)
    browser = FormBrowser(server.url)
    sign_in_by_code(browser, smtp, email)
    return browser


def code_for(browser: FormBrowser, client_id: str, **overrides: str | None) -> str:
    answer = browser.http.get(authorize_url(client_id, **overrides))
    assert answer.status_code == 303, answer.text
    return query_of(answer.headers["location"])["code"]


def exchange(
    server: LiveServer, registered: Registered, code: str, **overrides: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
        **overrides,
    }
    with server.client() as http:
        return http.post("/token", data=data, auth=(registered.client_id, registered.secret or ""))


def userinfo_status(server: LiveServer, access_token: str) -> int:
    with server.client() as http:
        return http.get(
            "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        ).status_code


OFFLINE_SCOPES = ("openid", "email", "profile", "offline_access")


def post_as(server: LiveServer, registered: Registered, path: str, **data: str) -> httpx.Response:
    """A form POST to ``path`` (``/token``, ``/revoke``, ``/introspect``) with the
    client's secret by HTTP Basic, or its bare id for a public client."""
    with server.client() as http:
        if registered.secret is None:
            return http.post(path, data={"client_id": registered.client_id, **data})
        return http.post(path, data=data, auth=(registered.client_id, registered.secret))


def refresh_with(
    server: LiveServer, registered: Registered, refresh_token: str, **overrides: str
) -> httpx.Response:
    return post_as(
        server,
        registered,
        "/token",
        grant_type="refresh_token",
        refresh_token=refresh_token,
        **overrides,
    )
