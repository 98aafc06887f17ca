"""The id of the request being served, for logs and audit events (docs/audit.md).

Invariant: the id is set once per request by the web layer before any handler runs and
travels with the request's context, also into the worker threads that do its database
work (``asyncio.to_thread`` copies the context), so every audit event the request writes
carries it. Outside a request (CLI, mail worker) there is none.
"""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")  # what is taken from a trusted proxy

_current: ContextVar[str | None] = ContextVar("sekisho_request_id", default=None)


def current_request_id() -> str | None:
    return _current.get()


def enter_request(request_id: str) -> Token[str | None]:
    return _current.set(request_id)


def leave_request(token: Token[str | None]) -> None:
    _current.reset(token)


def well_formed(candidate: str | None) -> bool:
    """An incoming id is used only if it is 8 to 64 safe characters: it ends up in logs
    and in the audit log, so nothing that could forge a log line or hide an event."""
    return candidate is not None and WELL_FORMED.fullmatch(candidate) is not None
