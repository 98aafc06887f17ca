"""The recovery rules that need no database: restrictions, new codes, operators."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sekisho.core.keys import Keyring
from sekisho.core.records import Passkey, Recovery, Session
from sekisho.core.recovery import (
    RESTRICTION_RECOVERY,
    VIA_RECOVERY_CODE,
    RecoveryRules,
    restriction_for,
)
from sekisho.policy.assurance import Attestation, verified_passkey

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HARDWARE_MODEL = "11111111-1111-1111-1111-111111111111"
RULES = RecoveryRules(
    keys=Keyring("a-test-secret-that-is-long-enough-0123456789"),
    hold=timedelta(hours=24),
    enrolment_window=timedelta(minutes=15),
    regeneration_window=timedelta(minutes=5),
    attestation=Attestation(frozenset({HARDWARE_MODEL})),
)


def session(
    amr: tuple[str, ...], aal: int, *, age: timedelta = timedelta(0), restriction: str | None = None
) -> Session:
    return Session(
        id="s",
        user_id="u",
        created_at=NOW - age,
        last_seen_at=NOW,
        auth_time=NOW - age,
        expires_at=NOW + timedelta(hours=1),
        ip="203.0.113.7",
        user_agent="test",
        amr=amr,
        aal=aal,
        restriction=restriction,
    )


def passkey(*, user_verified: bool = True) -> Passkey:
    return Passkey(
        id="p",
        user_id="u",
        credential_id=b"c",
        public_key=b"k",
        sign_count=0,
        transports=(),
        aaguid="00000000-0000-0000-0000-000000000000",
        backup_eligible=False,
        backup_state=False,
        user_verified=user_verified,
        attestation_format="none",
        name="Passkey",
        created_at=NOW,
    )


PASSKEY_SESSION = ("hwk", "pin", "mfa")


def test_only_a_recovery_code_gives_a_restricted_session() -> None:
    assert restriction_for(VIA_RECOVERY_CODE) == RESTRICTION_RECOVERY
    for via in ("link", "code", "approval", "passkey", "password"):
        assert restriction_for(via) is None


def test_new_codes_need_a_fresh_passkey_when_the_account_has_one() -> None:
    keys = [passkey()]
    assert RULES.may_regenerate(session(PASSKEY_SESSION, 2), keys, None, NOW)
    assert not RULES.may_regenerate(session(("email",), 1), keys, None, NOW)
    stale = session(PASSKEY_SESSION, 2, age=timedelta(minutes=6))
    assert not RULES.may_regenerate(stale, keys, None, NOW)


def test_an_account_with_an_attested_hardware_key_needs_that_key() -> None:
    hardware = replace(passkey(), aaguid=HARDWARE_MODEL, attestation_trusted=True)
    synced = replace(passkey(), backup_eligible=True, backup_state=True)
    keys = [synced, hardware]
    assert not RULES.may_regenerate(session(("swk", "pin", "mfa"), 2), keys, None, NOW)
    assert RULES.may_regenerate(session(PASSKEY_SESSION, 3), keys, None, NOW)
    assert RULES.may_regenerate(session(("swk", "pin", "mfa"), 2), [synced], None, NOW)


def test_without_a_passkey_any_fresh_sign_in_but_the_password_will_do() -> None:
    assert RULES.may_regenerate(session(("email",), 1), [], None, NOW)
    assert not RULES.may_regenerate(session(("pwd",), 1), [], None, NOW)
    assert not RULES.may_regenerate(session(("email",), 1, age=timedelta(minutes=6)), [], None, NOW)
    presence_only = [passkey(user_verified=False)]
    assert RULES.may_regenerate(session(("email",), 1), presence_only, None, NOW)


def test_a_recovery_session_makes_codes_only_once_its_passkey_is_enrolled() -> None:
    recovering = session(("otp",), 1, restriction=RESTRICTION_RECOVERY)
    assert not RULES.may_regenerate(recovering, [passkey()], None, NOW)
    done = Recovery(session_id="s", user_id="u", started_at=NOW, completed_at=NOW)
    assert RULES.may_regenerate(recovering, [passkey()], done, NOW)
    late = session(("otp",), 1, age=timedelta(minutes=16), restriction=RESTRICTION_RECOVERY)
    assert not RULES.may_regenerate(late, [passkey()], done, NOW)


def operator_grade(session: Session) -> bool:
    return verified_passkey(session.amr, session.aal)


def test_operators_need_a_verified_passkey() -> None:
    assert operator_grade(session(PASSKEY_SESSION, 2))
    assert operator_grade(session(("swk", "pin", "mfa"), 2))
    assert not operator_grade(session(("email",), 1))
    assert not operator_grade(session(("hwk", "user"), 1))
    assert not operator_grade(session(("otp",), 1))
