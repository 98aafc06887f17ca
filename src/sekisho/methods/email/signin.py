"""Email sign-in: one message carrying a link and a 6-digit code (SECURITY.md cases 1-16).

The method advances a flow and, on success, returns an :class:`EmailProof`; it never
creates a session (that is :mod:`sekisho.core.completion`'s job).

Invariants kept here:
- the request path does the same work for known and unknown addresses: whether a
  message is really sent is decided by the mail worker, off the request path (case 10);
- a new request for an address supersedes the previous flow and spends its secrets (5);
- GET and HEAD only *look* at a link (:meth:`inspect_link`); every spend is a POST (1);
- the link completes a sign-in only in the browser holding the flow's binding value (2);
  elsewhere it needs the code, or approval by number matching for the waiting browser (11);
- each code attempt is counted before comparison, per flow (cap, then burned) and per
  address (progressive delay, at most 100 consecutive failures), and a new request does
  not reset the per-address count (12, 13); a burned code says so
  (``code_attempts_exhausted``), since the link of the same email still works.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sekisho.core import onetime
from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Flow, FlowState, Passkey
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import DEFAULT_LOCALE, minutes_left
from sekisho.policy.assurance import EMAIL

FLOW_KIND = "email_signin"
FAILURE_METHOD = "email_code"
LINK_PATH = "/signin/email/link"

_LINK = "signin-link"
_CODE = "signin-code"
_BINDING = "binding"


@dataclass(frozen=True, slots=True)
class EmailProof:
    """What an email sign-in proved: control of ``email`` (AAL1, amr ``email``)."""

    email: str
    flow_id: str
    via: str
    amr: tuple[str, ...] = EMAIL.amr
    aal: int = EMAIL.aal
    passkey: Passkey | None = None


@dataclass(frozen=True, slots=True)
class RequestedFlow:
    flow_id: str
    approval_number: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WaitView:
    """What the waiting browser may show about its own flow. ``email`` is the address
    this browser typed (normalised), so showing it tells nobody whether it has an account."""

    flow_id: str
    state: str
    approval_number: int
    email: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkView:
    """What the confirmation page may show for a link, without spending it."""

    flow_id: str
    email: str
    same_browser: bool
    requested_ip: str
    requested_device: str
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class EmailSignInConfig:
    public_origin: str
    link_ttl: timedelta
    code_attempts: int
    resend_cooldown: timedelta
    failures: FailurePolicy


class EmailSignIn:
    """The email link + code method. Stateless: all state is in the flow and secrets."""

    def __init__(self, *, keys: Keyring, config: EmailSignInConfig) -> None:
        self._keys = keys
        self._config = config

    # -- request -----------------------------------------------------------------

    def request(
        self,
        repos: Repositories,
        *,
        email: str,
        binding: str,
        locale: str,
        client: ClientInfo,
        now: datetime,
    ) -> RequestedFlow:
        """Start a flow for ``email``, already normalised by
        :func:`sekisho.core.addresses.normalize_email`, and queue its message."""
        flow = Flow(
            id=onetime.new_flow_id(),
            kind=FLOW_KIND,
            state=FlowState.PENDING,
            email=email,
            binding_digest=self._keys.digest(_BINDING, binding),
            approval_number=onetime.new_approval_number(),
            requested_ip=client.ip,
            requested_user_agent=client.user_agent,
            locale=locale,
            created_at=now,
            expires_at=now + self._config.link_ttl,
        )
        token = onetime.new_link_token()
        code = onetime.new_code()
        repos.locks.hold(f"email:{email}")
        superseded = repos.flows.supersede_pending(email, FLOW_KIND, now=now)
        for old_flow in superseded:
            repos.secrets.spend_flow(old_flow, reason="superseded", now=now)
        repos.flows.create(flow)
        repos.secrets.add(
            flow_id=flow.id,
            purpose=onetime.PURPOSE_SIGNIN,
            kind="link",
            digest=self._keys.digest(_LINK, token),
            max_attempts=1,
            expires_at=flow.expires_at,
        )
        repos.secrets.add(
            flow_id=flow.id,
            purpose=onetime.PURPOSE_SIGNIN,
            kind="code",
            digest=self._keys.digest(_CODE, onetime.code_material(flow.id, code)),
            max_attempts=self._config.code_attempts,
            expires_at=flow.expires_at,
        )
        payload = {
            "flow_id": flow.id,
            "to": email,
            "locale": locale,
            "link": f"{self._config.public_origin}{LINK_PATH}?{urlencode({'token': token})}",
            "code": code,
            "requested_at": now.isoformat(),
            "ip": client.ip,
            "device": client.describe(locale),
            "expires_minutes": minutes_left(self._config.link_ttl),
        }
        repos.outbox.enqueue(
            kind="signin", sealed_payload=self._keys.seal(json.dumps(payload).encode()), now=now
        )
        _audit(
            repos,
            "signin.email.requested",
            "success",
            flow,
            client,
            now,
            superseded=len(superseded),
        )
        return RequestedFlow(flow.id, flow.approval_number, flow.expires_at)

    def resend(
        self,
        repos: Repositories,
        *,
        flow_id: str,
        binding: str,
        client: ClientInfo,
        now: datetime,
    ) -> RequestedFlow:
        """A new email for the address of this browser's own flow, once the cooldown
        has passed. It is a new :meth:`request` (the caller applies the send limits):
        it supersedes the previous email and leaves the per-address failure count alone."""
        flow = self._own_flow(repos, flow_id, binding)
        if flow.state == FlowState.COMPLETED:
            raise SekishoError(ErrorCode.invalid_or_expired)
        wait = self.resend_wait(flow, now)
        if wait > 0:
            raise SekishoError(ErrorCode.rate_limited, retry_after=wait)
        return self.request(
            repos, email=flow.email, binding=binding, locale=flow.locale, client=client, now=now
        )

    def resend_wait(self, flow: Flow | WaitView, now: datetime) -> int:
        """Whole seconds until this flow's browser may ask for a new email."""
        left = flow.created_at + self._config.resend_cooldown - now
        return max(0, math.ceil(left.total_seconds()))

    # -- the waiting browser -----------------------------------------------------

    def status(
        self, repos: Repositories, *, flow_id: str, binding: str | None, now: datetime
    ) -> tuple[str, int]:
        """The state of this browser's own flow and the number it shows for approval."""
        flow = self._own_flow(repos, flow_id, binding)
        return flow.effective_state(now), flow.approval_number

    def wait_view(
        self, repos: Repositories, *, flow_id: str, binding: str | None, now: datetime
    ) -> WaitView:
        flow = self._own_flow(repos, flow_id, binding)
        return WaitView(
            flow_id=flow.id,
            state=flow.effective_state(now),
            approval_number=flow.approval_number,
            email=flow.email,
            created_at=flow.created_at,
            expires_at=flow.expires_at,
        )

    def verify_code(
        self,
        repos: Repositories,
        *,
        flow_id: str,
        code: str,
        binding: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> EmailProof:
        flow = self._own_flow(repos, flow_id, binding)
        return self._check_code(repos, flow, code, client, now, via="code")

    def complete_approved(
        self,
        repos: Repositories,
        *,
        flow_id: str,
        binding: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> EmailProof:
        flow = self._own_flow(repos, flow_id, binding)
        self._finish(repos, flow, FlowState.APPROVED, FlowState.COMPLETED, now)
        return EmailProof(email=flow.email, flow_id=flow.id, via="approval")

    # -- the link ------------------------------------------------------------------

    def inspect_link(
        self,
        repos: Repositories,
        *,
        token: str,
        binding: str | None,
        now: datetime,
        locale: str = DEFAULT_LOCALE,
    ) -> LinkView:
        """Look at a link without spending anything (GET/HEAD, mail scanners: case 1);
        the requesting device is described in ``locale``."""
        flow = self._flow_of_link(repos, token, now)
        return LinkView(
            flow_id=flow.id,
            email=flow.email,
            same_browser=self._same_browser(flow, binding),
            requested_ip=flow.requested_ip,
            requested_device=ClientInfo.of(flow.requested_ip, flow.requested_user_agent).describe(
                locale
            ),
            requested_at=flow.created_at,
        )

    def confirm_link(
        self,
        repos: Repositories,
        *,
        token: str,
        binding: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> EmailProof:
        """Same-browser confirmation: spends the link, completes the flow."""
        flow = self._flow_of_link(repos, token, now)
        if not self._same_browser(flow, binding):
            _audit_failure(repos, flow, client, now, reason="other_browser")
            raise SekishoError(ErrorCode.other_browser, persist=True)
        self._spend_link(repos, token, now)
        self._finish(repos, flow, FlowState.PENDING, FlowState.COMPLETED, now)
        return EmailProof(email=flow.email, flow_id=flow.id, via="link")

    def verify_link_code(
        self, repos: Repositories, *, token: str, code: str, client: ClientInfo, now: datetime
    ) -> EmailProof:
        """Another browser: the link plus the code from the same email signs in there."""
        flow = self._flow_of_link(repos, token, now)
        return self._check_code(repos, flow, code, client, now, via="link+code")

    def deny(self, repos: Repositories, *, token: str, client: ClientInfo, now: datetime) -> None:
        """End the flow from its link ("This wasn't me"): nobody can finish it any more,
        by link, code or number. Audited as ``signin.email.denied``."""
        flow = self._flow_of_link(repos, token, now)
        self._spend_link(repos, token, now)
        if not repos.flows.transition(
            flow.id, from_state=FlowState.PENDING, to_state=FlowState.DENIED, now=now
        ):
            raise SekishoError(ErrorCode.invalid_or_expired)
        repos.secrets.spend_flow(flow.id, reason=FlowState.DENIED, now=now)
        _audit(repos, "signin.email.denied", "success", flow, client, now)

    def approve(
        self, repos: Repositories, *, token: str, number: int, client: ClientInfo, now: datetime
    ) -> Flow:
        """Number matching: approve the waiting browser from the device that got the mail,
        by typing the number that browser shows.

        The link is spent whatever the outcome, so one email allows one guess (1 in 90);
        a wrong number leaves the flow pending, so the person at the waiting browser
        can still finish with the code (SECURITY.md cases 2 and 11).
        """
        flow = self._flow_of_link(repos, token, now)
        self._spend_link(repos, token, now)
        if number != flow.approval_number:
            _audit_failure(repos, flow, client, now, reason="approval_number_mismatch")
            raise SekishoError(ErrorCode.approval_refused, persist=True)
        if not repos.flows.transition(
            flow.id, from_state=FlowState.PENDING, to_state=FlowState.APPROVED, now=now
        ):
            raise SekishoError(ErrorCode.invalid_or_expired)
        repos.secrets.spend_flow(flow.id, reason="approved", now=now)
        _audit(repos, "signin.email.approved", "success", flow, client, now)
        return flow

    # -- internals -------------------------------------------------------------------

    def _same_browser(self, flow: Flow, binding: str | None) -> bool:
        return bool(binding) and self._keys.matches(_BINDING, binding or "", flow.binding_digest)

    def _own_flow(self, repos: Repositories, flow_id: str, binding: str | None) -> Flow:
        flow = repos.flows.get(flow_id) if flow_id else None
        if flow is None or flow.kind != FLOW_KIND or not self._same_browser(flow, binding):
            raise SekishoError(ErrorCode.invalid_or_expired)
        return flow

    def _flow_of_link(self, repos: Repositories, token: str, now: datetime) -> Flow:
        flow_id = repos.secrets.find_live(
            purpose=onetime.PURPOSE_SIGNIN,
            kind="link",
            digest=self._keys.digest(_LINK, token),
            now=now,
        )
        flow = repos.flows.get(flow_id) if flow_id else None
        if flow is None or flow.effective_state(now) != FlowState.PENDING:
            raise SekishoError(ErrorCode.invalid_or_expired)
        return flow

    def _spend_link(self, repos: Repositories, token: str, now: datetime) -> None:
        spent = repos.secrets.consume_live(
            purpose=onetime.PURPOSE_SIGNIN,
            kind="link",
            digest=self._keys.digest(_LINK, token),
            now=now,
        )
        if spent is None:
            raise SekishoError(ErrorCode.invalid_or_expired)

    def _finish(
        self, repos: Repositories, flow: Flow, from_state: str, to_state: str, now: datetime
    ) -> None:
        if not repos.flows.transition(flow.id, from_state=from_state, to_state=to_state, now=now):
            raise SekishoError(ErrorCode.invalid_or_expired)
        repos.secrets.spend_flow(flow.id, reason=to_state, now=now)
        if to_state == FlowState.COMPLETED:
            repos.failures.reset(flow.email, FAILURE_METHOD)

    def _check_code(
        self,
        repos: Repositories,
        flow: Flow,
        code: str,
        client: ClientInfo,
        now: datetime,
        *,
        via: str,
    ) -> EmailProof:
        if not onetime.is_code_shaped(code):
            raise SekishoError(ErrorCode.invalid_code_format)
        if flow.effective_state(now) != FlowState.PENDING:
            raise SekishoError(ErrorCode.invalid_or_expired)
        repos.locks.hold(f"email:{flow.email}")
        previous = repos.failures.get(flow.email, FAILURE_METHOD)
        if previous is not None:
            wait = self._config.failures.wait(previous.consecutive, previous.last_failure_at, now)
            if wait > 0:
                _audit_failure(repos, flow, client, now, reason="account_delay")
                raise SekishoError(ErrorCode.rate_limited, retry_after=wait, persist=True)
        attempt = repos.secrets.take_code_attempt(
            flow_id=flow.id, purpose=onetime.PURPOSE_SIGNIN, now=now
        )
        if attempt is None:
            # The flow is pending, so its code was not spent by a finish: it was burned by
            # wrong attempts. The link of the same email still works (issue 7, defect 7).
            raise SekishoError(ErrorCode.code_attempts_exhausted)
        if not self._keys.matches(_CODE, onetime.code_material(flow.id, code), attempt.digest):
            consecutive = repos.failures.record_failure(flow.email, FAILURE_METHOD, now=now)
            if attempt.remaining == 0:
                repos.secrets.consume(attempt.secret_id, reason="exhausted", now=now)
            _audit_failure(
                repos, flow, client, now, reason="code_incorrect", consecutive_failures=consecutive
            )
            raise SekishoError(
                ErrorCode.code_incorrect
                if attempt.remaining
                else ErrorCode.code_attempts_exhausted,
                persist=True,
                detail={"attempts_remaining": attempt.remaining},
            )
        if not repos.secrets.consume(attempt.secret_id, reason="used", now=now):
            raise SekishoError(ErrorCode.invalid_or_expired)
        self._finish(repos, flow, FlowState.PENDING, FlowState.COMPLETED, now)
        return EmailProof(email=flow.email, flow_id=flow.id, via=via)


def _audit(
    repos: Repositories,
    event: str,
    outcome: str,
    flow: Flow,
    client: ClientInfo,
    now: datetime,
    **detail: object,
) -> None:
    repos.audit.append(
        AuditEvent(
            event=event,
            outcome=outcome,
            at=now,
            ip=client.ip,
            user_agent=client.user_agent,
            email=flow.email,
            flow_id=flow.id,
            detail=dict(detail),
        )
    )


def _audit_failure(
    repos: Repositories, flow: Flow, client: ClientInfo, now: datetime, **detail: object
) -> None:
    _audit(repos, "signin.email.failed", "failure", flow, client, now, **detail)
