"""What each JSON API operation documents about its refusals, for the OpenAPI schema.

Invariant: an operation's ``responses`` list every status it can answer with, and each
error status the exact ``{"error", "message", ...}`` body that
:mod:`sekisho.web.errors` sends, with the stable codes that status can carry. The test
suite runs Schemathesis with all its checks against the live schema to keep it true.
"""

from __future__ import annotations

from typing import Any

from sekisho.errors import ErrorCode

#: What any request may meet: a NUL or an unreadable body (400), a body that stalls
#: (408) or is too large (413), a database or rate-limit store that is down (503).
ANY = (
    ErrorCode.invalid_request,
    ErrorCode.request_timeout,
    ErrorCode.payload_too_large,
    ErrorCode.service_unavailable,
)
#: A state-changing request from another site (case 33).
CROSS_SITE = (ErrorCode.csrf_failed,)
#: Every JSON body: cross-site check, ``application/json`` only, the body's shape.
JSON_BODY = (
    *ANY,
    *CROSS_SITE,
    ErrorCode.unsupported_media_type,
    ErrorCode.invalid_field,
)
#: A malformed id in the path.
PATH_ID = (ErrorCode.invalid_field,)
SIGNED_IN = (
    ErrorCode.not_authenticated,
    ErrorCode.restricted_session,
    ErrorCode.session_restricted,
)

_BEARER = (
    ErrorCode.api_key_invalid,
    ErrorCode.insufficient_scope,
    ErrorCode.access_token_invalid,
    ErrorCode.insufficient_user_authentication,
)

#: The ``detail`` keys some refusals add to the body.
_DETAIL: dict[str, dict[str, Any]] = {
    "field": {"type": "string", "description": "The field(s) that were refused, comma-separated."},
    "reason": {"type": "string", "description": "A stable token saying what was wrong."},
    "credential_id": {"type": "string", "description": "The credential id concerned."},
    "attempts_remaining": {"type": "integer", "minimum": 0},
    "until": {"type": "string", "description": "When a hold ends (ISO 8601)."},
    "scope": {"type": "string", "description": "The API key scopes the operation needs."},
    "explanation": {"type": "string", "description": "Why, in words, for the operator."},
    "action": {"type": "string", "description": "The action concerned."},
    "acr_values": {"type": "string", "description": "RFC 9470: the acr the sign-in must reach."},
    "max_age": {
        "type": "integer",
        "minimum": 0,
        "description": "RFC 9470: the most seconds since the person signed in.",
    },
}


def error_schema(codes: list[ErrorCode]) -> dict[str, Any]:
    """The JSON Schema of an error body that carries one of ``codes``."""
    return {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "enum": [code.name for code in codes]},
            "message": {"type": "string"},
            **_DETAIL,
        },
        "additionalProperties": False,
    }


def refusals(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: one entry per status, listing its error codes."""
    by_status: dict[int, list[ErrorCode]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(code.status, []).append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, listed in sorted(by_status.items()):
        headers: dict[str, Any] = {}
        if ErrorCode.rate_limited in listed:
            headers["Retry-After"] = {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        if any(code in _BEARER for code in listed):
            headers["WWW-Authenticate"] = {
                "description": "The RFC 6750 bearer challenge (RFC 9470 for a step-up).",
                "schema": {"type": "string", "pattern": "^Bearer "},
            }
        if ErrorCode.client_authentication_failed in listed:
            headers["WWW-Authenticate"] = {
                "description": "The HTTP Basic challenge for client authentication.",
                "schema": {"type": "string", "pattern": "^Basic "},
            }
        responses[status] = {
            "description": "; ".join(f"`{code.name}`: {code.message}" for code in listed),
            "content": {"application/json": {"schema": error_schema(listed)}},
            **({"headers": headers} if headers else {}),
        }
    return responses
