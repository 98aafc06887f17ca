"""An audit event about a grant records the grant's person, session and ``amr``, never
an AAL (the grant froze no session level), and only what the caller adds as detail."""

from __future__ import annotations

from datetime import UTC, datetime

from sekisho.core.clients import ClientInfo
from sekisho.oidc.grant_events import grant_event
from sekisho.oidc.records import Grant

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CLIENT = ClientInfo.of("203.0.113.7", "curl/8.5")
GRANT = Grant(
    id="g-1",
    client_id="app",
    user_id="u-1",
    session_id="s-1",
    scope=("openid",),
    nonce=None,
    auth_time=NOW,
    amr=("hwk", "user"),
    acr="urn:sekisho:acr:aal2",
    created_at=NOW,
)


def test_an_event_about_a_grant_is_the_grants_person_session_and_amr() -> None:
    event = grant_event(
        "oidc.token.revoked", GRANT, CLIENT, NOW, outcome="failure", detail={"grant": "g-1"}
    )
    assert (event.event, event.outcome, event.at) == ("oidc.token.revoked", "failure", NOW)
    assert (event.ip, event.user_agent) == ("203.0.113.7", "curl/8.5")
    assert (event.user_id, event.session_id, event.amr) == ("u-1", "s-1", ("hwk", "user"))
    assert event.aal is None
    assert event.detail == {"grant": "g-1"}


def test_an_event_about_an_unknown_grant_names_nobody() -> None:
    event = grant_event("oidc.token.refused", None, CLIENT, NOW, outcome="failure")
    assert (event.user_id, event.session_id, event.amr, event.aal) == (None, None, (), None)
    assert event.detail == {}
