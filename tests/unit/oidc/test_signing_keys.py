"""Key states through a rotation: published before signing, kept after retiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sekisho.core.keys import Keyring
from sekisho.oidc import signing_keys

KEYS = Keyring("k" * 40)
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_a_new_key_is_published_before_it_signs_and_the_old_one_after() -> None:
    old = signing_keys.new_key(KEYS, now=NOW, signs_from=NOW)
    new = signing_keys.new_key(KEYS, now=NOW, signs_from=NOW + timedelta(hours=1))
    retired = old.__class__(
        **{
            **{name: getattr(old, name) for name in old.__slots__},
            "retired_at": NOW + timedelta(hours=1),
            "published_until": NOW + timedelta(hours=2),
        }
    )
    both = [retired, new]
    assert signing_keys.signing_key(both, NOW) == retired
    assert len(signing_keys.published(both, NOW)["keys"]) == 2
    later = NOW + timedelta(hours=1, seconds=1)
    assert signing_keys.signing_key(both, later) == new
    assert len(signing_keys.published(both, later)["keys"]) == 2
    assert signing_keys.published(both, NOW + timedelta(hours=3))["keys"] == [new.public_jwk]


def test_private_keys_rest_sealed() -> None:
    key = signing_keys.new_key(KEYS, now=NOW, signs_from=NOW)
    assert '"d"' not in key.sealed_private_jwk
    assert "d" not in key.public_jwk
    opened = signing_keys.PrivateKeys(KEYS).open(key)
    assert opened.kid == key.kid
