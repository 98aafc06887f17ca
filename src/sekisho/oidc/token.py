"""The token endpoint (RFC 6749 §3.2 and §5; OIDC Core §3.1.3): form-encoded POST,
every parameter at most once, answers never cached (§5.1). Revocation (RFC 7009) and
introspection (RFC 7662) read their forms and answer their refusals the same way.

All three are rate limited per client IP (``limit_token_per_ip``, in the same hop to
the thread pool as the work) and per authenticated client (``limit_token_per_client``, in
:meth:`Provider.authenticated`). A refusal is ``429`` with ``Retry-After`` and the
RFC 6749 §5.2 body shape holding Sekisho's own stable code:
``{"error": "rate_limited", "error_description": ...}``. Not ``slow_down``: that code
belongs to the device flow's polling (RFC 8628 §3.5), and RFC 6749 registers none for
this.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.core.clients import ClientInfo
from sekisho.errors import ErrorCode, SekishoError
from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError
from sekisho.web import context

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_VALUE = 4096


def rate_limited(error: SekishoError) -> Response:
    """429 for ``rate_limited``; any other refusal of the limits (503
    ``service_unavailable`` when they fail closed) goes on to the app's handler."""
    if error.code is not ErrorCode.rate_limited:
        raise error
    headers = dict(NO_STORE)
    if error.retry_after:
        headers["Retry-After"] = str(error.retry_after)
    body = {"error": error.code.name, "error_description": error.code.message}
    return JSONResponse(body, status_code=error.code.status, headers=headers)


def refusal(error: OAuthError, *, basic: bool) -> Response:
    headers = dict(NO_STORE)
    if error.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="sekisho"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields, each present once (RFC 6749 §3.1 and §3.2: parameters MUST
    NOT be included more than once) and of bounded length."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send application/x-www-form-urlencoded.")
    form = await request.form()
    fields: dict[str, str] = {}
    for name in set(form.keys()):
        values = form.getlist(name)
        if len(values) != 1 or not isinstance(values[0], str) or len(values[0]) > MAX_VALUE:
            raise OAuthError("invalid_request", f"{name} is repeated.")
        fields[name] = values[0]
    return fields


def client_info_of(request: Request) -> ClientInfo:
    host = request.client.host if request.client else None
    return ClientInfo.of(host, request.headers.get("user-agent"))


class ClientWork(Protocol):
    """The work of a client-authenticated endpoint, run in the thread pool."""

    def __call__(
        self, headers: dict[str, str], form: dict[str, str], *, basic: bool, client_info: ClientInfo
    ) -> dict[str, Any] | None: ...


async def client_endpoint(
    request: Request, work: ClientWork, *, status_code: int = 200
) -> Response:
    """The shell of every client-authenticated form endpoint (``/token``, ``/par``,
    ``/revoke``, ``/introspect``): the form read on the loop, then one hop to the thread
    pool that counts the request against ``limit_token_per_ip`` and, if it is within
    the limit, does the work (client authentication first). A malformed form is counted
    too (its own hop), and a client over the limit gets the 429 before any form error.
    Refusals as RFC 6749 §5.2 bodies and nothing cached. Work that answers None gets
    an empty body (RFC 7009 §2.2)."""
    basic = "authorization" in request.headers
    headers = {"Authorization": request.headers.get("authorization", "")}
    limits = context.service(request).limits
    client_info = client_info_of(request)

    def counted(fields: dict[str, str]) -> dict[str, Any] | None:
        limits.hit(limits.token_per_ip, client_info.ip)
        return work(headers, fields, basic=basic, client_info=client_info)

    try:
        try:
            fields = await read_form(request)
        except OAuthError:
            await run_in_threadpool(limits.hit, limits.token_per_ip, client_info.ip)
            raise
        body = await run_in_threadpool(counted, fields)
    except OAuthError as error:
        return refusal(error, basic=basic)
    except SekishoError as error:
        return rate_limited(error)
    if body is None:
        return Response(status_code=status_code, headers=NO_STORE)
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)


@router.post("/token")
async def token(request: Request) -> Response:
    return await client_endpoint(request, provider(request).token)
