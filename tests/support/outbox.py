"""The outbox of a test server: a worker for one started with ``mail_worker=False`` (the
test decides when queued mail is delivered), and waiting for the server's own worker."""

from __future__ import annotations

import time

from sqlalchemy import text

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


def wait_for_outbox(server: LiveServer, condition: str, timeout: float = 15.0) -> None:
    """Poll until the SQL ``condition`` on the outbox holds; fail after ``timeout``. The
    worker settles a message (sent, dropped, or an attempt's error) in a commit after its
    SMTP conversation, so a test that saw the mail arrive, or waited for a failure, reads
    the outbox only once that commit is made."""
    deadline = time.monotonic() + timeout
    while True:
        with server.database.engine.connect() as connection:
            if connection.execute(text(condition)).scalar_one():
                return
        assert time.monotonic() < deadline, f"outbox never satisfied: {condition}"
        time.sleep(0.02)
