"""The ``sekisho`` command: serve, migrate, manage users, inspect the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import OperationalError

from sekisho import heap, logs
from sekisho.admin import commands as api_key_commands
from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.keys import Keyring
from sekisho.core.operators import Actor, operators
from sekisho.core.records import AuditEvent
from sekisho.i18n import DEFAULT_LOCALE, LOCALES
from sekisho.importer import import_users
from sekisho.legacy_hashes import wrap_legacy_hashes
from sekisho.mail.senders import make_sender
from sekisho.mail.worker import OutboxWorker
from sekisho.oidc import commands as oidc_commands
from sekisho.oidc.backchannel import BackchannelWorker
from sekisho.oidc.metadata_fetch import MetadataFetcher
from sekisho.operator_recovery_service import CaseRefused as OperatorCaseRefused
from sekisho.operator_recovery_service import OperatorRecoveryService
from sekisho.policy.assurance import Attestation
from sekisho.policy.deployment import policy_for
from sekisho.policy.explain import explain, explain_self_signup
from sekisho.policy.parsing import PolicyError, load_policy
from sekisho.policy.tiers import Policy
from sekisho.service import utc_now
from sekisho.settings import Settings
from sekisho.store import audit_chain
from sekisho.store.database import Database, make_engine
from sekisho.store.deployment import (
    SHOWN,
    NotReady,
    adopt_key,
    check_key,
    prepare,
    require_current_schema,
    require_existing_file,
    unreachable,
)
from sekisho.store.logout_queue import LogoutQueue
from sekisho.store.maintenance import purge
from sekisho.store.migrate import upgrade
from sekisho.store.outbox_queue import OutboxQueue
from sekisho.store.reporting import METHODS, migration_report
from sekisho.tier_service import TierChange, TierRefused, TierService

LOCALE_HELP = (
    "Language of the holder's notice (en or ja) if the account has no sign-in on record;"
    " otherwise the notice is in the language of its last sign-in."
)
app = typer.Typer(help="Sekisho: a passwordless authentication server.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
mail_app = typer.Typer(help="Outgoing mail.", no_args_is_help=True)
migration_app = typer.Typer(help="The move off passwords.", no_args_is_help=True)
key_app = typer.Typer(help="The deployment's secret key.", no_args_is_help=True)
policy_app = typer.Typer(help="The assurance policy: tiers.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
recovery_app = typer.Typer(
    help="Operator-assisted recovery: one operator opens, another approves.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(mail_app, name="mail")
app.add_typer(migration_app, name="migration")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(recovery_app, name="recovery")


def _settings() -> Settings:
    """The settings, and the policy file they name checked with them: a broken file
    stops every command, with its line and the reason."""
    try:
        settings = Settings()
        _policy(settings)
        return settings
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            typer.echo(f"configuration error: {where}: {problem['msg']}", err=True)
        raise typer.Exit(2) from error
    except SettingsError as error:
        typer.echo(f"configuration error: {error} (list settings are JSON arrays)", err=True)
        raise typer.Exit(2) from error


def _policy(settings: Settings) -> Policy:
    try:
        return policy_for(
            settings.policy_file, attested_keys=settings.passkey_attestation == "direct"
        )
    except PolicyError as error:
        typer.echo(f"policy error: {error}", err=True)
        raise typer.Exit(2) from error


def _refuse_undeclared_tiers(settings: Settings) -> None:
    """A policy that no longer declares a tier some accounts are in is refused at start:
    those accounts would otherwise get the strictest tier by surprise."""
    policy = _policy(settings)
    database = Database(
        make_engine(settings.database_url), Keyring(settings.secret_key.get_secret_value())
    )
    try:
        with database.reading() as repos:
            counts = repos.users.tier_counts()
    finally:
        database.dispose()
    missing = {tier: count for tier, count in counts.items() if policy.tier(tier) is None}
    if missing:
        listed = ", ".join(
            f"{tier} ({count} account{'s' if count != 1 else ''})"
            for tier, count in sorted(missing.items())
        )
        typer.echo(
            f"policy error: {policy.source}: accounts are in tiers it does not declare: "
            f"{listed}. Declare them, or move the accounts with `sekisho users set-tier`.",
            err=True,
        )
        raise typer.Exit(2)


def _refuse(error: NotReady) -> NoReturn:
    typer.echo(f"sekisho: {error}", err=True)
    raise typer.Exit(1) from error


def _database(
    settings: Settings,
    *,
    keys: Keyring | None = None,
    process: str = "command line",
    check_deployment_key: bool = True,
) -> Database:
    """The deployment's database, ready for a command: it exists and is migrated, and the
    secret key is the deployment's (every command may seal audit events or read sealed
    mail, and a foreign key would break the audit chain). Otherwise one line says what
    to run, and the command ends with status 1. Only ``key adopt``, whose purpose is to
    change the deployment's key, skips the key check."""
    keys = keys or Keyring(settings.secret_key.get_secret_value())
    try:
        require_existing_file(settings.database_url)
        database = Database(make_engine(settings.database_url), keys)
        require_current_schema(database.engine, settings.database_url)
        if check_deployment_key:
            check_key(database.engine, keys, process=process, now=datetime.now(UTC))
    except NotReady as error:
        _refuse(error)
    return database


