"""Every password attempt takes the same time, whatever the account (SECURITY.md case 60).

The work behind an attempt differs by account: nothing but a dummy argon2id for an
unknown address, the legacy derivation plus argon2id for a wrapped legacy hash (PBKDF2
with 1,000 or 1,000,000 iterations, bcrypt, scrypt, ...). So the answer is held back
until ``password_attempt_floor`` has passed since the attempt began, whatever its
outcome. The work runs in the thread pool and the wait is an ``asyncio.sleep``: neither
blocks the event loop, and waiting holds no worker thread. An attempt whose work alone
took longer than the floor is logged (without the address): the floor is then too low
for the costliest imported hash on this machine.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from sekisho.core.completion import IssuedSession
from sekisho.web import context

logger = logging.getLogger(__name__)


async def password_attempt(request: Request, *, raw_email: str, password: str) -> IssuedSession:
    """Run the password sign-in off the event loop and answer no sooner than the floor."""
    service = context.service(request)
    floor = service.settings.password_attempt_floor.total_seconds()
    client = context.client(request)
    previous = context.session_token(request)
    started = time.monotonic()
    try:
        return await run_in_threadpool(
            lambda: service.sign_in_with_password(
                raw_email=raw_email, password=password, client=client, previous=previous
            )
        )
    finally:
        spent = time.monotonic() - started
        if spent < floor:
            await asyncio.sleep(floor - spent)
        else:
            logger.warning(
                "a password attempt took %.3f s, more than password_attempt_floor (%.3f s)",
                spent,
                floor,
            )
