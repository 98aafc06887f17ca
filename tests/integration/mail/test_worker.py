"""The outbox worker: woken by the commit that queues mail, one SMTP connection per burst,
a burst claimed and settled as one batch."""

from __future__ import annotations

from sqlalchemy import text

from sekisho.store.database import Database
from tests.conftest import ServerFactory
from tests.support.loop import run_async
from tests.support.outbox import outbox_worker
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code


def test_a_queued_message_wakes_the_worker_before_its_poll(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """The poll is an hour: the message can only arrive because its commit woke the worker."""
    server = make_server(mail_poll_seconds=3600)
    server.add_user("alone@example.com")
    with server.client() as client:
        response = client.post("/api/v1/signin/email", json={"email": "alone@example.com"})
        assert response.status_code == 202
        _link, code = link_and_code(smtp.wait_for("alone@example.com"))
        flow_id = response.json()["flow_id"]
        signed_in = client.post(f"/api/v1/signin/email/flows/{flow_id}/code", json={"code": code})
    assert signed_in.status_code == 200, signed_in.text


def test_queued_messages_share_one_smtp_connection(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(mail_worker=False)
    addresses = [f"burst{i}@example.com" for i in range(3)]
    with server.client() as client:
        for address in addresses:
            server.add_user(address)
            assert client.post("/api/v1/signin/email", json={"email": address}).status_code == 202
    database = server.database
    worker, sender = outbox_worker(server, database)

    async def deliver_all() -> int:
        delivered = 0
        while await worker.deliver_one():
            delivered += 1
        await sender.idle()
        return delivered

    try:
        assert run_async(deliver_all()) == 3
    finally:
        database.dispose()
    for address in addresses:
        link_and_code(smtp.wait_for(address))
    assert len(smtp.peers) == 3
    assert len(set(smtp.peers)) == 1


def test_a_burst_goes_out_over_several_connections_at_once(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """The first message of a batch goes alone, the rest over ``smtp_connections``
    conversations at once; the batch is settled in the order it was queued."""
    server = make_server(mail_worker=False, smtp_connections=3)
    addresses = [f"lane{i}@example.com" for i in range(7)]
    assert _sent_in_one_batch(server, smtp, addresses) == addresses
    assert len(set(smtp.peers)) == 3


def test_the_connection_is_kept_between_two_sign_ins_a_moment_apart(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """A person signing in just after another does not wait for a new SMTP connection:
    the worker keeps it for a few seconds after the queue runs dry."""
    server = make_server(mail_poll_seconds=3600)
    for address in ("first@example.com", "second@example.com"):
        server.add_user(address)
        with server.client() as client:
            response = client.post("/api/v1/signin/email", json={"email": address})
            assert response.status_code == 202
        link_and_code(smtp.wait_for(address))
    assert len(smtp.peers) == 2
    assert len(set(smtp.peers)) == 1


def _queue(server: LiveServer, addresses: list[str]) -> None:
    with server.client() as client:
        for address in addresses:
            server.add_user(address)
            assert client.post("/api/v1/signin/email", json={"email": address}).status_code == 202


def _outbox(database: Database) -> list[tuple[str, int, bool, bool]]:
    """(status, attempts, has an error, still holds its payload) of each message, in order."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, attempts, last_error, sealed_payload FROM outbox ORDER BY id")
        ).all()
    return [(row[0], row[1], row[2] is not None, row[3] is not None) for row in rows]


def test_a_burst_is_claimed_sent_and_settled_as_one_batch(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(mail_worker=False)
    addresses = [f"batch{i}@example.com" for i in range(3)]
    assert _sent_in_one_batch(server, smtp, addresses) == addresses


def _sent_in_one_batch(server: LiveServer, smtp: SmtpCapture, addresses: list[str]) -> list[str]:
    """Queue a message to each address, deliver them as one batch, check each arrived
    and was settled as sent; the addresses of the ``mail.sent`` events, in order."""
    _queue(server, addresses)
    database = server.database
    worker, sender = outbox_worker(server, database)

    async def one_batch() -> int:
        handled = await worker.deliver_due(limit=10)
        await sender.idle()
        return handled

    try:
        assert run_async(one_batch()) == len(addresses)
        for address in addresses:
            link_and_code(smtp.wait_for(address))
        assert _outbox(database) == [("sent", 1, False, False)] * len(addresses)
        with database.engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT email FROM audit_events WHERE event = 'mail.sent' ORDER BY seq")
                ).scalars()
            )
    finally:
        database.dispose()


def test_after_a_failed_send_the_rest_of_the_batch_is_given_back_unattempted(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """SMTP down: one attempt is counted and scheduled for a retry; the others of the
    batch are not tried against the dead server, nor counted, and keep their payload."""
    smtp.stop()
    server = make_server(mail_worker=False)
    _queue(server, [f"down{i}@example.com" for i in range(3)])
    database = server.database
    worker, sender = outbox_worker(server, database)

    async def one_batch() -> int:
        handled = await worker.deliver_due(limit=10)
        await sender.idle()
        return handled

    try:
        assert run_async(one_batch()) == 3
        assert _outbox(database) == [
            ("pending", 1, True, True),
            ("pending", 0, False, True),
            ("pending", 0, False, True),
        ]
        with database.engine.connect() as connection:
            settled = connection.execute(
                text("SELECT count(*) FROM audit_events WHERE event LIKE 'mail.%'")
            ).scalar_one()
        assert settled == 0
    finally:
        database.dispose()
