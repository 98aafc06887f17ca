"""The sign-in and step-up answers rendered by pydantic-core say what
``model_dump(mode="json")`` encoded by Starlette's ``JSONResponse`` said: the same
keys, values and datetimes, non-ASCII text as it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.responses import JSONResponse

from sekisho.web.answers import json_answer
from sekisho.web.api import FlowCreated, FlowStatus, LinkInfo, SessionInfo
from sekisho.web.confirmations_api import Collected, Created, Redeemed, Verified
from sekisho.web.passkeys_api import PasskeyItem

NOW = datetime(2026, 11, 27, 23, 56, 24, 123456, tzinfo=UTC)
WHOLE = NOW.replace(microsecond=0)
TOKYO = NOW.astimezone(timezone(timedelta(hours=9)))
ODD = 'ja: 日本語 “quotes” \u2028 </script> \\ " \x01 \U0001f511'

MODELS: list[BaseModel] = [
    SessionInfo(
        session_id="s" * 22,
        user_id="u_1",
        amr=["hwk", "user"],
        aal=2,
        auth_time=NOW,
        expires_at=WHOLE,
    ),
    SessionInfo(
        session_id="s",
        user_id="u",
        amr=[],
        aal=1,
        auth_time=TOKYO,
        expires_at=NOW,
        restriction="recovery",
    ),
    FlowCreated(flow_id="f" * 22, approval_number=42, expires_at=NOW),
    FlowStatus(flow_id="f", state="pending", email_delivery="delayed"),
    LinkInfo(same_browser=False, requested_at=WHOLE, requested_ip="::1", requested_device=ODD),
    PasskeyItem(
        id="p",
        name=ODD,
        model=None,
        synced=True,
        backed_up=False,
        user_verified=True,
        created_at=NOW,
        last_used_at=None,
    ),
    PasskeyItem(
        id="p",
        name="鍵",
        model="iCloud Keychain",
        synced=True,
        backed_up=True,
        user_verified=True,
        created_at=TOKYO,
        last_used_at=WHOLE,
    ),
    Created(
        id="c",
        url="https://id.example/confirm/c",
        action="withdraw",
        details_hash="h",
        expires_at=NOW,
    ),
    Collected(
        id="c",
        status="confirmed",
        action="withdraw",
        details={"amount": 120000, "account": ODD, "n": -1},
        details_hash="h",
        expires_at=NOW,
        confirmation="a.b.c",
    ),
    Redeemed(
        id="c",
        sub="u",
        action="withdraw",
        details_hash="h",
        acr=None,
        amr=["hwk", "user"],
        confirmed_at=NOW,
    ),
    Verified(redirect_to=None),
    Verified(redirect_to="https://app.example/done?x=1&confirmation=c"),
]

OPTIONS: list[dict[str, Any]] = [
    {
        "flow_id": "f" * 22,
        "publicKey": {
            "challenge": "c" * 43,
            "timeout": 300000,
            "rpId": "localhost",
            "allowCredentials": [{"id": "i" * 43, "type": "public-key"}],
            "userVerification": "required",
        },
    },
    {
        "flow_id": "f",
        "publicKey": {
            "rp": {"name": "Sekisho 関所", "id": "localhost"},
            "user": {"id": "dQ", "name": "nao@example.com", "displayName": ODD},
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "excludeCredentials": [],
            "authenticatorSelection": {"residentKey": "required", "requireResidentKey": True},
            "hints": [],
        },
    },
]


@pytest.mark.parametrize("status", [200, 201, 202])
@pytest.mark.parametrize("content", [*MODELS, *OPTIONS], ids=lambda c: type(c).__name__)
def test_an_answer_says_what_it_said_before(
    content: BaseModel | dict[str, Any], status: int
) -> None:
    before = JSONResponse(
        content.model_dump(mode="json") if isinstance(content, BaseModel) else content,
        status_code=status,
    )
    after = json_answer(content, status_code=status)
    assert json.loads(bytes(after.body)) == json.loads(bytes(before.body))
    assert after.body == before.body  # byte for byte, as it happens
    assert after.status_code == status
    assert after.headers["content-type"] == before.headers["content-type"] == "application/json"
    assert after.headers["content-length"] == before.headers["content-length"]


def test_datetimes_are_iso_8601_and_text_is_not_escaped() -> None:
    body = json_answer(MODELS[0]).body
    assert b'"auth_time":"2026-11-27T23:56:24.123456Z"' in body
    assert b'"expires_at":"2026-11-27T23:56:24Z"' in body
    assert b'"auth_time":"2026-11-28T08:56:24.123456+09:00"' in json_answer(MODELS[1]).body
    assert "日本語".encode() in json_answer(MODELS[4]).body
