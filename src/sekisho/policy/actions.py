"""Actions an application asks a person to confirm, and the shape of their details
(issue 10, SECURITY.md case 52). Declared in the tiers file under ``[actions.NAME]``;
what a tier demands of the person before one (AAL, ``max_age``) stays in the tier's
``[tiers.NAME.step_up.ACTION]`` (:class:`sekisho.policy.tiers.StepUp`).

Invariant: a confirmation's details are exactly the declared fields, each of its type,
nothing more, so what the person is shown and what the assertion binds
(:mod:`sekisho.policy.confirmations`) cannot hold a field the page does not show.
Amounts travel as decimal strings, never JSON numbers: RFC 8785 canonicalises numbers
as IEEE 754 doubles, which would round large or fine-grained amounts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from babel.numbers import get_currency_name

FIELD_TYPES = ("string", "integer", "amount", "currency")
#: What the policy file may name a tier, an action or a field.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
LANGUAGES = ("en", "ja")
MAX_STRING = 200
MAX_INTEGER = 2**53 - 1  # exact in every JSON implementation (RFC 8785 §3.2.2.3)
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,4})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class DetailsError(ValueError):
    """Details that do not fit the action: ``field`` names the culprit ("" for the whole)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def known_currency(code: str) -> bool:
    """An ISO 4217 code that CLDR (through Babel) knows."""
    if not _CURRENCY.match(code):
        return False
    return bool(get_currency_name(code, locale="en") != code)


@dataclass(frozen=True, slots=True)
class DetailField:
    """One field of an action's details. An ``amount`` names the ``currency`` field
    that gives its currency, so the page can format it for the reader's language."""

    name: str
    type: str
    label: Mapping[str, str]
    currency: str | None = None

    def check(self, value: object) -> str | int:
        if self.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise DetailsError(self.name, "must be an integer")
            if abs(value) > MAX_INTEGER:
                raise DetailsError(self.name, "is out of range")
            return value
        if not isinstance(value, str):
            raise DetailsError(self.name, "must be a string")
        if self.type == "amount" and not _AMOUNT.match(value):
            raise DetailsError(
                self.name,
                'must be a decimal string like "150000" or "1234.50" (at most 4 decimals)',
            )
        if self.type == "currency" and not known_currency(value):
            raise DetailsError(self.name, "must be an ISO 4217 currency code like JPY")
        if self.type == "string" and (
            not value.strip() or len(value) > MAX_STRING or not value.isprintable()
        ):
            raise DetailsError(self.name, f"must be printable text of 1 to {MAX_STRING} characters")
        return value


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    title: Mapping[str, str]
    fields: tuple[DetailField, ...]

    def check(self, details: object) -> dict[str, str | int]:
        """The details if they are exactly this action's fields, each valid."""
        if not isinstance(details, dict):
            raise DetailsError("", "details must be an object")
        names = {field.name for field in self.fields}
        extra = sorted(set(details) - names)
        if extra and not NAME.match(extra[0]):
            # Not echoed: no field could have that name, and it may not even encode
            # (a lone surrogate from a JSON escape).
            raise DetailsError("", f"details hold a field that {self.name} does not declare")
        if extra:
            raise DetailsError(extra[0], f"is not a field of {self.name}")
        checked: dict[str, str | int] = {}
        for field in self.fields:
            if field.name not in details:
                raise DetailsError(field.name, "is missing")
            checked[field.name] = field.check(details[field.name])
        return checked
