"""Which address a request comes from, behind reverse proxies (docs/deployment.md,
"Reverse proxy and TLS"; SECURITY.md case 42: the per-IP limits count this address).

Invariant: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from a peer
listed in ``forwarded_allow_ips`` (addresses or CIDR networks, ``*`` for any). The
client is then the right-most address of ``X-Forwarded-For`` that is not itself a
trusted proxy, so an address a client writes into the header itself (left of the one
its proxy appends) is never taken. Sekisho applies this itself, whatever server runs
it (``sekisho serve``, ``uvicorn --factory sekisho.asgi:create``, gunicorn, granian),
with uvicorn's implementation of that rule; ``Forwarded`` (RFC 7239) is not read.
"""

from __future__ import annotations

from typing import Any, cast

from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from sekisho.settings import Settings


def behind_proxies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` seeing the client address the trusted proxies forwarded."""
    wrapped = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=settings.forwarded_allow_ips)
    return cast(ASGIApp, wrapped)
