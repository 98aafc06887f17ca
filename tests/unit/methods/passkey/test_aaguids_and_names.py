from __future__ import annotations

import json
import uuid

from sekisho.methods.passkey.aaguids import DATA, ZERO_AAGUID, model_name
from sekisho.methods.passkey.registration import clean_name


def test_shipped_table_is_well_formed() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    for key, value in data.items():
        if key.startswith("_"):
            continue
        assert str(uuid.UUID(key)) == key
        assert value.strip()


def test_known_unknown_and_anonymous_models() -> None:
    assert model_name("fbfc3007-154e-4ecc-8c0b-6e020557d7bd") == "iCloud Keychain"
    assert model_name("FBFC3007-154E-4ECC-8C0B-6E020557D7BD") == "iCloud Keychain"
    assert model_name(ZERO_AAGUID) is None
    assert model_name(str(uuid.uuid4())) is None


def test_names_are_cleaned() -> None:
    assert clean_name("  My\tYubiKey \n") == "My YubiKey"
    assert clean_name("a" * 300) == "a" * 100
    assert clean_name("\u202eevil") == "evil"
    assert clean_name(None) == ""
