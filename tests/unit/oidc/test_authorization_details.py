"""``authorization_details`` (RFC 9396): one declared action with exactly its fields, and
the tier's ``step_up`` tightening ``acr_values`` and ``max_age`` (issue 10, case 52)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sekisho.core.keys import Keyring
from sekisho.oidc import authorization_details, clients
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.records import AuthorizationRequest, Client
from sekisho.policy.parsing import parse_policy
from sekisho.policy.tiers import Policy, Tier

POLICY = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.standard.step_up.withdrawal]
aal = {aal}
max_age = "5m"

[actions.withdrawal]
title = {{ en = "Withdrawal", ja = "出金" }}

[actions.withdrawal.details]
amount = {{ type = "amount", currency = "currency", label = {{ en = "Amount", ja = "金額" }} }}
currency = {{ type = "currency", label = {{ en = "Currency", ja = "通貨" }} }}

[actions.close_account]
title = {{ en = "Closing", ja = "解約" }}

[actions.close_account.details]
account = {{ type = "string", label = {{ en = "Account", ja = "口座" }} }}
"""
WITHDRAWAL = {"type": "withdrawal", "amount": "1250000", "currency": "JPY"}


def _policy(aal: int = 2) -> Policy:
    return parse_policy(POLICY.format(aal=aal))


def _client(auth_method: str = "client_secret_basic") -> Client:
    return clients.register(
        Keyring("k" * 40),
        name="App",
        redirect_uris=["https://rp.example/cb"],
        post_logout_redirect_uris=[],
        auth_method=auth_method,
        application_type="web",
        first_party=True,
        scopes=["openid"],
        id_token_lifetime=timedelta(minutes=5),
        access_token_lifetime=timedelta(minutes=5),
        now=datetime(2026, 11, 27, tzinfo=UTC),
    ).client


def _params(*values: str) -> Any:
    return lambda name: list(values) if name == "authorization_details" else []


def _request(**overrides: Any) -> AuthorizationRequest:
    values: dict[str, Any] = {
        "client_id": "c",
        "redirect_uri": "https://rp.example/cb",
        "scope": ("openid",),
        "state": None,
        "nonce": None,
        "code_challenge": "x" * 43,
        "response_mode": "query",
        "prompt": (),
        "max_age": None,
        "login_hint": None,
        "ui_locales": (),
        "authorization_details": (WITHDRAWAL,),
        **overrides,
    }
    return AuthorizationRequest(**values)


def test_one_declared_action_with_its_fields_is_accepted() -> None:
    found = authorization_details.parse(_params(json.dumps([WITHDRAWAL])), _policy(), _client())
    assert found == ("withdrawal", {"amount": "1250000", "currency": "JPY"})
    assert authorization_details.parse(_params(), _policy(), _client()) is None


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (json.dumps([{**WITHDRAWAL, "type": "deposit"}]), "invalid_authorization_details"),
        (json.dumps([{**WITHDRAWAL, "extra": "1"}]), "invalid_authorization_details"),
        (json.dumps([{**WITHDRAWAL, "amount": "1.23456"}]), "invalid_authorization_details"),
        (json.dumps([{"type": 1}]), "invalid_authorization_details"),
        (json.dumps([WITHDRAWAL, WITHDRAWAL]), "invalid_authorization_details"),
        (json.dumps({"type": "withdrawal"}), "invalid_authorization_details"),
        ("[" * 5000, "invalid_authorization_details"),
    ],
)
def test_anything_else_is_invalid_authorization_details(raw: str, error: str) -> None:
    with pytest.raises(OAuthError) as refused:
        authorization_details.parse(_params(raw), _policy(), _client())
    assert refused.value.error == error


def test_repeated_or_from_a_public_client_is_refused() -> None:
    raw = json.dumps([WITHDRAWAL])
    with pytest.raises(OAuthError) as repeated:
        authorization_details.parse(_params(raw, raw), _policy(), _client())
    assert repeated.value.error == "invalid_request"
    with pytest.raises(OAuthError) as public:
        authorization_details.parse(_params(raw), _policy(), _client("none"))
    assert public.value.error == "unauthorized_client"


def _tier(aal: int) -> Tier:
    tier = _policy(aal).tier("standard")
    assert tier is not None
    return tier


def test_the_tier_tightens_acr_values_and_max_age() -> None:
    tight = authorization_details.tightened(_request(), _tier(3))
    assert (tight.acr_values, tight.max_age) == (("phrh",), 300)
    asked = _request(acr_values=("phr",), max_age=60)
    assert authorization_details.tightened(asked, _tier(2)) == asked
    stronger = _request(acr_values=("phrh",), max_age=900)
    assert authorization_details.tightened(stronger, _tier(2)).acr_values == ("phrh",)
    assert authorization_details.tightened(stronger, _tier(2)).max_age == 300
    weakest = _request(acr_values=("urn:sekisho:acr:aal1", "phrh"))
    assert authorization_details.tightened(weakest, _tier(2)).acr_values == ("phr",)


def test_an_action_without_step_up_and_a_plain_request_stay_as_asked() -> None:
    closing = _request(authorization_details=({"type": "close_account", "account": "A-1"},))
    assert authorization_details.tightened(closing, _tier(2)) == closing
    plain = _request(authorization_details=())
    assert authorization_details.tightened(plain, _tier(3)) == plain
