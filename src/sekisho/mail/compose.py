"""Building the messages from templates, in the recipient's language."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.header import Header
from email.message import EmailMessage
from email.policy import default
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import cache
from typing import Any

from sekisho.i18n import N_, format_mail_datetime, gettext, jinja_environment


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A composed message: its envelope and its bytes for the wire (CRLF line ends).
    ``utf8``: an address is not ASCII, so the server must offer SMTPUTF8."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    utf8: bool

    def parsed(self) -> EmailMessage:
        """The message read back with the stdlib (the development mailbox, tests)."""
        message = message_from_bytes(self.data, policy=default)
        assert isinstance(message, EmailMessage)
        return message


@cache
def _sender(mail_from: str) -> tuple[str, str]:
    """``mail_from`` as a header (a display name RFC 2047 encoded) and its address."""
    name, address = parseaddr(mail_from)
    return formataddr((name, address), charset="utf-8"), address


def _header(name: str, value: str, encode: Callable[[str], str] = str) -> str:
    """One header line; a value can never carry a line break into the header block."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"line break in the {name} header")
    return f"{name}: {encode(value)}\r\n"


def _encoded(subject: str) -> str:
    """RFC 2047 encoded words, folded, as the stdlib writes a non-ASCII subject."""
    return Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")


def _part(subtype: str, content: str) -> str:
    body = base64.encodebytes(content.encode()).decode("ascii").replace("\n", "\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{body}"
    )


def _message(
    mail_from: str, to: str, subject: str, template: str, context: dict[str, Any]
) -> Outgoing:
    """A multipart/alternative message (plain text, then HTML), written out directly:
    the stdlib ``email`` package's header parsing, content manager and generator were
    a fifth of a code sign-in's CPU (issue 8). The headers are 7-bit (the subject and
    a display name RFC 2047 encoded), except a non-ASCII recipient, which needs
    SMTPUTF8 as before; the parts are UTF-8 in base64, so no line is too long."""
    locale = str(context["locale"])
    environment = jinja_environment("mail/templates", locale)
    text = environment.get_template(f"{template}.txt").render(**context)
    html = environment.get_template(f"{template}.html").render(**context)
    from_header, address = _sender(mail_from)
    boundary = f"=_{secrets.token_hex(16)}"
    head = "".join(
        (
            _header("From", mail_from, lambda _: from_header),
            _header("To", to),
            _header("Subject", subject, _encoded),
            _header("Date", formatdate(localtime=False)),
            _header("Message-ID", make_msgid(domain=address.rsplit("@", 1)[-1])),
            "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n',
        )
    )
    body = f"--{boundary}\r\n{_part('plain', text)}--{boundary}\r\n{_part('html', html)}"
    data = f"{head}{body}--{boundary}--\r\n".encode()
    return Outgoing(address, (to,), data, utf8=not (to + address).isascii())


def signin_message(mail_from: str, payload: dict[str, Any]) -> Outgoing:
    """The sign-in email: link, code, and who asked (IP, device, time: SECURITY.md case 11)."""
    context = dict(payload, requested_at=datetime.fromisoformat(payload["requested_at"]))
    subject = gettext(payload["locale"], "Your sign-in code is %(code)s", code=payload["code"])
    return _message(mail_from, payload["to"], subject, "signin", context)


def no_account_message(mail_from: str, payload: dict[str, Any], public_origin: str) -> Outgoing:
    """Sent instead of a sign-in email, when configured, to an address with no account."""
    context = {
        "locale": payload["locale"],
        "requested_at": datetime.fromisoformat(payload["requested_at"]),
        "ip": payload["ip"],
        "device": payload["device"],
        "public_origin": public_origin,
    }
    subject = gettext(payload["locale"], "Sign-in attempt: no account for this address")
    return _message(mail_from, payload["to"], subject, "no_account", context)


def passkey_only_message(
    mail_from: str, payload: dict[str, Any], locale: str, public_origin: str
) -> Outgoing:
    """Sent instead of a sign-in email to an account whose tier does not let email sign
    it in (SECURITY.md case 50): no link and no code, only where to sign in with a
    passkey. Written in ``locale``, the holder's; the requester's device description is
    left out because it was written in the requester's language."""
    context = {
        "locale": locale,
        "requested_at": datetime.fromisoformat(payload["requested_at"]),
        "ip": payload["ip"],
        "signin_url": f"{public_origin}/signin",
    }
    subject = gettext(locale, "Sign in with your passkey")
    return _message(mail_from, payload["to"], subject, "passkey_only", context)


