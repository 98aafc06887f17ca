"""Every legacy format, with hashes made by the real library or published test vectors."""

from __future__ import annotations

import bcrypt
import pytest
from argon2 import PasswordHasher, Type
from passlib.hash import django_pbkdf2_sha256, pbkdf2_sha256, scrypt, sha256_crypt, sha512_crypt

from sekisho.methods.password.hashes import (
    hash_password,
    needs_rehash,
    prepare_for_storage,
    scheme_of,
    verify_password,
)

# ASP.NET Core Identity's own test vectors (PasswordHasherTest, password "my password").
ASPNET_VECTORS = [
    ("AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg==", "aspnet-identity-v2"),
    ("AQAAAAAAAAD6AAAAEAhftMyfTJylOlZT+eEotFXd1elee8ih5WsjXaR3PA9M", "aspnet-identity-v3"),
    (
        "AQAAAAEAA9CQAAAAIESkQuj2Du8Y+kbc5lcN/W/3NiAZFEm11P27nrSN5/tId+bR1SwV8CO1Jd72r4C08OLvplNlCDc3oQZ8efcW+jQ=",
        "aspnet-identity-v3",
    ),
    ("AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw", "aspnet-identity-v3"),
    (
        "AQAAAAIAACcQAAAAEAABAgMEBQYHCAkKCwwNDg9B0Oxwty+PGIDSp95gcCfzeDvA4sGapUIUov8usXfD6A==",
        "aspnet-identity-v3",
    ),
]


@pytest.mark.parametrize(("stored", "scheme"), ASPNET_VECTORS)
def test_aspnet_identity_published_vectors(stored: str, scheme: str) -> None:
    assert scheme_of(stored) == scheme
    assert verify_password(stored, "my password")
    assert not verify_password(stored, "my Password")
    assert needs_rehash(stored)


def _legacy_hashes(password: str) -> list[tuple[str, str]]:
    raw = password.encode()
    return [
        (bcrypt.hashpw(raw, bcrypt.gensalt(rounds=4, prefix=b"2b")).decode(), "bcrypt"),
        (bcrypt.hashpw(raw, bcrypt.gensalt(rounds=4, prefix=b"2a")).decode(), "bcrypt"),
        ("$2y$" + bcrypt.hashpw(raw, bcrypt.gensalt(rounds=4)).decode()[4:], "bcrypt"),
        (PasswordHasher(type=Type.I, time_cost=1, memory_cost=1024).hash(password), "argon2i"),
        (PasswordHasher(type=Type.ID, time_cost=1, memory_cost=1024).hash(password), "argon2id"),
        (django_pbkdf2_sha256.using(rounds=1000).hash(password), "django-pbkdf2-sha256"),
        (pbkdf2_sha256.using(rounds=1000).hash(password), "passlib-pbkdf2-sha256"),
        (scrypt.using(rounds=4).hash(password), "scrypt"),
        (sha256_crypt.using(rounds=1000).hash(password), "sha256-crypt"),
        (sha512_crypt.using(rounds=1000).hash(password), "sha512-crypt"),
    ]


@pytest.mark.parametrize("password", ["correct horse", "パスワード", "p" * 64])
def test_every_legacy_format_verifies_with_the_real_library(password: str) -> None:
    for stored, scheme in _legacy_hashes(password):
        assert scheme_of(stored) == scheme, stored
        assert verify_password(stored, password), scheme
        assert not verify_password(stored, password + "x"), scheme
        assert needs_rehash(stored), scheme


def test_new_hashes_are_strong_argon2id_without_truncation() -> None:
    long_password = "a" * 100 + "b"
    stored = hash_password(long_password)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, long_password)
    assert not verify_password(stored, "a" * 100 + "c")
    assert not needs_rehash(stored)


def test_legacy_bcrypt_checks_only_what_bcrypt_ever_saw() -> None:
    stored = bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(rounds=4)).decode()
    assert verify_password(stored, "x" * 80)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "md5$abc$def",
        "{SSHA}abc",
        "$1$salt$hash",
        "AQAAAA==",
        "\u00e9" * 10,
        "x" * 2000,
    ],
)
def test_unknown_formats_are_refused(stored: str) -> None:
    assert scheme_of(stored) is None
    assert not verify_password(stored, "anything")


@pytest.mark.parametrize("password", ["correct horse", "パスワード"])
def test_wrapped_hashes_verify_what_the_original_did(password: str) -> None:
    for original, scheme in _legacy_hashes(password):
        wrapped, stored_scheme = prepare_for_storage(original)
        assert stored_scheme == scheme
        assert wrapped.startswith(f"$sekisho-wrap${scheme}$")
        assert not original.startswith("$sekisho-wrap$")
        assert scheme_of(wrapped) == scheme
        assert verify_password(wrapped, password), scheme
        assert not verify_password(wrapped, password + "x"), scheme
        assert needs_rehash(wrapped)
        assert prepare_for_storage(wrapped) == (wrapped, scheme)


@pytest.mark.parametrize(("stored", "scheme"), ASPNET_VECTORS)
def test_wrapped_aspnet_vectors_keep_no_trace_of_the_subkey(stored: str, scheme: str) -> None:
    wrapped, _scheme = prepare_for_storage(stored)
    assert stored[-24:] not in wrapped
    assert verify_password(wrapped, "my password")
    assert not verify_password(wrapped, "my Password")


def test_sekisho_argon2id_is_stored_as_it_is() -> None:
    stored = hash_password("secret")
    assert prepare_for_storage(stored) == (stored, "argon2id")
