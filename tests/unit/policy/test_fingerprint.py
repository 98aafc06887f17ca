"""The policy fingerprint changes exactly when admission could change."""

from __future__ import annotations

import subprocess
import sys

from sekisho.policy.assurance import Attestation
from sekisho.policy.fingerprint import fingerprint
from sekisho.policy.parsing import parse_policy

BASE = """\
default_tier = "standard"

[tiers.standard]
description = "Everyone."
methods = ["passkey", "email", "password"]

[tiers.high_value]
methods = ["passkey"]
signin_aal = 2
email_recovery = false
aaguids = ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"]

[[rules]]
when = "assets_jpy >= 10_000_000"
tier = "high_value"
"""
NONE = Attestation()


def _of(text: str, attestation: Attestation = NONE) -> str:
    return fingerprint(parse_policy(text, source="test"), attestation)


def test_wording_and_limits_that_admit_the_same_sessions_keep_the_fingerprint() -> None:
    reworded = BASE.replace('"Everyone."', '"Every account."').replace(
        "email_recovery = false", 'email_recovery = false\nidle_timeout = "10m"'
    )
    assert _of(reworded) == _of(BASE)


def test_every_admission_input_changes_the_fingerprint() -> None:
    edits = (
        BASE.replace('methods = ["passkey", "email", "password"]', 'methods = ["passkey"]'),
        BASE.replace("signin_aal = 2", "signin_aal = 1"),
        BASE.replace("email_recovery = false", "email_recovery = true"),
        BASE.replace("10_000_000", "1_000_000"),
        BASE.replace('default_tier = "standard"', 'default_tier = "high_value"'),
    )
    assert len({_of(BASE), *(_of(edit) for edit in edits)}) == len(edits) + 1
    allow_listed = Attestation(frozenset({"00000000-0000-0000-0000-000000000001"}))
    assert _of(BASE, allow_listed) != _of(BASE)


def test_processes_with_different_hash_seeds_agree() -> None:
    """Sets are sorted before hashing: another PYTHONHASHSEED gives the same value."""
    script = (
        "import sys; from sekisho.policy.fingerprint import fingerprint; "
        "from sekisho.policy.assurance import Attestation; "
        "from sekisho.policy.parsing import parse_policy; "
        "print(fingerprint(parse_policy(sys.stdin.read(), source='test'), Attestation()))"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=BASE,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert seen == {_of(BASE)}