NOTICES = {
    "passkey_added": (
        N_("A passkey was added to your account"),
        N_("The passkey “%(name)s” was added to your account."),
    ),
    "passkey_removed": (
        N_("A passkey was removed from your account"),
        N_("The passkey “%(name)s” was removed from your account."),
    ),
    "new_browser": (
        N_("New sign-in to your account"),
        N_(
            "Someone signed in to your account from a browser that had not been used with it before."
        ),
    ),
    "recovery_code_used": (
        N_("A recovery code was used to sign in to your account"),
        N_(
            "One of your recovery codes was used to sign in. %(remaining)s unused codes are left. That session can only add a new passkey."
        ),
    ),
    "recovery_completed": (
        N_("Your account was recovered"),
        N_(
            "The passkey “%(name)s” was added to recover your account, and every other session was signed out. Removing passkeys and making new recovery codes are on hold until %(until)s."
        ),
    ),
    "recovery_codes_generated": (
        N_("New recovery codes were made for your account"),
        N_(
            "A new set of %(count)s recovery codes was made for your account. The earlier codes no longer work."
        ),
    ),
    "tier_changed": (
        N_("The sign-in rules for your account changed"),
        N_(
            "Your account moved from the “%(before)s” tier to the “%(after)s” tier. The ways you may sign in and recover your account follow the new tier; your account page shows them."
        ),
    ),
    "operator_recovery_opened": (
        N_("An operator started recovering your account"),
        N_(
            "An operator opened a request to recover your account. Nothing changes until a second operator approves it. If you did not ask for this, contact us at once."
        ),
    ),
    "operator_recovery_approved": (
        N_("Recovery of your account was approved"),
        N_(
            "A second operator approved recovering your account. After confirming who you are, the operators give you a one-time recovery code in person or by phone; it works once, until %(until)s. This code is never sent by email."
        ),
    ),
    "operator_recovery_cancelled": (
        N_("The recovery of your account was cancelled"),
        N_(
            "An operator cancelled the request to recover your account: its one-time code, if one was made, no longer works. Your passkeys and recovery codes are unchanged."
        ),
    ),
    "operator_recovery_used": (
        N_("The one-time recovery code for your account was used"),
        N_(
            "The one-time recovery code from the operators was used to sign in. That session can only add a new passkey; once it does, every other session is signed out."
        ),
    ),
    "email_changed": (
        N_("The email address of your account was changed"),
        N_(
            "The email address of your account was changed to %(new_email)s. Sign-in emails and notices now go there, not to this address. If this was not you, sign in with a passkey or a recovery code and change it back, or contact the operators of this service at once: someone else may control your account."
        ),
    ),
}


def email_change_message(mail_from: str, payload: dict[str, Any]) -> Outgoing:
    """The confirmation sent to a new address: link, code, and who asked."""
    context = dict(payload, requested_at=datetime.fromisoformat(payload["requested_at"]))
    subject = gettext(
        payload["locale"], "Confirm your new email address: code %(code)s", code=payload["code"]
    )
    return _message(mail_from, payload["to"], subject, "email_change", context)


def email_taken_message(mail_from: str, payload: dict[str, Any], public_origin: str) -> Outgoing:
    """Sent instead of a confirmation when the new address already has an account: it
    tells the owner of the address, never the person who asked."""
    context = dict(
        payload,
        requested_at=datetime.fromisoformat(payload["requested_at"]),
        public_origin=public_origin,
    )
    subject = gettext(payload["locale"], "This address already has an account")
    return _message(mail_from, payload["to"], subject, "email_change_taken", context)


def notice_message(mail_from: str, payload: dict[str, Any], public_origin: str) -> Outgoing:
    """A security notice: what changed, when, from where, and what to do if it was not you."""
    locale = payload["locale"]
    title, body = NOTICES[payload["notice"]]
    params = dict(payload["params"])
    if "until" in params:
        params["until"] = format_mail_datetime(datetime.fromisoformat(params["until"]), locale)
    context = {
        "locale": locale,
        "title": gettext(locale, title),
        "body": gettext(locale, body, **params),
        "requested_at": datetime.fromisoformat(payload["requested_at"]),
        "ip": payload["ip"],
        "device": payload["device"],
        "account_url": f"{public_origin}/account",
        "by_operator": payload.get("by") == "operator",
    }
    return _message(mail_from, payload["to"], context["title"], "notice", context)