def _oidc_database() -> tuple[Database, Keyring]:
    settings = _settings()
    keys = Keyring(settings.secret_key.get_secret_value())
    return _database(settings, keys=keys), keys


def _metadata_fetcher() -> MetadataFetcher:
    return MetadataFetcher(allow_loopback=_settings().oidc_client_fetch_allow_loopback)


oidc_commands.install(app, _oidc_database, _metadata_fetcher)
api_key_commands.install(app, _oidc_database, lambda: operators(_settings().admin_emails))


def _public_origin_for_port(settings: Settings, port: int) -> Settings:
    """In development, an unset public origin follows ``--port``: the default
    http://localhost:8000 would send every link and redirect to another port."""
    if not settings.development or "public_origin" in settings.model_fields_set:
        return settings
    origin = Settings.model_validate({"public_origin": f"http://localhost:{port}"}).public_origin
    return settings.model_copy(update={"public_origin": origin})


class _OneAddress(logging.Filter):
    """Puts the public origin in place of uvicorn's "Uvicorn running on
    http://127.0.0.1:PORT": links and passkeys work on that origin only, so it is the
    one address a newcomer should see."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Uvicorn running on "):
            record.msg, record.args = "%s", (self._text,)
            record.__dict__.pop("color_message", None)
        return True


def _address(raw: str) -> str:
    try:
        return normalize_email(raw)
    except InvalidAddress as error:
        typer.echo(f"not a usable email address: {raw!r}", err=True)
        raise typer.Exit(2) from error


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(
        1,
        min=1,
        help="Worker processes, each with its own connections and mail worker. More than "
        "one needs SEKISHO_REDIS_URL: rate limits kept in memory would count per process.",
    ),
) -> None:
    """Run the server (migrating the database first when auto_migrate is on)."""
    settings = _public_origin_for_port(_settings(), port)
    if workers > 1 and not settings.redis_url:
        typer.echo(
            "sekisho serve: --workers above 1 needs SEKISHO_REDIS_URL, so that every "
            "process counts against the same rate limits",
            err=True,
        )
        raise typer.Exit(2)
    if workers > 1 and settings.metrics_port is not None:
        typer.echo(
            "sekisho serve: metrics_port serves one process's metrics; with --workers "
            "above 1 use metrics_token and /metrics on each instance",
            err=True,
        )
        raise typer.Exit(2)
    from sekisho.app import create_app
    from sekisho.web.proxies import behind_proxies

    logs.configure(settings.log_format)
    engine = make_engine(settings.database_url)
    try:
        prepare(
            engine,
            settings.database_url,
            Keyring(settings.secret_key.get_secret_value()),
            migrate=settings.auto_migrate,
            process="serve",
            now=datetime.now(UTC),
        )
    except NotReady as error:
        _refuse(error)
    finally:
        engine.dispose()
    _refuse_undeclared_tiers(settings)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_config": None,  # uvicorn's lines go through logs.configure too
        "proxy_headers": False,  # the app applies forwarded_allow_ips (web/proxies.py)
        "log_level": "info",
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_worker_healthcheck": settings.worker_healthcheck_seconds,
    }
    ready = f"Sekisho {settings.mode} mode: open {settings.public_origin}/signin"
    if settings.development and settings.mail_backend == "devmailbox":
        ready += f" (mail it sends: {settings.public_origin}/dev/mailbox)"
    elif not settings.development:
        ready += f" (this process listens on {host} port {port})"
    logging.getLogger("uvicorn.error").addFilter(_OneAddress(ready))
    if workers > 1:
        # Each worker builds its application from the environment (sekisho.asgi), with
        # the origin chosen above.
        os.environ["SEKISHO_PUBLIC_ORIGIN"] = settings.public_origin
        uvicorn.run("sekisho.asgi:create", factory=True, workers=workers, **common)
        return
    web_app = create_app(settings, settle_heap=True)
    if settings.metrics_port is not None:
        try:
            start_http_server(
                settings.metrics_port,
                settings.metrics_host,
                registry=web_app.state.metrics.registry,
            )
        except OSError as error:
            typer.echo(
                f"sekisho: cannot serve metrics on {settings.metrics_host} port "
                f"{settings.metrics_port}: {error.strerror}",
                err=True,
            )
            raise typer.Exit(1) from error
    server = uvicorn.Server(uvicorn.Config(behind_proxies(web_app, settings), **common))
    server.run()
    if not server.started:
        raise typer.Exit(3)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    settings = _settings()
    try:
        upgrade(make_engine(settings.database_url), revision)
    except OperationalError as error:
        _refuse(unreachable(settings.database_url, error))
    typer.echo(f"database at {revision}")


@db_app.command("purge")
def db_purge(
    older_than_days: int = typer.Option(30, min=1, help="Keep anything that ended more recently."),
) -> None:
    """Delete expired flows and their secrets, ended sessions (queueing back-channel
    logouts for those that expired unnoticed), settled mail and logout tokens, stale
    failure counters, expired operator recovery cases and spent OpenID Connect requests,
    codes, tokens and grants (never the audit log)."""
    settings = _settings()
    now = datetime.now(UTC)
    before = now - timedelta(days=older_than_days)
    failures_before = min(before, now - settings.account_lockout)
    counts = purge(_database(settings), before=before, failures_before=failures_before, now=now)
    for table, count in counts.items():
        typer.echo(f"{table}\t{count}")


@users_app.command("add")
def users_add(email: str, name: str = typer.Option(None, help="Display name.")) -> None:
    """Create an account (its address counts as verified once it signs in)."""
    address = _address(email)
    database = _database(_settings())
    with database.transaction() as repos:
        if repos.users.by_email(address) is not None:
            typer.echo(f"{address} already exists", err=True)
            raise typer.Exit(1)
        user = repos.users.create(address, now=datetime.now(UTC), verified=False, display_name=name)
    typer.echo(f"created {user.email} ({user.id})")


@users_app.command("import")
def users_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV (with a header) or JSON Lines."
        ),
    ],
) -> None:
    """Import existing users with their legacy password hashes (idempotent).

    Fields: id, email, email_verified, display_name, password_hash, migration_mode,
    attributes (JSON object); any other CSV column becomes an attribute."""
    database = _database(_settings())
    with file.open(encoding="utf-8-sig") as handle:
        rows = max(
            0,
            sum(1 for line in handle if line.strip()) - (1 if file.suffix.lower() == ".csv" else 0),
        )
    with typer.progressbar(length=rows, label="importing", file=sys.stderr) as bar:
        summary = import_users(
            database, file, now=datetime.now(UTC), progress=lambda: bar.update(1)
        )
    for line, reason in summary.rejected:
        typer.echo(f"line {line}: rejected: {reason}", err=True)
    typer.echo(
        f"created {summary.created}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, rejected {len(summary.rejected)}"
    )
    if summary.rejected:
        raise typer.Exit(3)


@users_app.command("wrap-legacy-hashes")
def users_wrap_legacy_hashes() -> None:
    """Wrap legacy password hashes stored before Sekisho wrapped them at import
    (argon2id over the legacy key; every password keeps working). Idempotent."""
    summary = wrap_legacy_hashes(_database(_settings()), now=datetime.now(UTC))
    for user_id in summary.unusable:
        typer.echo(f"{user_id}: stored hash can never verify; left as it is", err=True)
    typer.echo(
        f"wrapped {summary.wrapped}, unchanged {summary.unchanged}, "
        f"unusable {len(summary.unusable)}"
    )


@users_app.command("list")
def users_list() -> None:
    """List accounts: id, email, status, last sign-in."""
    database = _database(_settings())
    with database.transaction() as repos:
        for user in repos.users.all():
            last = user.last_sign_in_at.isoformat() if user.last_sign_in_at else "never"
            typer.echo(f"{user.id}\t{user.email}\t{user.status}\t{last}")


def _set_status(email: str, status: str) -> None:
    address = _address(email)
    settings = _settings()
    keys = Keyring(settings.secret_key.get_secret_value())
    process = "users enable" if status == "active" else "users disable"
    database = _database(settings, keys=keys, process=process)  # it seals its event
    now = datetime.now(UTC)
    with database.transaction() as repos:
        if not repos.users.set_status(address, status, now=now):
            typer.echo(f"no account for {address}", err=True)
            raise typer.Exit(1)
        repos.audit.append(
            AuditEvent(
                event=f"account.{'enabled' if status == 'active' else status}",
                outcome="success",
                at=now,
                ip="cli",
                email=address,
                detail={"by": "operator"},
            )
        )
    typer.echo(f"{address} is {status}")


def _tiers(process: str) -> TierService:
    settings = _settings()
    keys = Keyring(settings.secret_key.get_secret_value())
    return TierService(
        transactions=_database(settings, keys=keys, process=process),
        policy=_policy(settings),
        attestation=Attestation(frozenset(settings.passkey_aaguid_allowlist)),
        keys=keys,
        clock=utc_now,
        self_signup=settings.self_signup,
    )


def _report_change(change: TierChange) -> None:
    moved = (
        f"{change.email} moves from tier {change.before} to {change.after}"
        if change.before != change.after
        else f"{change.email} stays in tier {change.after}"
    )
    typer.echo(moved)
    if change.ways_in:
        typer.echo(f"ways in: {', '.join(change.ways_in)}")
    else:
        typer.echo(
            f"no way in the tier allows yet: the next sign-in by {' or '.join(change.bridges)} "
            "gets a session that can only add a passkey the tier accepts"
        )


@users_app.command("set-tier")
def users_set_tier(
    email: str,
    tier: str = typer.Argument(None, help="A tier the policy declares."),
    rules: bool = typer.Option(False, "--rules", help="Forget the set tier: rules decide."),
    locale: str = typer.Option(DEFAULT_LOCALE, "--locale", help=LOCALE_HELP),
) -> None:
    """Put an account in a tier (audited); refused if it would lock the account out."""
    if (tier is None) == (not rules):
        typer.echo("give a TIER, or --rules to let the policy's rules decide", err=True)
        raise typer.Exit(2)
    address = _address(email)
    try:
        change = _tiers("users set-tier").set_tier(
            address, None if rules else tier, locale=_locale(locale)
        )
    except TierRefused as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(1) from error
    _report_change(change)


def _locale(raw: str) -> str:
    """The language of a notice the account holder gets for an operator's change."""
    if raw not in LOCALES:
        typer.echo(f"--locale must be one of {', '.join(LOCALES)}", err=True)
        raise typer.Exit(2)
    return raw


