"""An SMTP sink (aiosmtpd) that hands each sign-in code to the virtual user waiting for it.

It runs in the load generator's process, on its own thread and event loop; a waiting
user gets its code through its own loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import email
import re
from collections import defaultdict
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from tests.support.ports import free_port

CODE = re.compile(rb"(?<![0-9])([0-9]{6})(?![0-9])")


def code_in(content: bytes) -> str | None:
    """The 6-digit code of a sign-in message (plain part), read from the MIME message;
    None for other messages (security notices)."""
    message = email.message_from_bytes(content, policy=default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = str(body.get_content()) if body is not None else ""
    text = re.sub(r"https?://\S+", "", text)
    found = CODE.search(text.encode())
    return found.group(1).decode() if found else None


class MailSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.delivered = 0
        self._waiting: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[str]]]] = (
            defaultdict(list)
        )
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def expect(self, address: str) -> asyncio.Future[str]:
        """A future for the code of the next message to ``address``; call before requesting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._waiting[address].append((loop, future))
        return future

    def forget(self, address: str, future: asyncio.Future[str]) -> None:
        """Stop waiting (the request failed): the next message goes to the next waiter."""
        self._waiting[address] = [w for w in self._waiting[address] if w[1] is not future]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered += 1
        for address in envelope.rcpt_tos:
            waiters = self._waiting.get(address)
            if waiters:
                code = code_in(envelope.content)
                if code is not None:
                    loop, future = waiters.pop(0)
                    loop.call_soon_threadsafe(_settle, future, code)
        return "250 OK"


def _settle(future: asyncio.Future[str], code: str) -> None:
    if not future.done():
        future.set_result(code)
