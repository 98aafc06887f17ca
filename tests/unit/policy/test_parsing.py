"""The tiers file parser: valid files become typed policies; broken ones name the line
and the reason (issue 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sekisho.core.records import User
from sekisho.policy.explain import explain
from sekisho.policy.parsing import PolicyError, load_policy, parse_duration, parse_policy
from sekisho.policy.tiers import builtin_policy

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "policy.toml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)

MINIMAL = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.high_value]
methods = ["passkey"]
signin_aal = 2
"""


def user(tier: str | None = None, **attributes: object) -> User:
    return User(
        id="u",
        email="a@example.com",
        status="active",
        created_at=NOW,
        tier=tier,
        attributes=dict(attributes),
    )


def test_the_example_file_is_accepted_and_explained() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.names() == ("standard", "high_value", "corporate")
    high = policy.tier("high_value")
    assert high is not None
    assert high.methods == frozenset({"passkey"})
    assert (high.signin_aal, high.email_recovery, high.email_signin) == (2, False, False)
    assert high.idle_timeout == timedelta(minutes=30)
    assert next((s.action, s.aal, s.max_age) for s in high.step_up) == (
        "withdrawal",
        2,
        timedelta(minutes=5),
    )
    corporate = policy.tier("corporate")
    assert corporate is not None
    assert corporate.attestation_required
    assert not corporate.synced_passkeys
    text = "\n".join(explain(policy))
    assert "email never signs in and never recovers the account" in text
    assert "when assets_jpy >= 10_000_000 -> high_value" in text


def test_rules_derive_the_tier_and_a_set_tier_wins() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.tier_for(user()).name == "standard"
    assert policy.tier_for(user(assets_jpy=9_999_999)).name == "standard"
    assert policy.tier_for(user(assets_jpy=10_000_000)).name == "high_value"
    assert policy.tier_for(user(assets_jpy="10000000")).name == "standard"
    assert policy.tier_for(user(kind="corporate", assets_jpy=1)).name == "corporate"
    assert policy.tier_for(user("standard", assets_jpy=10**9)).name == "standard"


def test_a_stored_tier_the_policy_dropped_fails_closed() -> None:
    policy = parse_policy(MINIMAL)
    assert policy.tier_for(user("vanished")).name == "high_value"


def test_builtin_policy_is_todays_behaviour() -> None:
    policy = builtin_policy()
    tier = policy.tier_for(user())
    assert tier.methods == frozenset({"passkey", "email", "password"})
    assert (tier.signin_aal, tier.email_recovery, tier.synced_passkeys) == (1, True, True)
    assert not tier.attestation_required
    assert not tier.step_up


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("0m") is None
    assert parse_duration("1h30m") is None
    assert parse_duration(5) is None


BROKEN = [
    ('default_tier = "standard"\n[tiers.standard\nmethods = []\n', 2, "not valid TOML"),
    ('default_tier = "standard"\n', 0, "declares no tiers"),
    (
        MINIMAL.replace('default_tier = "standard"', 'default_tier = "gold"'),
        1,
        "default_tier must name",
    ),
    (MINIMAL + 'colour = "red"\n', 9, "unknown key 'tiers.high_value.colour'"),
    (
        MINIMAL.replace('["passkey"]\nsignin', '["passkey", "sms"]\nsignin'),
        7,
        "unknown method 'sms'",
    ),
    (
        MINIMAL.replace('methods = ["passkey", "email"]', 'methods = ["email"]\nsignin_aal = 2'),
        5,
        "signin_aal 2 can never be reached by email",
    ),
    (MINIMAL.replace("signin_aal = 2", "signin_aal = 3"), 8, "signin_aal 3 needs device-bound"),
    (MINIMAL.replace("signin_aal = 2", "signin_aal = 4"), 8, "must be 1, 2 or 3"),
    (MINIMAL.replace("signin_aal = 2", "signin_aal = true"), 8, "must be 1, 2 or 3"),
    (MINIMAL + 'idle_timeout = "soon"\n', 9, "must be a duration"),
    (MINIMAL + 'absolute_timeout = "31d"\n', 9, "at most 30d"),
    (MINIMAL + 'aaguids = ["YUBIKEY"]\n', 9, "is not an AAGUID"),
    (MINIMAL + 'email_recovery = "yes"\n', 9, "must be true or false"),
    (MINIMAL + 'attestation = "maybe"\n', 9, 'attestation must be "any" or "required"'),
    (
        MINIMAL + "\n[tiers.high_value.step_up.withdrawal]\naal = 2\n",
        10,
        "needs both aal and max_age",
    ),
    (MINIMAL + '\n[tiers.Gold]\nmethods = ["passkey"]\n', 10, "tier name 'Gold'"),
    (MINIMAL + "\n[tiers.quiet]\nsigns_in = true\n", 11, "unknown key"),
    (MINIMAL + '\n[[rules]]\nwhen = "assets_jpy >= 10"\ntier = "gold"\n', 12, "not declared"),
    (
        MINIMAL
        + '\n[[rules]]\nwhen = "assets_jpy >= 10"\ntier = "standard"\n\n[[rules]]\nwhen = "assets_jpy ~ 10"\ntier = "standard"\n',
        15,
        "cannot read",
    ),
    (
        MINIMAL + '\n[[rules]]\nwhen = "kind >= \\"gold\\""\ntier = "standard"\n',
        11,
        "compares numbers only",
    ),
    (MINIMAL + '\n[[rules]]\nwhen = "kind == gold"\ntier = "standard"\n', 11, "use a number"),
    ('tiers = "none"\ndefault_tier = "x"\n', 1, "tiers must hold"),
    (
        MINIMAL + '\n[tiers.legacy]\nmethods = ["password"]\nemail_recovery = true\n',
        12,
        "allows neither passkeys nor email",
    ),
]


@pytest.mark.parametrize(("text", "line", "reason"), BROKEN)
def test_broken_files_name_the_line_and_the_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="tiers.toml")
    assert reason in caught.value.reason
    assert caught.value.line == line, caught.value
    assert str(caught.value).startswith(f"tiers.toml:{line}: " if line else "tiers.toml: ")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(binary)