def _attribute_value(raw: str) -> int | float | bool | str:
    """A number, true, false or text. A number is finite: ``float`` reads "nan", "inf"
    and "1e400" as values no JSON document can hold."""
    if raw in ("true", "false"):
        return raw == "true"
    for kind in (int, float):
        try:
            number = kind(raw)
        except ValueError:
            continue
        if not math.isfinite(number):
            typer.echo(f"{raw}: a number must be finite", err=True)
            raise typer.Exit(2)
        return number
    return raw


@users_app.command("set-attribute")
def users_set_attribute(
    email: str,
    name: str,
    value: str = typer.Argument(None, help="A finite number, true, false or text."),
    remove: bool = typer.Option(False, "--remove", help="Remove the attribute."),
    locale: str = typer.Option(DEFAULT_LOCALE, "--locale", help=LOCALE_HELP),
) -> None:
    """Set an attribute the policy's tier rules read (audited; the derived tier follows)."""
    if (value is None) == (not remove):
        typer.echo("give a VALUE, or --remove", err=True)
        raise typer.Exit(2)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        typer.echo("attribute names are lower-case letters, digits and _", err=True)
        raise typer.Exit(2)
    address = _address(email)
    parsed = None if remove else _attribute_value(value)
    try:
        change = _tiers("users set-attribute").set_attribute(
            address, name, parsed, locale=_locale(locale)
        )
    except TierRefused as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(1) from error
    _report_change(change)


