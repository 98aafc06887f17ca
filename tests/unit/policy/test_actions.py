"""Actions in the tiers file: their typed details, what a broken declaration says, and
the check that lets exactly the declared fields through (issue 10, case 52)."""

from __future__ import annotations

from typing import Any

import pytest

from sekisho.policy.actions import DetailsError
from sekisho.policy.explain import explain
from sekisho.policy.parsing import PolicyError, parse_policy

BASE = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey"]

[tiers.standard.step_up.withdrawal]
aal = 2
max_age = "5m"

[actions.withdrawal]
title = { en = "Withdrawal", ja = "出金" }

[actions.withdrawal.details]
amount = { type = "amount", currency = "currency", label = { en = "Amount", ja = "金額" } }
currency = { type = "currency", label = { en = "Currency", ja = "通貨" } }
destination = { type = "string", label = { en = "To", ja = "出金先" } }
count = { type = "integer", label = { en = "Count", ja = "回数" } }
"""
GOOD = {"amount": "1234.50", "currency": "JPY", "destination": "MUFG 1", "count": 2}


def test_actions_are_parsed_and_explained() -> None:
    policy = parse_policy(BASE)
    action = policy.action("withdrawal")
    assert action is not None
    assert [(f.name, f.type) for f in action.fields] == [
        ("amount", "amount"),
        ("currency", "currency"),
        ("destination", "string"),
        ("count", "integer"),
    ]
    assert action.title["ja"] == "出金"
    tier = policy.tier("standard")
    assert tier is not None
    step = tier.step_up_for("withdrawal")
    assert step is not None
    assert step.aal == 2
    text = "\n".join(explain(policy))
    assert "withdrawal (Withdrawal / 出金), details:" in text
    assert "amount: a decimal amount in the currency of currency" in text
    assert "standard: a session at AAL2 signed in within 5 minutes" in text


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({**GOOD, "memo": "x"}, "memo"),
        ({k: v for k, v in GOOD.items() if k != "destination"}, "destination"),
        ({**GOOD, "amount": 1234}, "amount"),
        ({**GOOD, "amount": "1e3"}, "amount"),
        ({**GOOD, "amount": "-5"}, "amount"),
        ({**GOOD, "amount": "1.23456"}, "amount"),
        ({**GOOD, "currency": "jpy"}, "currency"),
        ({**GOOD, "currency": "ABC"}, "currency"),
        ({**GOOD, "destination": ""}, "destination"),
        ({**GOOD, "destination": "a\nb"}, "destination"),
        ({**GOOD, "count": True}, "count"),
        ({**GOOD, "count": 2**60}, "count"),
        ({**GOOD, "count": "2"}, "count"),
    ],
)
def test_details_must_be_exactly_the_declared_fields(details: dict[str, Any], field: str) -> None:
    action = parse_policy(BASE).action("withdrawal")
    assert action is not None
    assert action.check(GOOD) == GOOD
    with pytest.raises(DetailsError) as caught:
        action.check(details)
    assert caught.value.field == field


BROKEN = [
    (
        BASE.replace("step_up.withdrawal]", "step_up.withdraw]"),
        6,
        "names an action that is not declared",
    ),
    (
        BASE.replace('{ en = "Withdrawal", ja = "出金" }', '{ en = "Withdrawal" }'),
        11,
        "needs exactly en and ja",
    ),
    (BASE.replace('type = "integer"', 'type = "float"'), 17, "type must be one of"),
    (
        BASE.replace('currency = "currency", label', 'currency = "destination", label'),
        14,
        "needs currency = the name",
    ),
    (
        BASE.replace('{ type = "string", label', '{ type = "string", currency = "currency", label'),
        16,
        "only on them",
    ),
    (BASE + '\n[actions.empty]\ntitle = { en = "E", ja = "空" }\n', 19, "needs details"),
    (BASE + "\n[actions.Bad]\n", 19, "action name 'Bad'"),
    (BASE + 'colour = "red"\n', 18, "must be a table"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BROKEN)
def test_broken_actions_name_the_line_and_the_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="tiers.toml")
    assert reason in caught.value.reason
    assert caught.value.line == line, caught.value
