"""Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2) and the JWKS
(RFC 7517). The issuer is the configured public origin, never a request header."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from sekisho.i18n import LOCALES
from sekisho.oidc import assurance
from sekisho.oidc.client_assertion import ALGORITHMS as ASSERTION_ALGORITHMS
from sekisho.oidc.clients import AUTH_METHODS, SUPPORTED_SCOPES
from sekisho.oidc.provider import Provider
from sekisho.oidc.requests import PROMPTS, RESPONSE_MODES
from sekisho.oidc.signing_keys import ALGORITHMS
from sekisho.oidc.subjects import SUBJECT_TYPES
from sekisho.web.lean_route import LeanRoute

router = APIRouter(include_in_schema=False, route_class=LeanRoute)


def provider(request: Request) -> Provider:
    found: Provider = request.app.state.oidc
    return found


def metadata(issuer: str, *, authorization_details_types: tuple[str, ...] = ()) -> dict[str, Any]:
    """The metadata; RFC 9396 §10.1 ``authorization_details_types_supported`` lists the
    policy file's actions, when it declares any."""
    rar = (
        {"authorization_details_types_supported": list(authorization_details_types)}
        if authorization_details_types
        else {}
    )
    return {
        **rar,
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "require_pushed_authorization_requests": False,
        "userinfo_endpoint": f"{issuer}/userinfo",
        "revocation_endpoint": f"{issuer}/revoke",
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint": f"{issuer}/introspect",
        "introspection_endpoint_auth_methods_supported": [
            method for method in AUTH_METHODS if method != "none"
        ],
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": list(SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "at_hash",
            "email",
            "email_verified",
            "name",
        ],
        "acr_values_supported": list(assurance.SUPPORTED),
        "prompt_values_supported": list(PROMPTS),
        "ui_locales_supported": list(LOCALES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "end_session_endpoint": f"{issuer}/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


def _metadata(request: Request) -> dict[str, Any]:
    found = provider(request)
    actions = found.sekisho.completion.policy.actions
    return metadata(
        found.issuer, authorization_details_types=tuple(action.name for action in actions)
    )


@router.api_route("/.well-known/openid-configuration", methods=["GET", "HEAD"])
def openid_configuration(request: Request) -> JSONResponse:
    return JSONResponse(_metadata(request))


@router.api_route("/.well-known/oauth-authorization-server", methods=["GET", "HEAD"])
def authorization_server_metadata(request: Request) -> JSONResponse:
    return JSONResponse(_metadata(request))


@router.api_route("/.well-known/jwks.json", methods=["GET", "HEAD"])
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(provider(request).jwks(), media_type="application/jwk-set+json")
