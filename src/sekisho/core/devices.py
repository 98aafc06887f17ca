"""Sign-in from a new browser (NIST SP 800-63B-4 §4.6: notify the subscriber of events
that may mean someone else got in).

"New" means: the browser's device cookie (a random value Sekisho sets once, kept a
year) has not been seen in a sign-in to this account before. Only its keyed hash, bound
to the account, is stored, so the table cannot link one browser across accounts. The
first browser an account is ever seen from is recorded without a notice (there is
nothing to compare it with), and a recovery session is not told apart, since the
recovery notice already says where it came from.
"""

from __future__ import annotations

from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.notices import NEW_BROWSER, queue_notice
from sekisho.core.ports import Repositories
from sekisho.core.records import Session, User
from sekisho.core.sessions import session_event

PURPOSE = "device"


class NewBrowserNotices:
    def __init__(self, *, keys: Keyring) -> None:
        self._keys = keys

    def observe(
        self,
        repos: Repositories,
        user: User,
        session: Session,
        client: ClientInfo,
        now: datetime,
    ) -> None:
        """Record this sign-in's browser; notify when the account knew others but not it."""
        if client.device is None:
            return
        digest = self._keys.digest(PURPOSE, f"{user.id}:{client.device}")
        if repos.devices.known(user.id, digest, now=now):
            return
        had_others = repos.devices.any_for(user.id)
        if not repos.devices.add(user.id, digest, now=now) or not had_others:
            return
        if session.restriction is not None:
            return
        repos.audit.append(session_event("signin.new_browser", session, client, now))
        queue_notice(
            repos,
            self._keys,
            user=user,
            notice=NEW_BROWSER,
            locale=client.locale,
            client=client,
            now=now,
        )
