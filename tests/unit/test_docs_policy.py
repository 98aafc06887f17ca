"""docs/policy.md's example is a valid tiers file, and its reference names every key the
parser accepts (a key added to the parser must be documented)."""

from __future__ import annotations

import re
from pathlib import Path

from sekisho.policy import parsing

POLICY_MD = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _text() -> str:
    return POLICY_MD.read_text(encoding="utf-8")


def test_the_securities_example_is_accepted_by_the_parser() -> None:
    section = _text().split("## A complete example", 1)[1]
    found = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert found is not None
    policy = parsing.parse_policy(found.group(1), source="docs/policy.md")
    assert policy.names() == ("standard", "high_value", "corporate")
    corporate = policy.tier("corporate")
    assert corporate is not None
    assert corporate.signin_aal == 3
    assert {step.action for step in corporate.step_up} == {"withdrawal", "change_bank_account"}


def test_the_reference_names_every_key_the_parser_accepts() -> None:
    text = _text()
    keys = (
        *parsing.TOP_KEYS,
        *parsing.TIER_KEYS,
        *parsing.STEP_UP_KEYS,
        *parsing.ACTION_KEYS,
        *parsing.FIELD_KEYS,
        *parsing.RULE_KEYS,
    )
    first_cells = [
        set(re.findall(r"[a-z_]+", line.split("|")[1]))
        for line in text.splitlines()
        if line.startswith("| `")
    ]
    missing = [key for key in keys if not any(key in cell for cell in first_cells)]
    assert not missing, missing
