"""The edge of every HTTP request, as one pure ASGI middleware (:class:`Edge`).

What it does, outermost first, for each request:

- gives the request its id (``X-Request-ID`` on the response, in its log lines and audit
  events; an incoming id only from a trusted proxy, see :mod:`sekisho.web.request_ids`);
- writes the access log line and feeds the request metrics: method, path *without* the
  query string (tokens travel in emailed links' query strings, SECURITY.md case 9),
  percent-encoded so a CR or LF cannot forge a line, status and time;
- the device cookie, when the request minted a device id
  (:class:`sekisho.web.devices.DeviceCookie`);
- security headers on every response: CSP with frame-ancestors 'none', no referrer, HSTS
  behind TLS, and ``Cache-Control: no-store`` on everything except static files and the
  explicit allow-list :data:`PUBLIC_CACHE` (provider metadata and keys, the same for
  everyone, RFC 9111 §5.2.2.9), which only a successful answer gets;
- answers HEAD wherever GET is, without the body (RFC 9110 §9.3.2): FastAPI routes list
  only the methods they declare, so a HEAD on a GET route would be 405. Except on
  :data:`HEAD_REFUSED`, whose GET changes state: there HEAD reaches the router as it is
  and gets its 405, so a link checker's HEAD never runs a GET whose answer it drops;
- a body read timeout: each wait for the next piece of a request body is bounded, then
  408 and the connection closed (uvicorn has none, so a client that declares a body
  and stalls would hold a connection and a worker thread for ever);
- a body size cap: 413 for a body declared or streamed over ``max_body_bytes``, as a
  page outside ``/api/`` (``refuse``);
- a NUL in the path or the query string (:func:`sekisho.web.params.carries_nul`) is
  answered by ``refuse`` (400 ``invalid_request``, as the API or a page) before any
  routing.

These were six middlewares, one inside the other; each added a coroutine frame per
request and a wrapper per message sent or received. One layer does the same with one
``send`` wrapper and one ``receive`` wrapper (docs/architecture.md). The NUL refusal was an
app-wide FastAPI dependency, solved on every request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sekisho.core.request_ids import enter_request, leave_request
from sekisho.errors import ErrorCode
from sekisho.logs import AccessRecord
from sekisho.web.params import carries_nul
from sekisho.web.request_ids import HEADER, request_id_for

access_log = logging.getLogger("sekisho.access")

#: How the edge answers a request it refuses itself (``web.errors.refuse_at_edge``).
Refuse = Callable[[Scope, Receive, Send, ErrorCode], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
_CSP = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"interest-cohort=()"),
)
_NO_STORE = (b"cache-control", b"no-store")
_CACHE_CONTROL = _NO_STORE[0]
PUBLIC_CACHE: dict[str, bytes] = {
    path: b"public, max-age=300"
    for path in (
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    )
}
"""The only dynamic answers shared caches may keep, and for how long. The JWKS's five
minutes are shorter than the delay of ``sekisho keys rotate`` (an hour by default): a
relying party's cached copy holds a new key before it signs."""
HEAD_REFUSED = frozenset({"/authorize", "/authorize/resume"})
"""Paths whose GET mints an authorization code or stores, finishes or spends an
authorization request: HEAD gets 405 there (``Allow`` without HEAD)."""
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/!$&'()*+,;=:@._~-]*")  # what ``quote`` leaves as it is


HEAD_REQUEST = "sekisho.head"
"""Scope key set on a HEAD request answered by its GET route, for the rare route that
must not change anything on HEAD (RFC 9110 §9.2.1)."""


class Edge:
    """Request id, access log and metrics, security headers, HEAD as GET, body read
    timeout and body size cap, in that order from the outside in."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        accept_request_id: bool,
        observe: Callable[[Scope, int, float], None],
        hsts: bool,
        max_body_bytes: int,
        body_read_seconds: float,
        refuse: Refuse,
        device_cookie: Callable[[Scope], tuple[bytes, bytes] | None],
    ) -> None:
        self.app = app
        self.refuse = refuse
        self.device_cookie = device_cookie
        self.accept_request_id = accept_request_id
        self.observe = observe
        self.max_bytes = max_body_bytes
        self.seconds = body_read_seconds
        self._headers = (*_ALWAYS, _HSTS) if hsts else _ALWAYS
        self._replaced = frozenset(name for name, _ in (*self._headers, _NO_STORE))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        declared: bytes | None = None
        too_large = chunked = False
        offered: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                too_large = too_large or _over(value, self.max_bytes)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == HEADER and offered is None:
                offered = value
        request_id = request_id_for(offered if self.accept_request_id else None)
        status = 500
        head = scope["method"] == "HEAD"
        path = scope["path"]
        static = path.startswith("/static/")
        public = PUBLIC_CACHE.get(path)
        id_header = (HEADER, request_id.encode())
        inner = (
            {**scope, "method": "GET", HEAD_REQUEST: True}
            if head and path not in HEAD_REFUSED
            else scope
        )

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                caching = None if static else _NO_STORE
                if public is not None and status == 200:
                    caching = (_CACHE_CONTROL, public)
                headers = self._secured(message.get("headers", ()), caching, id_header)
                device = self.device_cookie(inner)
                if device is not None:
                    headers.append(device)
                message["headers"] = headers
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        pending = chunked or (declared is not None and declared != b"0")
        received = 0

        async def edge_receive() -> Message:
            nonlocal pending, received
            if not pending:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise _Stalled from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                pending = False
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        token = enter_request(request_id)
        try:
            if too_large:
                await self.refuse(scope, receive, edge_send, ErrorCode.payload_too_large)
                return
            if carries_nul(scope):
                await self.refuse(scope, edge_receive, edge_send, ErrorCode.invalid_request)
                return
            try:
                await self.app(inner, edge_receive, edge_send)
            except _TooLarge:
                await self.refuse(scope, receive, edge_send, ErrorCode.payload_too_large)
        finally:
            seconds = time.perf_counter() - started
            self._log(scope, status, seconds)
            leave_request(token)

    def _secured(
        self,
        headers: Iterable[tuple[bytes, bytes]],
        caching: tuple[bytes, bytes] | None,
        id_header: tuple[bytes, bytes],
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with the security headers and ``caching`` set
        (replacing the app's, except a page's own Content-Security-Policy; ``None`` keeps
        a static file's own) and the request id."""
        replaced = self._replaced if caching else self._replaced - {_CACHE_CONTROL}
        kept = [
            (name, value)
            for name, value in headers
            if name.lower() not in replaced and name.lower() != HEADER
        ]
        if not any(name.lower() == _CSP[0] for name, _ in kept):
            kept.append(_CSP)
        kept.extend(self._headers)
        if caching:
            kept.append(caching)
        kept.append(id_header)
        return kept

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        self.observe(scope, status, seconds)
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client") or ("-", 0)
        path = scope["path"]
        if _PLAIN_PATH.fullmatch(path) is None:
            path = quote(path, safe=_PATH_SAFE)
        access_log.handle(
            AccessRecord(access_log.name, client[0], scope["method"], path, status, seconds * 1000)
        )


def _over(declared: bytes, max_bytes: int) -> bool:
    try:
        return int(declared) > max_bytes
    except ValueError:
        return True


class _TooLarge(HTTPException):
    """Raised while the app reads a streamed body over the cap: an ``HTTPException``,
    which FastAPI's body parsing passes on as it is (any other exception would become
    its generic 400), and it closes the connection."""

    def __init__(self) -> None:
        super().__init__(413, headers={"Connection": "close"})


class _Stalled(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, headers={"Connection": "close"})
