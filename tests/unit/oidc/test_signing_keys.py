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


def test_each_algorithm_has_its_own_keys() -> None:
    made = {
        alg: signing_keys.new_key(KEYS, now=NOW, signs_from=NOW, alg=alg)
        for alg in signing_keys.ALGORITHMS
    }
    assert {alg: key.public_jwk["kty"] for alg, key in made.items()} == {
        "ES256": "EC",
        "RS256": "RSA",
        "PS256": "RSA",
    }
    assert made["RS256"].public_jwk["n"] != made["PS256"].public_jwk["n"]
    for alg, key in made.items():
        assert key.public_jwk["alg"] == alg
        assert signing_keys.signing_key(list(made.values()), NOW, alg) == key
        assert signing_keys.PrivateKeys(KEYS).open(key).kid == key.kid
        assert "d" not in key.public_jwk
    assert signing_keys.signing_key([made["RS256"]], NOW) is None
