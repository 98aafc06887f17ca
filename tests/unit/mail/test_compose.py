"""Composition: headers whose value repeats are parsed once; per-message ones never kept."""

from __future__ import annotations

from typing import Any

from sekisho.mail.compose import signin_message

FROM = "Sekisho <no-reply@example.com>"


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


def test_the_sender_header_is_parsed_once_and_the_recipient_every_time() -> None:
    first = signin_message(FROM, _payload("a@example.com", "123456"))
    second = signin_message(FROM, _payload("b@example.com", "654321"))
    assert first["From"] is second["From"]
    assert first["To"] is not second["To"]
    assert str(second["To"]) == "b@example.com"
    assert "654321" in str(second["Subject"])
    assert first.get_content_type() == "multipart/alternative"
    plain = second.get_body(preferencelist=("plain",))
    assert plain is not None and "654321" in plain.get_content()
