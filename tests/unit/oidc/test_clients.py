"""Redirect URI registration and matching (RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700
§4.1.3) and client credentials (RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from sekisho.core.keys import Keyring
from sekisho.oidc import clients
from sekisho.oidc.errors import OAuthError

KEYS = Keyring("k" * 40)
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _client(
    *uris: str, application_type: str = "web", auth_method: str = "none"
) -> clients.NewClient:
    return clients.register(
        KEYS,
        name="App",
        redirect_uris=list(uris),
        post_logout_redirect_uris=[],
        auth_method=auth_method,
        application_type=application_type,
        first_party=True,
        scopes=["openid"],
        id_token_lifetime=timedelta(minutes=5),
        access_token_lifetime=timedelta(minutes=5),
        now=NOW,
    )


@pytest.mark.parametrize(
    "uri",
    [
        "http://rp.example/cb",
        "https://rp.example/cb#frag",
        "https://user@rp.example/cb",
        'https://rp.example/cb?x="1"',
        "javascript:alert(1)",
        "com.example.app:/cb",
    ],
)
def test_web_clients_register_only_https_or_loopback(uri: str) -> None:
    with pytest.raises(clients.RegistrationError):
        _client(uri)


def test_native_apps_may_use_a_private_scheme() -> None:
    assert _client("com.example.app:/cb", application_type="native").client.redirect_uris == (
        "com.example.app:/cb",
    )


def test_matching_is_exact_except_a_native_loopback_port() -> None:
    web = _client("http://127.0.0.1/cb", "https://rp.example/cb").client
    assert clients.redirect_uri_matches(web, "https://rp.example/cb")
    assert not clients.redirect_uri_matches(web, "http://127.0.0.1:5000/cb")
    native = _client("http://127.0.0.1/cb", application_type="native").client
    assert clients.redirect_uri_matches(native, "http://127.0.0.1:5000/cb")
    for other in (
        "http://127.0.0.1:5000/cb/",
        "http://127.0.0.1:5000/cb?x=1",
        "http://localhost:5000/cb",
        "http://127.0.0.1:notaport/cb",
        "http://u@127.0.0.1:5000/cb",
        "https://127.0.0.1:5000/cb",
    ):
        assert not clients.redirect_uri_matches(native, other), other


def _basic(client_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_a_client_authenticates_with_its_registered_method_and_secret() -> None:
    made = _client("https://rp.example/cb", auth_method="client_secret_basic")
    assert made.secret is not None
    assert made.secret not in (made.client.secret_digest or "")
    basic = clients.presented_credentials(_basic(made.client.id, made.secret), {}, basic=True)
    assert clients.authenticate(KEYS, made.client, basic) == made.client
    posted = clients.presented_credentials(
        {}, {"client_id": made.client.id, "client_secret": made.secret}, basic=False
    )
    wrong = clients.presented_credentials(_basic(made.client.id, "nope"), {}, basic=True)
    for refused in (posted, wrong):
        with pytest.raises(OAuthError) as error:
            clients.authenticate(KEYS, made.client, refused)
        assert error.value.error == "invalid_client"
    with pytest.raises(OAuthError):  # two methods at once (RFC 6749 §2.3)
        clients.presented_credentials(
            _basic(made.client.id, made.secret), {"client_secret": made.secret}, basic=True
        )


def test_a_secret_is_bound_to_its_client_id() -> None:
    assert clients.secret_digest(KEYS, "a", "b:c") != clients.secret_digest(KEYS, "a:b", "c")


def test_a_generated_client_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line would read ``-7x6s...`` as an option (``clients show ID``)."""
    drawn = iter(["-7x6sIjuYidywzHSn7wUiy-N", "Q7x6sIjuYidywzHSn7wUiy-N"])
    monkeypatch.setattr("sekisho.oidc.clients.secrets.token_urlsafe", lambda _size: next(drawn))
    assert clients.new_client_id() == "Q7x6sIjuYidywzHSn7wUiy-N"


def test_a_chosen_client_id_may_not_start_with_a_dash() -> None:
    with pytest.raises(clients.RegistrationError, match="does not begin with -"):
        clients.register(
            KEYS,
            name="Dash",
            redirect_uris=["https://app.example/cb"],
            post_logout_redirect_uris=[],
            auth_method="client_secret_basic",
            application_type="web",
            first_party=True,
            scopes=["openid"],
            id_token_lifetime=timedelta(minutes=5),
            access_token_lifetime=timedelta(minutes=5),
            now=NOW,
            client_id="-dash",
        )
