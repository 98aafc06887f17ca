"""The outbox worker for a test server started with ``mail_worker=False``: the test
decides when queued mail is delivered."""

from __future__ import annotations

from sekisho.core.keys import Keyring
from sekisho.mail.senders import SmtpSender
from sekisho.mail.worker import OutboxWorker
from sekisho.service import utc_now
from sekisho.store.database import Database
from tests.support.server import LiveServer


def outbox_worker(server: LiveServer, database: Database) -> tuple[OutboxWorker, SmtpSender]:
    """A worker with the server's settings and its own SMTP connection (``sender``)."""
    sender = SmtpSender(server.settings)
    worker = OutboxWorker(
        settings=server.settings,
        database=database,
        keys=Keyring(server.settings.secret_key.get_secret_value()),
        sender=sender,
        clock=utc_now,
    )
    return worker, sender
