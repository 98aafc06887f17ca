"""API keys (core/api_keys.py): shape, keyed hash bound to the id, scopes, revocation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sekisho.core import api_keys
from sekisho.core.api_keys import ApiKeyRefused
from sekisho.core.keys import Keyring

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
KEYS = Keyring("k" * 43)


def test_a_key_names_its_id_and_only_its_hash_is_kept() -> None:
    made = api_keys.make(KEYS, name="deploy", scopes=["users:write", "clients:read"], now=NOW)
    assert made.key.startswith(f"sk_{made.record.id}_")
    secret = made.key.removeprefix(f"sk_{made.record.id}_")
    assert api_keys.parse(made.key) == (made.record.id, secret)
    assert secret not in made.record.digest
    assert made.key not in repr(made.record)
    assert made.record.scopes == ("clients:read", "users:write")
    assert api_keys.verify(KEYS, made.record, made.key)


def test_other_deployment_forged_revoked_or_swapped_keys_do_not_verify() -> None:
    made = api_keys.make(KEYS, name="deploy", scopes=["users:read"], now=NOW)
    other = api_keys.make(KEYS, name="other", scopes=["users:read"], now=NOW)
    assert not api_keys.verify(Keyring("x" * 43), made.record, made.key)
    assert not api_keys.verify(KEYS, made.record, f"sk_{made.record.id}_{'A' * 43}")
    assert not api_keys.verify(KEYS, replace(made.record, revoked_at=NOW), made.key)
    assert not api_keys.verify(KEYS, made.record, other.key)
    assert not api_keys.verify(KEYS, None, made.key)
    for malformed in ("", "sk_", made.key + "x", made.key.upper(), " " + made.key):
        assert not api_keys.verify(KEYS, made.record, malformed), malformed


def test_scopes_are_held_only_while_live() -> None:
    record = api_keys.make(KEYS, name="r", scopes=["clients:read"], now=NOW).record
    assert record.allows("clients:read")
    assert not record.allows("clients:write")
    assert not replace(record, revoked_at=NOW).allows("clients:read")


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("deploy", []), ("deploy", ["admin"]), ("", ["users:read"]), ("x" * 101, ["users:read"])],
)
def test_unusable_names_and_scopes_are_refused(name: str, scopes: list[str]) -> None:
    with pytest.raises(ApiKeyRefused):
        api_keys.make(KEYS, name=name, scopes=scopes, now=NOW)


@pytest.mark.parametrize("scope", api_keys.OPERATOR_SCOPES)
def test_a_key_that_acts_on_recoveries_belongs_to_a_known_operator(scope: str) -> None:
    known = frozenset({"ops@example.com"})
    with pytest.raises(ApiKeyRefused, match="--operator"):
        api_keys.make(KEYS, name="desk", scopes=[scope], now=NOW, operators=known)
    with pytest.raises(ApiKeyRefused, match="admin_emails"):
        api_keys.make(
            KEYS, name="desk", scopes=[scope], now=NOW, operator="eve@example.com", operators=known
        )
    made = api_keys.make(
        KEYS, name="desk", scopes=[scope], now=NOW, operator=" Ops@Example.com", operators=known
    )
    assert made.record.operator == "ops@example.com"
    assert api_keys.make(KEYS, name="ro", scopes=["recovery:read"], now=NOW).record.operator is None