def _operator_recovery(process: str) -> OperatorRecoveryService:
    settings = _settings()
    keys = Keyring(settings.secret_key.get_secret_value())
    return OperatorRecoveryService(
        database=_database(settings, keys=keys, process=process),
        keys=keys,
        policy=_policy(settings),
        operators=operators(settings.admin_emails),
        approval_window=settings.operator_recovery_approval_window,
        code_lifetime=settings.operator_recovery_code_lifetime,
        clock=utc_now,
    )


def _operator(address: str) -> Actor:
    """The operator a command acts as: their address in ``admin_emails`` (the service
    refuses any other), taking a step on the command line."""
    return Actor(operator=address.strip(), channel="cli")


@recovery_app.command("open")
def recovery_open(
    email: str,
    reason: str = typer.Option(..., "--reason", help="Why, and how you will confirm who they are."),
    operator: str = typer.Option(
        ..., "--operator", help="You: your address in admin_emails, recorded as the opener."
    ),
    locale: str = typer.Option(DEFAULT_LOCALE, "--locale", help=LOCALE_HELP),
) -> None:
    """Open a recovery for an account that lost every passkey and code (audited, the
    holder is emailed); another operator approves it."""
    try:
        case = _operator_recovery("recovery open").open(
            _address(email), reason, actor=_operator(operator), locale=_locale(locale)
        )
    except OperatorCaseRefused as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"opened recovery {case.id} for {case.email}")
    typer.echo(f"another operator approves it before {case.expires_at.isoformat()}:")
    typer.echo(f"  sekisho recovery approve {case.id} --operator ADDRESS")


