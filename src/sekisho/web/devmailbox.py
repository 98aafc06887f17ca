"""The development mailbox: the messages the dev sender kept, with working links.

Mounted only in development mode (``create_app`` never adds it in production).
"""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default
from typing import Annotated

from fastapi import APIRouter, Path
from markupsafe import Markup, escape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from sekisho.errors import ErrorCode, SekishoError
from sekisho.store.tables import dev_mailbox
from sekisho.web import context
from sekisho.web.rendering import page

router = APIRouter(prefix="/dev/mailbox", include_in_schema=False)
_URL = re.compile(r"https?://[^\s<>\"]+")


def _linkify(text: str) -> Markup:
    escaped = str(escape(text))
    linked = _URL.sub(lambda match: f'<a href="{match.group(0)}">{match.group(0)}</a>', escaped)
    return Markup(linked)  # noqa: S704 (built from escaped text only)


@router.get("")
def mailbox(request: Request) -> Response:
    with context.service(request).database.engine.connect() as connection:
        rows = (
            connection.execute(
                select(
                    dev_mailbox.c.id,
                    dev_mailbox.c.received_at,
                    dev_mailbox.c.recipient,
                    dev_mailbox.c.subject,
                )
                .order_by(dev_mailbox.c.id.desc())
                .limit(100)
            )
            .mappings()
            .all()
        )
    return page(request, "mailbox.html", messages=rows)


#: Message ids are SQL integers: a larger number is refused before the query.
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/{message_id}")
def message(request: Request, message_id: MessageId) -> Response:
    with context.service(request).database.engine.connect() as connection:
        row = (
            connection.execute(select(dev_mailbox).where(dev_mailbox.c.id == message_id))
            .mappings()
            .first()
        )
    if row is None:
        raise SekishoError(ErrorCode.not_found)
    parsed = email.message_from_string(row["raw"], policy=default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return page(
        request,
        "mailbox_message.html",
        subject=row["subject"],
        recipient=row["recipient"],
        text_html=_linkify(text),
    )
