"""The transaction binding and the RFC 9470 decision (SECURITY.md cases 52, 53)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from sekisho.core.encoding import base64url
from sekisho.policy.confirmations import (
    NONCE_BYTES,
    Requirement,
    Transaction,
    canonical,
    details_hash,
    unmet,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_canonical_form_is_rfc_8785() -> None:
    # RFC 8785 §3.2.3: keys sorted by UTF-16 code units; no whitespace.
    # Sorted by UTF-16 code units: U+20AC before U+1F600 (the pair D83D DE00).
    assert canonical({"\U0001f600": "y", "b": 1, "a": "é", "\u20ac": "x"}) == (
        '{"a":"é","b":1,"\u20ac":"x","\U0001f600":"y"}'.encode()
    )
    details = {"destination": "MUFG", "amount": "10", "currency": "JPY"}
    expected = json.dumps(details, sort_keys=True, separators=(",", ":")).encode()
    assert details_hash(details) == base64url(hashlib.sha256(expected).digest())


def test_the_challenge_carries_the_binding_after_a_fresh_nonce() -> None:
    transaction = Transaction(
        jti="j", audience="app", subject="u", action="withdrawal", details_hash="h"
    )
    first, second = transaction.challenge(), transaction.challenge()
    assert first[:NONCE_BYTES] != second[:NONCE_BYTES]
    assert transaction.bound_in(first)
    assert transaction.bound_in(second)
    for changed in (
        Transaction(jti="k", audience="app", subject="u", action="withdrawal", details_hash="h"),
        Transaction(jti="j", audience="other", subject="u", action="withdrawal", details_hash="h"),
        Transaction(jti="j", audience="app", subject="v", action="withdrawal", details_hash="h"),
        Transaction(jti="j", audience="app", subject="u", action="close", details_hash="h"),
        Transaction(jti="j", audience="app", subject="u", action="withdrawal", details_hash="i"),
    ):
        assert not changed.bound_in(first)
    assert not transaction.bound_in(first[1:])


def test_a_session_too_weak_or_too_old_is_unmet() -> None:
    needed = Requirement(aal=2, max_age=timedelta(minutes=5))
    assert not unmet(needed, aal=2, auth_time=NOW - timedelta(minutes=5), now=NOW)
    assert unmet(needed, aal=2, auth_time=NOW - timedelta(minutes=5, seconds=1), now=NOW)
    assert unmet(needed, aal=1, auth_time=NOW, now=NOW)
    assert not unmet(
        Requirement(aal=1, max_age=None), aal=1, auth_time=NOW - timedelta(days=9), now=NOW
    )
    assert Requirement(aal=1, max_age=None).confirming_aal == 2
    assert Requirement(aal=3, max_age=None).confirming_aal == 3
