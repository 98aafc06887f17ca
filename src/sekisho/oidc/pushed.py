"""The pushed authorization request endpoint (RFC 9126 §2): form-encoded POST, every
parameter at most once, client authentication as at the token endpoint; answers 201
with the ``request_uri`` and are never cached (§2.2)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.core.clients import ClientInfo
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.token import NO_STORE, form_fields, refusal

router = APIRouter(include_in_schema=False)


@router.post("/par")
async def pushed_authorization_request(request: Request) -> Response:
    basic = "authorization" in request.headers
    fields = await form_fields(request)
    if isinstance(fields, OAuthError):
        return refusal(fields, basic=basic)
    host = request.client.host if request.client else None
    client_info = ClientInfo.of(host, request.headers.get("user-agent"))
    headers = {"Authorization": request.headers.get("authorization", "")}
    try:
        body = await run_in_threadpool(
            provider(request).push, headers, fields, basic=basic, client_info=client_info
        )
    except OAuthError as error:
        return refusal(error, basic=basic)
    return JSONResponse(body, status_code=201, headers=NO_STORE)
