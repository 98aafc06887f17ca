"""The one implementation behind both the pages and the JSON API.

Each operation applies the rate limits, runs the method and the completion step in one
transaction, and returns plain results; the web layer only translates HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.clients import ClientInfo
from sekisho.core.completion import Completion, IssuedSession
from sekisho.core.devices import NewBrowserNotices
from sekisho.core.keys import Keyring
from sekisho.core.migration import MigrationPolicy
from sekisho.core.operators import operators
from sekisho.core.password_presence import PasswordPresence
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Session, User
from sekisho.core.recovery import RecoveryRules
from sekisho.core.sessions import SessionManager, SessionTimeouts
from sekisho.email_change_service import EmailChangeService
from sekisho.errors import ErrorCode, SekishoError
from sekisho.i18n import DEFAULT_LOCALE
from sekisho.methods.email.signin import (
    EmailSignIn,
    EmailSignInConfig,
    LinkView,
    RequestedFlow,
    WaitView,
)
from sekisho.methods.password.signin import PasswordSignIn
from sekisho.operator_recovery_service import OperatorCodeService, OperatorRecoveryService
from sekisho.passkey_service import PasskeyService
from sekisho.policy.assurance import Attestation
from sekisho.policy.deployment import policy_for
from sekisho.ratelimits import RateLimits
from sekisho.recovery_service import RecoveryService
from sekisho.settings import Settings
from sekisho.store.database import Database
from sekisho.tier_service import TierService


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AccountView:
    user: User
    sessions: list[Session]
    activity: list[AuditEvent]


class Sekisho:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        limits: RateLimits,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.database = database
        self.limits = limits
        self.clock = clock
        self.keys = Keyring(settings.secret_key.get_secret_value())
        self.sessions = SessionManager(
            keys=self.keys,
            timeouts=SessionTimeouts(
                idle_aal1=settings.session_idle_timeout,
                absolute_aal1=settings.session_absolute_timeout,
                idle_aal2=settings.session_aal2_idle_timeout,
                absolute_aal2=settings.session_aal2_absolute_timeout,
                idle_aal3=settings.session_aal3_idle_timeout,
                absolute_aal3=settings.session_aal3_absolute_timeout,
            ),
        )
        self.admin_emails = operators(settings.admin_emails)
        self.migration = MigrationPolicy(
            mode=settings.migration_mode, cutoff=settings.password_cutoff
        )
        failures = FailurePolicy(
            free_attempts=settings.account_failure_free_attempts,
            cap=settings.account_failure_cap,
            max_delay=settings.account_max_delay,
            lockout=settings.account_lockout,
        )
        attestation = Attestation(frozenset(settings.passkey_aaguid_allowlist))
        policy = policy_for(
            settings.policy_file, attested_keys=settings.passkey_attestation == "direct"
        )
        self.completion = Completion(
            transactions=database,
            clock=clock,
            sessions=self.sessions,
            self_signup=settings.self_signup,
            migration=self.migration,
            policy=policy,
            attestation=attestation,
            browsers=NewBrowserNotices(keys=self.keys),
            restricted_lifetime=settings.recovery_session_lifetime,
        )
        recovery_rules = RecoveryRules(
            keys=self.keys,
            hold=settings.recovery_hold,
            enrolment_window=settings.recovery_session_lifetime,
            regeneration_window=settings.recovery_codes_reauthentication_window,
            attestation=attestation,
        )
        self.email_change = EmailChangeService(
            database=database,
            keys=self.keys,
            limits=limits,
            rules=recovery_rules,
            public_origin=settings.public_origin,
            lifetime=settings.email_link_ttl,
            code_attempts=settings.email_code_attempts,
            clock=clock,
        )
        self.recovery = RecoveryService(
            database=database,
            keys=self.keys,
            limits=limits,
            completion=self.completion,
            rules=recovery_rules,
            failures=failures,
            clock=clock,
        )
        self.operator_recovery = OperatorRecoveryService(
            database=database,
            keys=self.keys,
            policy=policy,
            operators=self.admin_emails,
            approval_window=settings.operator_recovery_approval_window,
            code_lifetime=settings.operator_recovery_code_lifetime,
            clock=clock,
        )
        self.operator_code = OperatorCodeService(
            database=database,
            keys=self.keys,
            limits=limits,
            completion=self.completion,
            failures=failures,
            clock=clock,
        )
        self.tiers = TierService(
            transactions=database,
            policy=policy,
            attestation=attestation,
            keys=self.keys,
            clock=clock,
            self_signup=settings.self_signup,
        )
        self.password = PasswordSignIn(
            failures=failures,
            migration=self.migration,
            tier_allows=lambda user: "password" in policy.tier_for(user).methods,
        )
        self.password_presence = PasswordPresence(database, default_mode=settings.migration_mode)
        self.passkeys = PasskeyService(
            settings=settings,
            database=database,
            keys=self.keys,
            limits=limits,
            completion=self.completion,
            migration=self.migration,
            recovery=recovery_rules,
            clock=clock,
        )
        self.email = EmailSignIn(
            keys=self.keys,
            config=EmailSignInConfig(
                public_origin=settings.public_origin,
                link_ttl=settings.email_link_ttl,
                code_attempts=settings.email_code_attempts,
                resend_cooldown=settings.email_resend_cooldown,
                failures=failures,
            ),
        )

    # -- email sign-in ---------------------------------------------------------------

    def request_email(
        self, *, raw_email: str, binding: str, locale: str, client: ClientInfo
    ) -> RequestedFlow:
        try:
            address = normalize_email(raw_email)
        except InvalidAddress as exc:
            raise SekishoError(ErrorCode.invalid_email) from exc
        self.limits.hit(self.limits.sends_per_ip, client.ip)
        self.limits.hit(self.limits.sends_per_address, address)
        self.limits.hit(self.limits.sends_global)
        with self.database.transaction() as repos:
            return self.email.request(
                repos,
                email=address,
                binding=binding,
                locale=locale,
                client=client,
                now=self.clock(),
            )

    def resend_email(self, *, flow_id: str, binding: str, client: ClientInfo) -> RequestedFlow:
        """A new email for this browser's own flow (see :meth:`EmailSignIn.resend`), under
        the same send limits as a first request."""
        with self.database.transaction() as repos:
            now = self.clock()
            flow = self.email.wait_view(repos, flow_id=flow_id, binding=binding, now=now)
            self.limits.hit(self.limits.sends_per_ip, client.ip)
            self.limits.hit(self.limits.sends_per_address, flow.email)
            self.limits.hit(self.limits.sends_global)
            return self.email.resend(
                repos, flow_id=flow_id, binding=binding, client=client, now=now
            )

    def deny(self, *, token: str, client: ClientInfo) -> None:
        self.limits.hit_verification(client.ip)
        with self.database.transaction() as repos:
            self.email.deny(repos, token=token, client=client, now=self.clock())

    def flow_status(self, *, flow_id: str, binding: str | None) -> tuple[str, int]:
        with self.database.reading() as repos:
            return self.email.status(repos, flow_id=flow_id, binding=binding, now=self.clock())

    def wait_view(self, *, flow_id: str, binding: str | None) -> WaitView:
        with self.database.reading() as repos:
            return self.email.wait_view(repos, flow_id=flow_id, binding=binding, now=self.clock())

    def inspect_link(
        self, *, token: str, binding: str | None, locale: str = DEFAULT_LOCALE
    ) -> LinkView:
        with self.database.reading() as repos:
            return self.email.inspect_link(
                repos, token=token, binding=binding, now=self.clock(), locale=locale
            )

    def confirm_link(
        self, *, token: str, binding: str | None, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        return self.completion.sign_in(
            lambda repos, now: self.email.confirm_link(
                repos, token=token, binding=binding, client=client, now=now
            ),
            client=client,
            previous=previous,
        )

    def verify_code(
        self,
        *,
        flow_id: str,
        code: str,
        binding: str | None,
        client: ClientInfo,
        previous: str | None,
    ) -> IssuedSession:
        self.limits.hit_verification(client.ip)
        return self.completion.sign_in(
            lambda repos, now: self.email.verify_code(
                repos, flow_id=flow_id, code=code, binding=binding, client=client, now=now
            ),
            client=client,
            previous=previous,
        )

    def verify_link_code(
        self, *, token: str, code: str, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        self.limits.hit_verification(client.ip)
        return self.completion.sign_in(
            lambda repos, now: self.email.verify_link_code(
                repos, token=token, code=code, client=client, now=now
            ),
            client=client,
            previous=previous,
        )

    def approve(self, *, token: str, number: int, client: ClientInfo) -> None:
        self.limits.hit_verification(client.ip)
        with self.database.transaction() as repos:
            self.email.approve(repos, token=token, number=number, client=client, now=self.clock())

    def complete_approved(
        self, *, flow_id: str, binding: str | None, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        return self.completion.sign_in(
            lambda repos, now: self.email.complete_approved(
                repos, flow_id=flow_id, binding=binding, client=client, now=now
            ),
            client=client,
            previous=previous,
        )

    def sign_in_with_password(
        self, *, raw_email: str, password: str, client: ClientInfo, previous: str | None
    ) -> IssuedSession:
        """The migration bridge: AAL1, amr ``pwd``; see :mod:`sekisho.methods.password.signin`."""
        try:
            address = normalize_email(raw_email)
        except InvalidAddress as exc:
            raise SekishoError(ErrorCode.invalid_credentials) from exc
        self.limits.hit_verification(client.ip)
        return self.completion.sign_in(
            lambda repos, now: self.password.verify(
                repos, email=address, password=password, client=client, now=now
            ),
            client=client,
            previous=previous,
        )

    def offers_passwords(self) -> bool:
        """Before the cut-off, some account holds a password its migration mode (its own
        override, else the deployment's) lets it use."""
        return self.migration.before_cutoff(self.clock()) and self.password_presence.any_usable()

    # -- sessions --------------------------------------------------------------------

    def current_session(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self.database.transaction() as repos:
            return self.sessions.current(repos, token, now=self.clock())

    def sign_out(self, session: Session, client: ClientInfo) -> None:
        with self.database.transaction() as repos:
            self.sessions.sign_out(repos, session, client=client, now=self.clock())

    def revoke_others(self, session: Session, client: ClientInfo) -> int:
        with self.database.transaction() as repos:
            return self.sessions.revoke_others(repos, session, client=client, now=self.clock())

    def revoke_session(self, session: Session, target_id: str, client: ClientInfo) -> bool:
        with self.database.transaction() as repos:
            return self.sessions.revoke_one(
                repos, session, target_id, client=client, now=self.clock()
            )

    def user_of(self, session: Session) -> User:
        with self.database.reading() as repos:
            return self._user(repos, session)

    @staticmethod
    def _user(repos: Repositories, session: Session) -> User:
        user = repos.users.by_id(session.user_id)
        if user is None:
            raise SekishoError(ErrorCode.not_authenticated)
        return user

    def account(self, session: Session, *, activity: Collection[str] = ()) -> AccountView:
        """The account, its sessions, and its 20 newest events named in ``activity``."""
        with self.database.reading() as repos:
            user = self._user(repos, session)
            return AccountView(
                user=user,
                sessions=repos.sessions.active_for(user.id),
                activity=repos.audit.recent(
                    user.id, user.email, 20, activity, since=user.created_at
                ),
            )
