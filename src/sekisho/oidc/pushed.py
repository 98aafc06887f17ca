"""The pushed authorization request endpoint (RFC 9126 §2): form-encoded POST, every
parameter at most once, client authentication as at the token endpoint; answers 201
with the ``request_uri`` and are never cached (§2.2)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.errors import SekishoError
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.token import (
    NO_STORE,
    client_info_of,
    limit_by_ip,
    rate_limited,
    read_form,
    refusal,
)

router = APIRouter(include_in_schema=False)


@router.post("/par")
async def pushed_authorization_request(request: Request) -> Response:
    """Counted and read like ``/token``; the work runs in the thread pool."""
    basic = "authorization" in request.headers
    headers = {"Authorization": request.headers.get("authorization", "")}
    try:
        await limit_by_ip(request)
        fields = await read_form(request)
        body = await run_in_threadpool(
            provider(request).push,
            headers,
            fields,
            basic=basic,
            client_info=client_info_of(request),
        )
    except OAuthError as error:
        return refusal(error, basic=basic)
    except SekishoError as error:
        return rate_limited(error)
    return JSONResponse(body, status_code=201, headers=NO_STORE)
