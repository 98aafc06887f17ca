"""The one parser behind import and sign-in: what each framework accepts, and what can
never verify (issue 7.2)."""

from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest

from sekisho.methods.password.hashes import ARGON2
from sekisho.methods.password.legacy import Unusable, parse


def _django(salt: str) -> str:
    key = hashlib.pbkdf2_hmac("sha256", b"pw", salt.encode(), 1000)
    return f"pbkdf2_sha256$1000${salt}${base64.b64encode(key).decode()}"


@pytest.mark.parametrize(
    "salt", ["ab-cd_ef12", "a", "sel.de/mer+=", "with space", "塩", "x" * 200, "tab\there"]
)
def test_django_accepts_every_salt_without_a_dollar(salt: str) -> None:
    parsed = parse(_django(salt))
    assert parsed.scheme == "django-pbkdf2-sha256"
    assert parsed.derivation.salt == salt.encode()
    assert parsed.verify("pw", ARGON2)
    assert not parsed.verify("pW", ARGON2)


BCRYPT = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()


@pytest.mark.parametrize(
    "stored",
    [
        _django("salt")[:-4],
        _django("salt").replace("$1000$", "$many$"),
        _django("salt").replace("$1000$", "$0$"),
        _django("salt").replace("$salt$", "$$"),
        _django("salt") + "$",
        "pbkdf2_sha256$1000$salt",
        BCRYPT[:-31] + "!" * 31,
        BCRYPT[:28] + "/" + BCRYPT[29:],
        BCRYPT.replace("$04$", "$99$"),
        "$pbkdf2-sha256$1000$c2FsdA",
        "$scrypt$ln=40,r=8,p=1$c2FsdA$" + "A" * 43,
        "$6$rounds=10$salt$" + "A" * 86,
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$" + "A" * 43,
        "$sekisho-wrap$md5$i=1$c2FsdA$$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAA",
        "$sekisho-wrap$bcrypt$c=4$c2FsdA$notargon",
        "AQAAAAIAACcQAAAACAABAgMEBQYHQdDscLcvjxiA0qfeYHAn83g7wOLBmqVCFKL/LrF3w+g=",
    ],
)
def test_hashes_that_can_never_verify_are_unusable(stored: str) -> None:
    with pytest.raises(Unusable):
        parse(stored)
