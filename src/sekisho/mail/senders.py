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


class SmtpSender:
    """aiosmtplib with STARTTLS, implicit TLS or none, and optional auth."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_seconds,
        )


class DevMailboxSender:
    """Development only: keeps messages in the database for /dev/mailbox and prints them."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._keep, message)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        log.warning("dev mailbox: to=%s subject=%s\n%s", message["To"], message["Subject"], text)

    def _keep(self, message: EmailMessage) -> None:
        with self._database.engine.begin() as connection:
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
