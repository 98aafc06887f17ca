"""Where composed messages go: a real SMTP server, or the development mailbox."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Protocol

import aiosmtplib
from sqlalchemy import insert

from sekisho.mail.compose import Outgoing
from sekisho.settings import Settings
from sekisho.store.database import Database
from sekisho.store.tables import dev_mailbox

log = logging.getLogger("sekisho.mail")


class Sender(Protocol):
    #: How many messages it sends at once.
    connections: int

    async def send(self, message: Outgoing) -> None: ...

    async def idle(self) -> None:
        """The queue is empty for now: let go of what is kept open between messages."""


class SmtpSender:
    """aiosmtplib with STARTTLS, implicit TLS or none, and optional auth.

    Up to ``smtp_connections`` connections send at once; each is kept while messages
    follow each other (the worker calls :meth:`idle` when no mail has come for a few
    seconds, which ends them with QUIT), so a burst costs one TCP and TLS handshake and
    one login per connection, not one per message. A kept connection the server has
    dropped is replaced once; any other failure closes it and is raised (the worker
    retries the message later).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.connections = settings.smtp_connections
        self._free = asyncio.Semaphore(self.connections)
        self._kept: list[aiosmtplib.SMTP] = []

    async def send(self, message: Outgoing) -> None:
        async with self._free:
            client = self._take_kept()
            if client is not None:
                try:
                    await _transmit(client, message)
                except aiosmtplib.SMTPServerDisconnected:
                    client.close()
                except BaseException:
                    client.close()
                    raise
                else:
                    self._kept.append(client)
                    return
            client = await self._connect()
            try:
                await _transmit(client, message)
            except BaseException:
                client.close()
                raise
            self._kept.append(client)

    async def idle(self) -> None:
        kept, self._kept = self._kept, []
        for client in kept:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    def _take_kept(self) -> aiosmtplib.SMTP | None:
        while self._kept:
            client = self._kept.pop()
            if client.is_connected:
                return client
            client.close()
        return None

    async def _connect(self) -> aiosmtplib.SMTP:
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
        return client


async def _transmit(client: aiosmtplib.SMTP, message: Outgoing) -> None:
    """The composed bytes as they are: 7-bit, or UTF-8 headers for a non-ASCII address,
    which the server must accept (SMTPUTF8), as ``send_message`` required."""
    options: list[str] = []
    if message.utf8:
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        if not client.supports_extension("SMTPUTF8"):
            raise aiosmtplib.SMTPNotSupported("a non-ASCII address, and no SMTPUTF8 at the server")
        options = ["SMTPUTF8", "BODY=8BITMIME"]
    await client.sendmail(
        message.sender, list(message.recipients), message.data, mail_options=options
    )


class DevMailboxSender:
    """Development only: keeps messages in the database for /dev/mailbox and prints them."""

    connections = 1

    def __init__(self, database: Database) -> None:
        self._database = database

    async def send(self, outgoing: Outgoing) -> None:
        to, subject, text = await asyncio.to_thread(self._keep, outgoing)
        log.warning("dev mailbox: to=%s subject=%s\n%s", to, subject, text)

    async def idle(self) -> None:
        """Nothing is kept open."""

    def _keep(self, outgoing: Outgoing) -> tuple[str, str, str]:
        """Store the message and return its recipient, subject and plain text. On the
        thread pool, reading it back included: parsing is the stdlib ``email``
        package's CPU work, which must not hold the event loop."""
        message = outgoing.parsed()
        with self._database.begin() as connection:
            connection.execute(
                insert(dev_mailbox).values(
                    received_at=datetime.now(UTC),
                    recipient=str(message["To"]),
                    subject=str(message["Subject"]),
                    raw=message.as_string(),
                )
            )
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        return str(message["To"]), str(message["Subject"]), text


def make_sender(settings: Settings, database: Database) -> Sender:
    if settings.mail_backend == "smtp":
        return SmtpSender(settings)
    return DevMailboxSender(database)
