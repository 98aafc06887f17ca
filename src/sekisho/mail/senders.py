"""Where composed messages go: a real SMTP server, or the development mailbox."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
from sqlalchemy import insert

from sekisho.settings import Settings
from sekisho.store.database import Database
from sekisho.store.tables import dev_mailbox

log = logging.getLogger("sekisho.mail")


class Sender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    async def idle(self) -> None:
        """The queue is empty for now: let go of what is kept open between messages."""


class SmtpSender:
    """aiosmtplib with STARTTLS, implicit TLS or none, and optional auth.

    One connection is kept while messages follow each other (the worker calls
    :meth:`idle` when the queue runs dry, which ends it with QUIT), so a burst costs one
    TCP and TLS handshake and one login, not one per message. A kept connection the
    server has dropped is replaced once; any other failure closes it and is raised
    (the worker retries the message later).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def send(self, message: EmailMessage) -> None:
        async with self._lock:
            kept = self._client is not None and self._client.is_connected
            try:
                await (await self._connected()).send_message(message)
            except aiosmtplib.SMTPServerDisconnected:
                self._drop()
                if not kept:
                    raise
                await (await self._connected()).send_message(message)
            except BaseException:
                self._drop()
                raise

    async def idle(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_seconds,
        )
        await client.connect()
        self._client = client
        return client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class DevMailboxSender:
    """Development only: keeps messages in the database for /dev/mailbox and prints them."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._keep, message)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        log.warning("dev mailbox: to=%s subject=%s\n%s", message["To"], message["Subject"], text)

    async def idle(self) -> None:
        """Nothing is kept open."""

    def _keep(self, message: EmailMessage) -> None:
        with self._database.begin() as connection:
            connection.execute(
                insert(dev_mailbox).values(
                    received_at=datetime.now(UTC),
                    recipient=str(message["To"]),
                    subject=str(message["Subject"]),
                    raw=message.as_string(),
                )
            )


def make_sender(settings: Settings, database: Database) -> Sender:
    if settings.mail_backend == "smtp":
        return SmtpSender(settings)
    return DevMailboxSender(database)