@recovery_app.command("approve")
def recovery_approve(
    case_id: str,
    operator: str = typer.Option(
        ...,
        "--operator",
        help="You: your address in admin_emails; not the operator who opened it, on any channel.",
    ),
    locale: str = typer.Option(DEFAULT_LOCALE, "--locale", help=LOCALE_HELP),
) -> None:
    """Approve another operator's recovery: prints the one-time code, this once."""
    try:
        approved = _operator_recovery("recovery approve").approve(
            case_id, actor=_operator(operator), locale=_locale(locale)
        )
    except OperatorCaseRefused as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"approved recovery {approved.case.id} for {approved.case.email}")
    typer.echo(f"one-time code: {approved.code}")
    typer.echo(
        f"It works once, until {approved.case.expires_at.isoformat()}, at /signin/recovery/operator."
    )
    typer.echo(
        "Give it to the holder in person or by phone after confirming who they are; "
        "never by email. It is not shown again."
    )


@recovery_app.command("cancel")
def recovery_cancel(
    case_id: str,
    reason: str = typer.Option(..., "--reason", help="Why, for example: the holder never asked."),
    operator: str = typer.Option(
        ..., "--operator", help="You: your address in admin_emails, recorded as who cancelled it."
    ),
    locale: str = typer.Option(DEFAULT_LOCALE, "--locale", help=LOCALE_HELP),
) -> None:
    """Cancel a recovery not used yet: no approval, and its code stops working."""
    try:
        case = _operator_recovery("recovery cancel").cancel(
            case_id, reason, actor=_operator(operator), locale=_locale(locale)
        )
    except OperatorCaseRefused as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"cancelled recovery {case.id} for {case.email}")


