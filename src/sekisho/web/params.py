"""The shapes of what requests carry: identifiers, tokens, codes, addresses.

Invariants:
- every identifier in a path (flow, session, passkey) and every token in a body is
  checked against the shape Sekisho gives it (``secrets.token_urlsafe``) before any
  database call, so a malformed one is 422 ``invalid_field`` on every backend;
- no request string with a NUL character reaches the store: PostgreSQL refuses NUL in
  text, and that refusal must never look like an outage (503). :func:`carries_nul` is
  checked before routing, for the path and the query string; body strings are either of a
  shape above or cleaned or normalised before use, and the form reader refuses NUL
  (:func:`sekisho.web.context.field`).

The same patterns go into the OpenAPI schema, so the schema says what the server accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from fastapi import Path
from pydantic import BeforeValidator, Field
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.types import Scope

from sekisho.core.addresses import MAX_ADDRESS_LENGTH

#: ``secrets.token_urlsafe`` output (flow, session and passkey ids are 22 characters).
IDENTIFIER = r"^[A-Za-z0-9_-]{1,64}$"
#: Exactly a session id: 16 random bytes, base64url.
SESSION_ID = "[A-Za-z0-9_-]{22}"
#: Link tokens are 43 characters of the same alphabet.
LINK_TOKEN_SHAPE = r"^[A-Za-z0-9_-]{1,256}$"  # noqa: S105 (a pattern, not a secret)
#: Six ASCII digits; spaces or tabs around them (as pasted) are trimmed.
CODE = r"^[ \t]*[0-9]{6}[ \t]*$"

FlowId = Annotated[str, Path(pattern=IDENTIFIER, description="A flow id, as the server gave it.")]
SessionId = Annotated[
    str, Path(pattern=f"^{SESSION_ID}$", description="A session id (see /sessions).")
]
PasskeyId = Annotated[str, Path(pattern=IDENTIFIER, description="A passkey id (see /passkeys).")]
BodyFlowId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Token = Annotated[
    str, Field(pattern=LINK_TOKEN_SHAPE, description="The token from the emailed link.")
]
Code = Annotated[str, Field(pattern=CODE, description="The 6-digit code from the email.")]


def whole_number(value: object) -> object:
    """JSON Schema's ``integer`` includes ``32.0``; strict models would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: The two-digit number of number matching.
ApprovalNumber = Annotated[int, Field(ge=10, le=99), BeforeValidator(whole_number)]


def _any_case(word: str) -> str:
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.isalpha() else ch for ch in word)


#: email-validator refuses special-use domains (RFC 6761: ``.test``, ``.local``, ...).
_SPECIAL_USE = (
    r"(^|[.@])(" + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES) + r")\.?$"
)
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=MAX_ADDRESS_LENGTH,
        json_schema_extra={"format": "email", "not": {"pattern": _SPECIAL_USE}},
        description="An email address: ASCII local part, no quotes, no special-use domain.",
    ),
]


class _SessionIdConvertor(Convertor[str]):
    """Routes ``/sessions/{session_id}`` only for a session-shaped id, so
    ``/sessions/revoke-others`` is never a session and its ``Allow`` says POST only."""

    regex = SESSION_ID

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("session_id", _SessionIdConvertor())


def carries_nul(scope: Scope) -> bool:
    """A NUL in the path or the query string (raw or percent-encoded: ``%00`` is the only
    encoding of it). Checked by the edge before routing (:class:`sekisho.web.middleware.Edge`),
    which then answers 400 ``invalid_request``: a check on the raw scope, where an
    app-wide dependency cost dependency solving on every request (docs/architecture.md)."""
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


def query_lists(request: Request) -> dict[str, list[str]]:
    """Every query parameter with all its values in order: a repeated one stays
    repeated, for the endpoint to refuse (OAuth 2.0 parameters "MUST NOT be included
    more than once", RFC 6749 §3.1)."""
    return _lists(request.query_params.multi_items())


async def form_lists(request: Request) -> dict[str, list[str]]:
    """The same for a form post: an ``application/x-www-form-urlencoded`` body's text
    fields; any other body carries no parameters."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    form = await request.form()
    return _lists((name, value) for name, value in form.multi_items() if isinstance(value, str))


def _lists(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in items:
        params.setdefault(name, []).append(value)
    return params
