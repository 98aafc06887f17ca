from __future__ import annotations

from sekisho.core import onetime


def test_codes_are_six_digits_and_vary() -> None:
    codes = {onetime.new_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 150


def test_link_tokens_carry_256_bits() -> None:
    token = onetime.new_link_token()
    assert len(token) >= 43
    assert token != onetime.new_link_token()


def test_code_shape() -> None:
    assert onetime.is_code_shaped("012345")
    assert not onetime.is_code_shaped("12345")
    assert not onetime.is_code_shaped("\uff11\uff12\uff13\uff14\uff15\uff16")
    assert not onetime.is_code_shaped("12345a")


def test_approval_numbers_are_two_digits() -> None:
    assert {onetime.new_approval_number() for _ in range(500)} <= set(range(10, 100))


def test_code_material_binds_the_flow() -> None:
    assert onetime.code_material("flow-a", "123456") != onetime.code_material("flow-b", "123456")
