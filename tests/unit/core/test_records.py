"""An operator recovery case's state, and the restriction its code's session gets: the
rules that need no database (the statements that keep them are tested over HTTP in
tests/integration/test_operator_recovery.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sekisho.core.records import OperatorRecovery
from sekisho.core.recovery import RESTRICTION_RECOVERY, VIA_OPERATOR_CODE, restriction_for

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OPEN = OperatorRecovery(
    id="0" * 32,
    user_id="u",
    email="mio@example.com",
    reason="Lost every device; identity checked at the branch",
    opened_by="api-key:a",
    opened_at=NOW - timedelta(minutes=5),
    expires_at=NOW + timedelta(hours=1),
)


def test_states_in_order_of_precedence() -> None:
    approved = replace(OPEN, approved_by="api-key:b", approved_at=NOW)
    assert OPEN.state(NOW) == "open"
    assert approved.state(NOW) == "approved"
    assert approved.state(OPEN.expires_at) == "expired"  # expiry is exclusive
    assert replace(approved, cancelled_at=NOW).state(NOW) == "cancelled"
    assert replace(approved, cancelled_at=NOW).state(NOW + timedelta(days=1)) == "cancelled"
    used = replace(approved, used_at=NOW)
    assert used.state(NOW + timedelta(days=1)) == "used"


def test_the_operator_code_gives_a_recovery_session() -> None:
    assert restriction_for(VIA_OPERATOR_CODE) == RESTRICTION_RECOVERY
    assert restriction_for("email") is None
