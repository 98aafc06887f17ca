"""The token endpoint (RFC 6749 §3.2 and §5; OIDC Core §3.1.3): form-encoded POST,
every parameter at most once, answers never cached (§5.1)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.core.clients import ClientInfo
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_VALUE = 4096


def refusal(error: OAuthError, *, basic: bool) -> Response:
    headers = dict(NO_STORE)
    if error.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="sekisho"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def form_fields(request: Request) -> dict[str, str] | OAuthError:
    """The form's fields, each sent once (RFC 6749 §3.2), or the refusal."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return OAuthError("invalid_request", "Send application/x-www-form-urlencoded.")
    form = await request.form()
    fields: dict[str, str] = {}
    for name in set(form.keys()):
        values = form.getlist(name)
        if len(values) != 1 or not isinstance(values[0], str) or len(values[0]) > MAX_VALUE:
            return OAuthError("invalid_request", f"{name} is repeated.")
        fields[name] = values[0]
    return fields


@router.post("/token")
async def token(request: Request) -> Response:
    """Reads the form on the loop, then does the work in the thread pool."""
    basic = "authorization" in request.headers
    fields = await form_fields(request)
    if isinstance(fields, OAuthError):
        return refusal(fields, basic=basic)
    host = request.client.host if request.client else None
    client_info = ClientInfo.of(host, request.headers.get("user-agent"))
    headers = {"Authorization": request.headers.get("authorization", "")}
    try:
        body = await run_in_threadpool(
            provider(request).token, headers, fields, basic=basic, client_info=client_info
        )
    except OAuthError as error:
        return refusal(error, basic=basic)
    return JSONResponse(body, headers=NO_STORE)
