"""Every request gets an id: in the ``X-Request-ID`` response header, in its log lines and
in the audit events it writes (``sekisho.core.request_ids``); set by
:class:`sekisho.web.middleware.Edge`, the outermost layer.

Invariant: an incoming ``X-Request-ID`` is used only when the operator says a proxy in
front sets it (``accept_request_id``) and it is well formed; otherwise Sekisho makes one.
A client can therefore never put its own text into the logs or the audit log.
"""

from __future__ import annotations

import secrets

from sekisho.core.request_ids import well_formed

HEADER = b"x-request-id"


def request_id_for(offered: bytes | None) -> str:
    """The request's id: ``offered`` (the header's value, passed only when a trusted
    proxy sets it) when well formed, else a new random one."""
    if offered is not None:
        candidate = offered.decode("latin-1")
        if well_formed(candidate):
            return candidate
    return secrets.token_hex(16)