@recovery_app.command("list")
def recovery_list() -> None:
    """The newest recovery cases and their state (never a code)."""
    service = _operator_recovery("recovery list")
    now = service.now()
    cases = service.recent()
    if not cases:
        typer.echo("no recovery cases")
    for case in cases:
        approved = f" approved by {case.approved_by}" if case.approved_by else ""
        if case.cancelled_by:
            approved += f" cancelled by {case.cancelled_by}"
        typer.echo(
            f"{case.id}  {case.email}  {case.state(now)}  opened by {case.opened_by}"
            f"{approved}  until {case.expires_at.isoformat()}  reason: {case.reason}"
        )


@policy_app.command("check")
def policy_check(path: Path) -> None:
    """Validate a tiers file and explain it in words (exit 2, with the line, if broken)."""
    try:
        policy = load_policy(path)
    except PolicyError as error:
        typer.echo(f"policy error: {error}", err=True)
        raise typer.Exit(2) from error
    for line in explain(policy):
        typer.echo(line)
    deployment = _settings_if_any()
    if deployment is None:
        typer.echo("(not checked against this deployment's settings: they do not load here)")
        return
    if deployment.self_signup:
        typer.echo(explain_self_signup(policy))
    try:
        policy_for(path, attested_keys=deployment.passkey_attestation == "direct")
    except PolicyError as error:
        typer.echo(
            f"warning: with this deployment's settings, serve would refuse: {error}", err=True
        )


