"""Tiers: what each kind of account must use to sign in (issue 10, SECURITY.md cases
50-55). Typed, frozen and validated once, by :mod:`sekisho.policy.parsing`.

A tier names the sign-in methods it allows, the AAL a sign-in must reach, whether email
may recover the account (and so lead to a restricted enrolment session), which passkeys
count (synced or not, attested or not, which AAGUIDs), optional session limits tighter
than the AAL defaults, and the actions that need a step-up with their AAL and
``max_age`` (OpenID Connect Core §3.1.2.1; enforced by the step-up work, declared here).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sekisho.core.records import User
from sekisho.policy.actions import Action

METHODS = ("passkey", "email", "password")
DEFAULT_TIER = "standard"

_OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
OPERATORS = tuple(_OPERATORS)


@dataclass(frozen=True, slots=True)
class StepUp:
    """An action that needs a fresh proof at ``aal`` no older than ``max_age``."""

    action: str
    aal: int
    max_age: timedelta


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    description: str
    methods: frozenset[str]
    signin_aal: int
    email_recovery: bool
    synced_passkeys: bool
    attestation_required: bool
    aaguids: frozenset[str]
    idle_timeout: timedelta | None
    absolute_timeout: timedelta | None
    step_up: tuple[StepUp, ...]

    @property
    def email_signin(self) -> bool:
        return "email" in self.methods

    def step_up_for(self, action: str) -> StepUp | None:
        return next((step for step in self.step_up if step.action == action), None)


@dataclass(frozen=True, slots=True)
class Rule:
    """``attribute operator value -> tier``: the first rule that matches an account's
    attributes decides its tier, unless an operator set one."""

    attribute: str
    operator: str
    value: int | float | str | bool
    tier: str

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        if self.attribute not in attributes:
            return False
        held = attributes[self.attribute]
        numeric = (int, float)
        if isinstance(self.value, bool) or isinstance(held, bool):
            comparable = isinstance(self.value, bool) and isinstance(held, bool)
        elif isinstance(self.value, numeric):
            comparable = isinstance(held, numeric)
        else:
            comparable = isinstance(held, str)
        if not comparable:
            return False
        if self.operator not in ("==", "!=") and not isinstance(self.value, numeric):
            return False
        return bool(_OPERATORS[self.operator](held, self.value))

    def __str__(self) -> str:
        shown = f'"{self.value}"' if isinstance(self.value, str) else str(self.value).lower()
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            shown = f"{self.value:_}"
        return f"{self.attribute} {self.operator} {shown}"


@dataclass(frozen=True, slots=True)
class Policy:
    tiers: tuple[Tier, ...]
    default_tier: str
    rules: tuple[Rule, ...] = ()
    source: str = "built-in"
    actions: tuple[Action, ...] = ()
    _by_name: dict[str, Tier] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {tier.name: tier for tier in self.tiers})

    def action(self, name: str) -> Action | None:
        """A declared ``[actions.NAME]`` (what an application may ask to confirm)."""
        return next((action for action in self.actions if action.name == name), None)

    def names(self) -> tuple[str, ...]:
        return tuple(tier.name for tier in self.tiers)

    def tier(self, name: str) -> Tier | None:
        return self._by_name.get(name)

    def derived(self, attributes: Mapping[str, Any]) -> Tier:
        """The tier the rules give these attributes (the default tier when none match)."""
        for rule in self.rules:
            if rule.matches(attributes):
                return self._by_name[rule.tier]
        return self._by_name[self.default_tier]

    def tier_for(self, user: User) -> Tier:
        """The operator's choice when there is one, else the rules', else the default.

        A stored tier the policy no longer declares falls back to the policy's strictest
        sign-in level among its tiers (fail closed), never to the default."""
        if user.tier is None:
            return self.derived(user.attributes)
        chosen = self._by_name.get(user.tier)
        if chosen is not None:
            return chosen
        return max(self.tiers, key=lambda tier: (tier.signin_aal, -len(tier.methods)))


def builtin_policy() -> Policy:
    """Today's behaviour, used when no ``policy_file`` is set: one tier where every
    method signs in, email also recovers, and any passkey counts."""
    return Policy(
        tiers=(
            Tier(
                name=DEFAULT_TIER,
                description="Every account (no policy file is configured).",
                methods=frozenset(METHODS),
                signin_aal=1,
                email_recovery=True,
                synced_passkeys=True,
                attestation_required=False,
                aaguids=frozenset(),
                idle_timeout=None,
                absolute_timeout=None,
                step_up=(),
            ),
        ),
        default_tier=DEFAULT_TIER,
    )
