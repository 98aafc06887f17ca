"""The UserInfo endpoint (OIDC Core §5.3) with Bearer tokens in the Authorization
header (RFC 6750 §2.1); errors per RFC 6750 §3."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.oidc.discovery import provider
from sekisho.oidc.errors import OAuthError
from sekisho.web.lean_route import LeanRoute

router = APIRouter(include_in_schema=False, route_class=LeanRoute)


def _challenge(error: OAuthError | None) -> Response:
    value = "Bearer"
    if error is not None:
        value += f' error="{error.error}", error_description="{error.description}"'
    return Response(status_code=401, headers={"WWW-Authenticate": value})


@router.api_route("/userinfo", methods=["GET", "POST"])
def userinfo(request: Request) -> Response:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge(None)
    try:
        claims = provider(request).userinfo(token.strip()[:8192])
    except OAuthError as error:
        return _challenge(error)
    return JSONResponse(claims)
