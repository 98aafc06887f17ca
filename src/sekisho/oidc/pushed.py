"""The pushed authorization request endpoint (RFC 9126 §2): form-encoded POST, every
parameter at most once, client authentication as at the token endpoint; answers 201
with the ``request_uri`` and are never cached (§2.2)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sekisho.oidc.discovery import provider
from sekisho.oidc.token import client_endpoint

router = APIRouter(include_in_schema=False)


@router.post("/par")
async def pushed_authorization_request(request: Request) -> Response:
    """RFC 9126 §2.2: 201 with the ``request_uri``."""
    return await client_endpoint(request, provider(request).push, status_code=201)
