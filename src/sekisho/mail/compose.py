"""Building the messages from templates, in the recipient's language."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, make_msgid
from typing import Any

from sekisho.i18n import N_, format_mail_datetime, gettext, jinja_environment

#: Headers whose values repeat from message to message, and how many parsed ones are kept.
REPEATED = frozenset(
    {"from", "auto-submitted", "mime-version", "content-type", "content-transfer-encoding"}
)
PARSED_KEPT = 64


class _KeptHeaderClasses(HeaderRegistry):
    """The stdlib's header registry builds a new class (``type(...)``) for every header
    it parses, which was the largest part of composing a message (about a fifth of a
    code sign-in's CPU, issue 8). The class of each header name is built once here; the
    headers themselves are parsed and folded exactly as before."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        """A header whose value is the same in every message (``REPEATED``: the sender,
        the parts' types and encodings) is parsed once and the parsed, immutable header
        shared; any other (recipient, subject with its code, date, message id, a
        boundary) is parsed every time, and never kept."""
        key = (name.lower(), value)
        if key[0] not in REPEATED or "boundary" in value:
            return super().__call__(name, value)
        found = self._parsed.get(key)
        if found is None:
            if len(self._parsed) >= PARSED_KEPT:
                self._parsed.clear()
            found = self._parsed[key] = super().__call__(name, value)
        return found

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


#: ``email.policy.default`` with the header classes kept.
POLICY = default.clone(header_factory=_KeptHeaderClasses())


def _message(
    mail_from: str, to: str, subject: str, template: str, context: dict[str, Any]
) -> EmailMessage:
    locale = str(context["locale"])
    environment = jinja_environment("mail/templates", locale)
    message = EmailMessage(policy=POLICY)
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=mail_from.rsplit("@", 1)[-1].strip(">"))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(environment.get_template(f"{template}.txt").render(**context))
    message.add_alternative(
        environment.get_template(f"{template}.html").render(**context), subtype="html"
    )
    return message


def signin_message(mail_from: str, payload: dict[str, Any]) -> EmailMessage:
    """The sign-in email: link, code, and who asked (IP, device, time: SECURITY.md case 11)."""
    context = dict(payload, requested_at=datetime.fromisoformat(payload["requested_at"]))
    subject = gettext(payload["locale"], "Your sign-in code is %(code)s", code=payload["code"])
    return _message(mail_from, payload["to"], subject, "signin", context)


def no_account_message(mail_from: str, payload: dict[str, Any], public_origin: str) -> EmailMessage:
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
) -> EmailMessage:
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


def email_change_message(mail_from: str, payload: dict[str, Any]) -> EmailMessage:
    """The confirmation sent to a new address: link, code, and who asked."""
    context = dict(payload, requested_at=datetime.fromisoformat(payload["requested_at"]))
    subject = gettext(
        payload["locale"], "Confirm your new email address: code %(code)s", code=payload["code"]
    )
    return _message(mail_from, payload["to"], subject, "email_change", context)


def email_taken_message(
    mail_from: str, payload: dict[str, Any], public_origin: str
) -> EmailMessage:
    """Sent instead of a confirmation when the new address already has an account: it
    tells the owner of the address, never the person who asked."""
    context = dict(
        payload,
        requested_at=datetime.fromisoformat(payload["requested_at"]),
        public_origin=public_origin,
    )
    subject = gettext(payload["locale"], "This address already has an account")
    return _message(mail_from, payload["to"], subject, "email_change_taken", context)


def notice_message(mail_from: str, payload: dict[str, Any], public_origin: str) -> EmailMessage:
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
