"""Recovery codes: what they look like and how they are hashed (NIST SP 800-63B-4 §3.1.2,
look-up secrets: at least 64 bits from a CSPRNG; SECURITY.md case 32).

- Ten codes per set, each 16 characters of Crockford base32 (80 bits), shown in four
  groups of four: ``K7QM-3XVD-9RTA-HW2P``. The alphabet leaves out I, L, O and U, and
  reading a code back forgives case, spaces, hyphens, full-width characters (typed with
  a Japanese input method) and the look-alikes (O for 0, I and L for 1), so a code
  copied by hand still works.
- Only a keyed hash is stored, of the code bound to its account (a code of one account
  never matches another's), under its own purpose key.
"""

from __future__ import annotations

import secrets
import unicodedata

from sekisho.core.keys import Keyring

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_COUNT = 10
CODE_LENGTH = 16
GROUP = 4
ENTROPY_BITS = CODE_LENGTH * 5
PURPOSE = "recovery-code"
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", " -\t")


def new_code() -> str:
    """One code, grouped for reading (``K7QM-3XVD-9RTA-HW2P``)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def new_set() -> list[str]:
    return [new_code() for _ in range(CODE_COUNT)]


def ungrouped(code: str) -> str:
    """A code as :func:`new_code` shows it, in the form that is hashed."""
    return code.replace("-", "")


def canonical(typed: str) -> str | None:
    """The code as stored (16 characters, no separators), or None when ``typed`` cannot
    be a code at all."""
    value = unicodedata.normalize("NFKC", typed).upper()
    value = value.translate(_SEPARATORS).translate(_LOOK_ALIKES)
    if len(value) != CODE_LENGTH or not value.isascii() or any(c not in ALPHABET for c in value):
        return None
    return value


def digest(keys: Keyring, user_id: str, code: str) -> str:
    """The keyed hash of a canonical code for one account."""
    return keys.digest(PURPOSE, f"{user_id}:{code}")
