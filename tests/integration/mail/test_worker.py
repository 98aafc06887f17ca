"""The outbox worker: woken by the commit that queues mail, one SMTP connection per burst."""

from __future__ import annotations

from sekisho.core.keys import Keyring
from sekisho.mail.senders import SmtpSender
from sekisho.mail.worker import OutboxWorker
from sekisho.service import utc_now
from tests.conftest import ServerFactory
from tests.support.loop import run_async
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
    sender = SmtpSender(server.settings)
    worker = OutboxWorker(
        settings=server.settings,
        database=database,
        keys=Keyring(server.settings.secret_key.get_secret_value()),
        sender=sender,
        clock=utc_now,
    )

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
