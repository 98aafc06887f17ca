"""How a sign-in is said on the account page: a method word and what its level means."""

from __future__ import annotations

import pytest

from sekisho.web.wording import method_label, signed_in_with


@pytest.mark.parametrize(
    ("amr", "en", "ja"),
    [
        (("hwk", "pin", "mfa"), "Passkey", "パスキー"),
        (("swk", "user"), "Passkey", "パスキー"),
        (("email",), "Email", "メール"),
        (("pwd",), "Password", "パスワード"),
        (("otp",), "Recovery code", "復旧コード"),
        (("kba",), "Other", "その他"),
    ],
)
def test_methods_are_words(amr: tuple[str, ...], en: str, ja: str) -> None:
    assert method_label("en", amr) == en
    assert method_label("ja", amr) == ja


def test_levels_say_what_they_protect() -> None:
    assert (
        signed_in_with("en", ("hwk", "pin", "mfa"), 2)
        == "Passkey (strong protection: two factors, cannot be phished)"
    )
    assert signed_in_with("en", ("email",), 1) == "Email (standard protection: one step)"
    assert signed_in_with("ja", ("email",), 1) == "メール（標準の保護：1段階の確認）"  # noqa: RUF001
    assert "AAL" not in signed_in_with("en", ("swk", "user"), 1)


def test_aal3_says_it_is_a_device_bound_security_key() -> None:
    assert signed_in_with("en", ("hwk", "pin", "mfa"), 3) == (
        "Passkey (strongest protection: a security key that never leaves its device)"
    )
    assert "最も強力な保護" in signed_in_with("ja", ("hwk", "pin", "mfa"), 3)
