"""A real SMTP server (aiosmtpd) that keeps what it receives, for tests to read."""

from __future__ import annotations

import email
import re
import threading
import time
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port

LINK = re.compile(r"https?://\S+/signin/email/link\?token=[A-Za-z0-9_\-%]+")
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class _Handler:
    def __init__(self, inbox: SmtpCapture) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        with self.inbox.lock:
            self.inbox.messages.append((list(envelope.rcpt_tos), message))
            self.inbox.peers.append(session.peer)
        return "250 OK"


class SmtpCapture:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        #: The client's (address, port) of each message: one per SMTP connection.
        self.peers: list[Any] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for rcpts, message in self.messages if address in rcpts]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> EmailMessage:
        """The ``count``-th message to ``address`` (waiting for the outbox worker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.to(address)
            if len(received) >= count:
                return received[count - 1]
            time.sleep(0.05)
        raise AssertionError(f"no message #{count} to {address} within {timeout}s")

    def wait_for_signin(self, address: str, after: int, timeout: float = 10.0) -> EmailMessage:
        """The first sign-in email (one with a link) to ``address`` after its first
        ``after`` messages. A notice queued earlier (a passkey added, a new browser) is
        delivered by the worker whenever it gets to it, so it may arrive after ``after``
        was counted: the next message is not necessarily the sign-in email."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.to(address)[after:]:
                if LINK.search(text_of(message)):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no sign-in email to {address} after #{after} within {timeout}s")


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def link_and_code(message: EmailMessage) -> tuple[str, str]:
    """The sign-in link and the 6-digit code, read from the real MIME message."""
    text = text_of(message)
    link = LINK.search(text)
    code = CODE.search(LINK.sub("", text))
    assert link is not None, text
    assert code is not None, text
    return link.group(0), code.group(1)
