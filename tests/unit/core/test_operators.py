"""Operators (core/operators.py): a person is an address in admin_emails, whatever the
channel, and the recorded form compares people, not channels."""

from __future__ import annotations

from sekisho.core.operators import Actor, operator_address, operators


def test_admin_emails_are_normalised_and_unusable_ones_dropped() -> None:
    assert operators(["Ops@Example.com", "not an address", "b@example.com"]) == {
        "ops@example.com",
        "b@example.com",
    }


def test_only_a_known_address_is_an_operator() -> None:
    known = operators(["ops@example.com"])
    assert operator_address(" OPS@example.com", known) == "ops@example.com"
    assert operator_address("eve@example.com", known) is None
    assert operator_address("ops", known) is None


def test_one_person_on_two_channels_is_recorded_alike() -> None:
    pages = Actor(operator="ops@example.com", channel="pages")
    key = Actor(operator="ops@example.com", channel="api-key:0123456789abcdef")
    assert pages.recorded == key.recorded == "operator:ops@example.com"
    assert pages != key
