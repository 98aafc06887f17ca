"""Composition: the message is written out directly, and reads back as the stdlib reads it."""

from __future__ import annotations

from typing import Any

import pytest

from sekisho.mail.compose import signin_message

FROM = "セキショ <no-reply@example.com>"


def _payload(to: str, code: str) -> dict[str, Any]:
    return {
        "flow_id": "f" * 22,
        "to": to,
        "locale": "ja",
        "link": "https://auth.example.com/signin/email/link?token=abc",
        "code": code,
        "requested_at": "2026-11-27T21:00:00+00:00",
        "ip": "203.0.113.5",
        "device": "Firefox on Linux",
        "expires_minutes": 10,
    }


def test_a_sign_in_message_is_7_bit_and_reads_back_whole() -> None:
    outgoing = signin_message(FROM, _payload("b@example.com", "654321"))
    assert outgoing.data.isascii()
    assert all(len(line) <= 78 for line in outgoing.data.split(b"\r\n"))
    assert (outgoing.sender, outgoing.recipients, outgoing.utf8) == (
        "no-reply@example.com",
        ("b@example.com",),
        False,
    )
    message = outgoing.parsed()
    assert message.defects == []
    assert str(message["From"]) == FROM
    assert str(message["To"]) == "b@example.com"
    assert "654321" in str(message["Subject"])
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    assert "654321" in plain.get_content()
    assert "654321" in html.get_content()


def test_a_non_ascii_recipient_needs_smtputf8() -> None:
    outgoing = signin_message(FROM, _payload("名前@example.com", "111111"))
    assert outgoing.utf8
    assert str(outgoing.parsed()["To"]) == "名前@example.com"


def test_a_line_break_never_reaches_the_header_block() -> None:
    with pytest.raises(ValueError, match="line break"):
        signin_message(FROM, _payload("a@example.com\r\nBcc: x@example.com", "111111"))
