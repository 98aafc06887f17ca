"""Validating an authorization request (RFC 6749 §4.1.1 and §4.1.2.1; OIDC Core
§3.1.2.1-2; RFC 7636 §4.3; RFC 9700 §2.1.1).

Until the client and its redirect URI are known good, every problem is an
:class:`AuthorizationPageError` (a page, never a redirect: no open redirector); after
that, an :class:`OAuthError` that goes back to the client with ``state`` and ``iss``.
PKCE is required of every client, S256 only: a missing challenge or ``plain`` is
``invalid_request``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sekisho.i18n import LOCALES
from sekisho.oidc import assurance
from sekisho.oidc.clients import redirect_uri_matches
from sekisho.oidc.errors import AuthorizationPageError, OAuthError
from sekisho.oidc.records import AuthorizationRequest, Client

RESPONSE_MODES = ("query", "form_post")
PROMPTS = ("none", "login", "consent")
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_STATE = 2048
MAX_NONCE = 512
MAX_HINT = 254
SINGLE = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "acr_values",
)
MAX_ACR_VALUES = 10


@dataclass(frozen=True, slots=True)
class Target:
    """Where errors may go once the client and redirect URI are trusted."""

    redirect_uri: str
    response_mode: str
    state: str | None


def _values(params: Callable[[str], list[str]], name: str) -> str | None:
    values = params(name)
    if not values:
        return None
    return values[0]


def trusted_target(
    params: Callable[[str], list[str]], find_client: Callable[[str], Client | None]
) -> tuple[Client, Target]:
    """The client and where to answer it, or a page error."""
    for name in ("client_id", "redirect_uri"):
        if len(params(name)) > 1:
            raise AuthorizationPageError("repeated_parameter")
    client_id = _values(params, "client_id")
    if not client_id or len(client_id) > 64:
        raise AuthorizationPageError("unknown_client")
    client = find_client(client_id)
    if client is None:
        raise AuthorizationPageError("unknown_client")
    redirect_uri = _values(params, "redirect_uri")
    if not redirect_uri or not redirect_uri_matches(client, redirect_uri):
        raise AuthorizationPageError("redirect_uri_mismatch")
    modes = params("response_mode")
    mode = modes[0] if len(modes) == 1 and modes[0] in RESPONSE_MODES else "query"
    states = params("state")
    state = states[0] if len(states) == 1 and len(states[0]) <= MAX_STATE else None
    return client, Target(redirect_uri=redirect_uri, response_mode=mode, state=state)


def validate(
    params: Callable[[str], list[str]], client: Client, target: Target
) -> AuthorizationRequest:
    """The rest of the request, checked against the client's registration."""
    for name in SINGLE:
        if len(params(name)) > 1:
            raise OAuthError("invalid_request", f"{name} is repeated.")
    if params("request"):
        raise OAuthError("request_not_supported", "Request objects are not supported.")
    if params("request_uri"):
        raise OAuthError("request_uri_not_supported", "request_uri is not supported.")
    if _values(params, "response_type") != "code":
        raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
    mode = _values(params, "response_mode")
    if mode is not None and mode not in RESPONSE_MODES:
        raise OAuthError("invalid_request", "response_mode must be query or form_post.")
    state = _values(params, "state")
    if state is not None and len(state) > MAX_STATE:
        raise OAuthError("invalid_request", "state is too long.")
    scope = tuple(dict.fromkeys((_values(params, "scope") or "").split()))
    if "openid" not in scope:
        raise OAuthError("invalid_scope", "The openid scope is required.")
    if not set(scope) <= set(client.scopes):
        raise OAuthError("invalid_scope", "A requested scope is not allowed for this client.")
    challenge = _values(params, "code_challenge")
    method = _values(params, "code_challenge_method")
    if challenge is None:
        raise OAuthError("invalid_request", "code_challenge is required (PKCE, S256).")
    if method != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256.")
    if not CHALLENGE.match(challenge):
        raise OAuthError("invalid_request", "code_challenge is not an S256 challenge.")
    nonce = _values(params, "nonce")
    if nonce is not None and (not nonce or len(nonce) > MAX_NONCE):
        raise OAuthError("invalid_request", "nonce is empty or too long.")
    prompt = tuple(dict.fromkeys((_values(params, "prompt") or "").split()))
    if not set(prompt) <= set(PROMPTS):
        raise OAuthError("invalid_request", "prompt may hold none, login and consent.")
    if "none" in prompt and len(prompt) > 1:
        raise OAuthError("invalid_request", "prompt=none cannot be combined.")
    raw_max_age = _values(params, "max_age")
    max_age = None
    if raw_max_age is not None:
        if not (raw_max_age.isascii() and raw_max_age.isdigit() and len(raw_max_age) <= 9):
            raise OAuthError("invalid_request", "max_age must be a number of seconds.")
        max_age = int(raw_max_age)
    hint = _values(params, "login_hint")
    if hint is not None and len(hint) > MAX_HINT:
        hint = None
    locales = tuple(
        dict.fromkeys(
            tag.split("-")[0].lower()
            for tag in (_values(params, "ui_locales") or "").split()[:10]
            if tag.split("-")[0].lower() in LOCALES
        )
    )
    acr_values = tuple(
        dict.fromkeys(
            value
            for value in (_values(params, "acr_values") or "").split()[:MAX_ACR_VALUES]
            if value in assurance.SUPPORTED
        )
    )
    return AuthorizationRequest(
        client_id=client.id,
        redirect_uri=target.redirect_uri,
        scope=scope,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        response_mode=target.response_mode,
        prompt=prompt,
        max_age=max_age,
        login_hint=hint,
        ui_locales=locales,
        acr_values=acr_values,
    )
