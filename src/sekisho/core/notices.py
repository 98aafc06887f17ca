"""Security notifications by email (NIST SP 800-63B-4 §4.6: bindings and removals of
authenticators, recoveries and sign-ins from a new browser are notified), queued in the
same transaction as the change. Links in them are built by the mail worker from the
configured public origin, never from the request."""

from __future__ import annotations

import json
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import User

PASSKEY_ADDED = "passkey_added"
PASSKEY_REMOVED = "passkey_removed"
NEW_BROWSER = "new_browser"
RECOVERY_CODE_USED = "recovery_code_used"
RECOVERY_COMPLETED = "recovery_completed"
RECOVERY_CODES_GENERATED = "recovery_codes_generated"
TIER_CHANGED = "tier_changed"
#: Sent to the address the account had before the change (``email_change_service``).
EMAIL_CHANGED = "email_changed"
OPERATOR_RECOVERY_OPENED = "operator_recovery_opened"
OPERATOR_RECOVERY_APPROVED = "operator_recovery_approved"
OPERATOR_RECOVERY_USED = "operator_recovery_used"
OPERATOR_RECOVERY_CANCELLED = "operator_recovery_cancelled"
#: Changes an operator (or the app, through the admin API) made: there is no browser
#: of the account holder to name, so the notice says who made it instead.
BY_OPERATOR = "operator"


def queue_notice(
    repos: Repositories,
    keys: Keyring,
    *,
    user: User,
    notice: str,
    locale: str,
    client: ClientInfo,
    now: datetime,
    by: str | None = None,
    **params: str,
) -> None:
    """Queue ``notice`` to the account's address in the caller's transaction; ``by`` is
    :data:`BY_OPERATOR` for changes no browser of the account made.

    Such a notice is written in the language of the account's last sign-in
    (``user.locale``), the holder's rather than the operator's; ``locale`` only when the
    account has no sign-in on record. Other notices follow the browser that made the
    change (``locale``)."""
    if by == BY_OPERATOR and user.locale:
        locale = user.locale
    payload = {
        "to": user.email,
        # The worker sends while this account exists, even once its address has changed
        # (the notice of a change goes to the old address).
        "user_id": user.id,
        "locale": locale,
        "notice": notice,
        "params": params,
        "requested_at": now.isoformat(),
        "ip": client.ip,
        "device": client.describe(locale),
        "by": by,
    }
    repos.outbox.enqueue(
        kind="notice", sealed_payload=keys.seal(json.dumps(payload).encode()), now=now
    )
