"""``sekisho api-keys ...``: keys for the admin API (issue 9 "Clients", issue 10
"Operators"). A key is printed once, when it is made; only its keyed hash is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from sekisho.admin.api_keys import ApiKeyService
from sekisho.core.api_keys import OPERATOR_SCOPES, SCOPES, ApiKeyRefused
from sekisho.core.keys import Keyring
from sekisho.service import utc_now
from sekisho.store.database import Database

OpenDatabase = Callable[[], tuple[Database, Keyring]]
#: The deployment's operators: ``admin_emails``, normalised.
Operators = Callable[[], frozenset[str]]


def install(app: typer.Typer, open_database: OpenDatabase, known_operators: Operators) -> None:
    keys_app = typer.Typer(help="API keys for the admin API.", no_args_is_help=True)
    app.add_typer(keys_app, name="api-keys")

    def service() -> ApiKeyService:
        database, keyring = open_database()
        return ApiKeyService(database=database, keys=keyring, clock=utc_now)

    @keys_app.command("create")
    def api_keys_create(
        name: Annotated[str, typer.Option(help="What the key is for (shown in the list).")],
        scope: Annotated[
            list[str], typer.Option(help=f"A scope (repeat for more): {', '.join(SCOPES)}.")
        ],
        operator: Annotated[
            str | None,
            typer.Option(
                help="The operator the key belongs to, an address in admin_emails; "
                f"required for {' and '.join(OPERATOR_SCOPES)}."
            ),
        ] = None,
    ) -> None:
        """Make a key (audited). It is printed once: store it in the tool that uses it."""
        try:
            made = service().create(
                name=name, scopes=scope, operator=operator, operators=known_operators()
            )
        except ApiKeyRefused as error:
            typer.echo(f"refused: {error}", err=True)
            raise typer.Exit(2) from error
        typer.echo(f"id: {made.record.id}")
        typer.echo(f"key: {made.key}")
        typer.echo("The key is shown only now; Sekisho keeps only a keyed hash of it.")

    @keys_app.command("list")
    def api_keys_list() -> None:
        """Every key: id, state, scopes, last use, name (never the key)."""
        for key in service().all():
            state = "revoked" if key.revoked_at else "active"
            used = key.last_used_at.isoformat() if key.last_used_at else "never used"
            owner = key.operator or "no operator"
            typer.echo(f"{key.id}  {state:7}  {' '.join(key.scopes)}  {used}  {owner}  {key.name}")

    @keys_app.command("revoke")
    def api_keys_revoke(key_id: str) -> None:
        """Revoke a key (audited); it stops working at once."""
        if not service().revoke(key_id):
            typer.echo(f"no active key {key_id}", err=True)
            raise typer.Exit(1)
        typer.echo(f"revoked {key_id}")