def _settings_if_any() -> Settings | None:
    """This deployment's settings when they load, else None (``policy check`` also runs
    where no secret key is set)."""
    try:
        return Settings()
    except (ValidationError, SettingsError):
        return None


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Refuse every sign-in for an account (its sessions stop at their next request)."""
    _set_status(email, "disabled")


@users_app.command("enable")
def users_enable(email: str) -> None:
    """Allow a disabled account to sign in again."""
    _set_status(email, "active")


@mail_app.command("status")
def mail_status() -> None:
    """Count outbox messages by status (pending, sent, dropped, failed), then
    back-channel logout tokens (logout_pending, logout_delivered, logout_dropped,
    logout_failed)."""
    database = _database(_settings())
    counts = OutboxQueue(database).counts()
    for status in ("pending", "sent", "dropped", "failed"):
        typer.echo(f"{status}\t{counts.get(status, 0)}")
    logouts = LogoutQueue(database).counts()
    for status in ("pending", "delivered", "dropped", "failed"):
        typer.echo(f"logout_{status}\t{logouts.get(status, 0)}")


@mail_app.command("worker")
def mail_worker() -> None:
    """Deliver the outbox and the back-channel logout tokens in this process only (run
    web instances with SEKISHO_MAIL_WORKER=false to keep delivery off their CPU)."""
    settings = _settings()
    keys = Keyring(settings.secret_key.get_secret_value())
    database = _database(settings, keys=keys, process="mail worker")
    logs.configure(settings.log_format)
    worker = OutboxWorker(
        settings=settings,
        database=database,
        keys=keys,
        sender=make_sender(settings, database),
        clock=utc_now,
        policy=_policy(settings),
    )
    logouts = BackchannelWorker(settings=settings, database=database, keys=keys, clock=utc_now)

    async def deliver() -> None:
        await asyncio.gather(worker.run(), logouts.run())

    heap.settle()
    typer.echo("delivering the outbox and back-channel logouts; Ctrl-C stops")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(deliver())


@migration_app.command("status")
def migration_status(
    output: str = typer.Option("text", "--format", help="text, json or csv"),
    days: int = typer.Option(30, min=1, max=366, help="Days of sign-ins to count."),
) -> None:
    """Users by migration state, sign-ins by method per day, imported users never seen."""
    if output not in ("text", "json", "csv"):
        typer.echo("--format must be text, json or csv", err=True)
        raise typer.Exit(2)
    report = migration_report(_database(_settings()), now=datetime.now(UTC), days=days)
    if output == "json":
        typer.echo(report.as_json())
        return
    if output == "csv":
        typer.echo(report.as_csv(), nl=False)
        return
    for label, value in (
        ("users", report.users),
        ("password only", report.password_only),
        ("password + passwordless", report.password_and_passwordless),
        ("passwordless only", report.passwordless_only),
        ("passkey enrolled", report.passkey_enrolled),
        ("imported", report.imported),
        ("imported, not signed in since", report.imported_never_signed_in),
    ):
        typer.echo(f"{label:<32}{value:>8}")
    totals = {method: sum(int(day[method]) for day in report.sign_ins_by_day) for method in METHODS}
    typer.echo(f"sign-ins in {days} days: " + ", ".join(f"{m} {n}" for m, n in totals.items()))
    if not report.cohorts:
        typer.echo("import cohorts: none")
        return
    typer.echo("import cohorts (moved: signed in by email or passkey, or password retired)")
    typer.echo(f"{'imported on':<16}{'accounts':>10}{'moved':>10}{'share':>8}")
    for cohort in report.cohorts:
        typer.echo(
            f"{cohort.imported_on:<16}{cohort.accounts:>10}{cohort.moved:>10}{cohort.share:>8.0%}"
        )


@key_app.command("adopt")
def key_adopt(
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Make this SEKISHO_SECRET_KEY the deployment's, after a deliberate change of key.

    Stop every process that runs with the old key first. Sessions, links and codes made
    under the old key stop working, and pending mail sealed under it is dropped."""
    settings = _settings()
    database = _database(settings, check_deployment_key=False)
    if not yes:
        typer.confirm(
            "Every session, link and code made under the old key stops working. Go on?",
            abort=True,
        )
    keys = Keyring(settings.secret_key.get_secret_value())
    dropped = adopt_key(database.engine, keys, now=datetime.now(UTC))
    typer.echo(f"key {keys.fingerprint()[:SHOWN]} adopted; {dropped} pending messages dropped")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every link of the audit chain; name the first broken one (status 1).

    Needs the deployment's SEKISHO_SECRET_KEY. The first run after the upgrade that
    added the chain seals the events written before it."""
    settings = _settings()
    keys = Keyring(settings.secret_key.get_secret_value())
    database = _database(settings, keys=keys, process="audit verify")
    verdict = audit_chain.verify_chain(database.engine, database.seal)
    if not verdict.intact:
        where = f" at event {verdict.broken_at}" if verdict.broken_at is not None else ""
        typer.echo(f"audit chain broken{where}: {verdict.reason}", err=True)
        raise typer.Exit(1)
    line = f"audit chain intact: {verdict.checked} events checked"
    if verdict.earlier_key:
        line += (
            f"; {verdict.earlier_key} events before the last `sekisho key adopt` are sealed "
            "under the earlier key and were not checked"
        )
    if verdict.refusals:
        line += f"; {verdict.refusals} refusals of processes without the key are outside the chain"
    typer.echo(line)


def _instant(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as error:
        typer.echo(f"not an ISO 8601 date or time: {raw!r}", err=True)
        raise typer.Exit(2) from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option(help="ISO 8601 date or time (UTC unless it says): events from then on."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write the audit events as JSON Lines, oldest first, with their place in the chain."""
    start = _instant(since)
    database = _database(_settings())
    with contextlib.ExitStack() as stack:
        target = (
            stack.enter_context(output.open("w", encoding="utf-8"))
            if output is not None
            else sys.stdout
        )
        for line in audit_chain.export_lines(database.engine, since=start):
            target.write(line + "\n")


@app.command("check-config")
def check_config() -> None:
    """Validate the configuration and print it, secrets hidden."""
    settings = _settings()
    for key, value in sorted(settings.model_dump().items()):
        typer.echo(f"{key} = {value}")


def main() -> None:
    app(prog_name="sekisho")


if __name__ == "__main__":
    main()
