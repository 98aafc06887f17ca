"""``sekisho keys ...`` (signing keys) and ``sekisho clients ...`` (relying parties).

A client secret is printed once, when it is made; only its keyed hash is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from sekisho.core.keys import Keyring
from sekisho.oidc import clients, signing_keys
from sekisho.oidc.client_admin import ClientAdmin, ClientExists, ClientSettings, describe
from sekisho.oidc.metadata_fetch import MetadataFetcher
from sekisho.store.database import Database
from sekisho.store.oidc import SqlOidc

OpenDatabase = Callable[[], tuple[Database, Keyring]]
OpenFetcher = Callable[[], MetadataFetcher]


def _now() -> datetime:
    return datetime.now(UTC)


def _parsed_jwks(jwks: str | None) -> object:
    """``--jwks`` as JSON (None when not given); a refusal exits with status 2."""
    if jwks is None:
        return None
    try:
        return json.loads(jwks)
    except ValueError as error:
        typer.echo(f"refused: --jwks is not JSON: {error}", err=True)
        raise typer.Exit(2) from error


def _listed(values: list[str] | None) -> tuple[str, ...] | None:
    """A repeated option's values, None when not given; a single "" empties the list."""
    if values is None:
        return None
    return tuple(value for value in values if value)


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def install(app: typer.Typer, open_database: OpenDatabase, open_fetcher: OpenFetcher) -> None:
    keys_app = typer.Typer(help="OpenID Connect signing keys.", no_args_is_help=True)
    clients_app = typer.Typer(
        help="OpenID Connect clients (relying parties).", no_args_is_help=True
    )
    app.add_typer(keys_app, name="keys")
    app.add_typer(clients_app, name="clients")

    def client_admin() -> ClientAdmin:
        database, keyring = open_database()
        return ClientAdmin(database, keyring, open_fetcher())

    @keys_app.command("list")
    def keys_list() -> None:
        """Every signing key: kid, algorithm, state (published, signing, retired) and times."""
        database, _keyring = open_database()
        now = _now()
        with database.reading() as repos:
            found = SqlOidc(repos.connection).signing_keys()
        for key in found:
            until = key.published_until.isoformat() if key.published_until else "-"
            typer.echo(
                f"{key.kid}  {key.alg}  {key.state(now):9}  signs from {key.signs_from.isoformat()}"
                f"  published until {until}"
            )

    @keys_app.command("rotate")
    def keys_rotate(
        delay: int = typer.Option(
            3600,
            help="Seconds the new key is published before it signs (relying parties' JWKS caches).",
            min=0,
        ),
        alg: Annotated[
            list[str] | None,
            typer.Option(help="ES256, RS256 or PS256 (repeat for more; default: all three)."),
        ] = None,
    ) -> None:
        """Publish a new key now for each algorithm; it signs after DELAY, when that
        algorithm's current key retires. The retired key stays in the JWKS until the
        longest-lived token it signed expires."""
        chosen = list(dict.fromkeys(alg or signing_keys.ALGORITHMS))
        unknown = [name for name in chosen if name not in signing_keys.ALGORITHMS]
        if unknown:
            typer.echo(
                f"refused: unknown algorithm {', '.join(unknown)}"
                f" (one of {', '.join(signing_keys.ALGORITHMS)})",
                err=True,
            )
            raise typer.Exit(2)
        database, keyring = open_database()
        now = _now()
        with database.transaction() as repos:
            store = SqlOidc(repos.connection)
            longest = max(
                (
                    max(client.id_token_lifetime, client.access_token_lifetime)
                    for client in store.clients()
                ),
                default=clients.MAX_TOKEN_LIFETIME,
            )
            store.drop_unpublished_keys(now=now)
            rotations = [
                signing_keys.rotate(
                    store,
                    keyring,
                    now=now,
                    delay=timedelta(seconds=delay),
                    token_lifetime=longest,
                    alg=name,
                )
                for name in chosen
            ]
        for rotation in rotations:
            typer.echo(
                f"new {rotation.new.alg} key {rotation.new.kid} published;"
                f" signs from {rotation.new.signs_from.isoformat()}"
            )
            for kid in rotation.retired:
                typer.echo(
                    f"key {kid} retires then;"
                    f" published until {rotation.published_until.isoformat()}"
                )

    @clients_app.command("add")
    def clients_add(
        name: Annotated[
            str, typer.Option(help="The application's name, shown on the consent page.")
        ],
        redirect_uri: Annotated[list[str], typer.Option(help="A redirect URI (repeat for more).")],
        post_logout_redirect_uri: Annotated[
            list[str] | None, typer.Option(help="A post-logout redirect URI.")
        ] = None,
        auth_method: str = typer.Option(
            "client_secret_basic",
            help="client_secret_basic, client_secret_post, private_key_jwt (with --jwks or"
            " --jwks-uri), or none (public client, PKCE).",
        ),
        application_type: str = typer.Option("web", help="web or native."),
        first_party: bool = typer.Option(False, help="Skip the consent page (your own apps)."),
        scope: Annotated[
            list[str] | None, typer.Option(help="An allowed scope (default: openid, email).")
        ] = None,
        id_token_lifetime: int = typer.Option(600, help="ID token lifetime in seconds."),
        access_token_lifetime: int = typer.Option(300, help="Access token lifetime in seconds."),
        client_id: str = typer.Option(None, help="A client id of your choice (default: random)."),
        jwks: str = typer.Option(
            None,
            help="private_key_jwt: the client's public keys, a JWK Set as inline JSON.",
        ),
        jwks_uri: str = typer.Option(
            None,
            help="private_key_jwt: where the client publishes its JWK Set (https), instead"
            " of --jwks.",
        ),
        require_par: bool = typer.Option(
            False, help="Accept only pushed authorization requests (RFC 9126) from it."
        ),
        id_token_alg: str = typer.Option("ES256", help="ID token signature: ES256, RS256, PS256."),
        backchannel_logout_uri: str = typer.Option(
            None, help="Where Sekisho posts logout tokens when a session ends (https)."
        ),
        backchannel_logout_session_required: bool = typer.Option(
            False, help="The client needs sid in logout tokens (Sekisho always sends it)."
        ),
        subject_type: str = typer.Option(
            "public",
            help="public (the user id) or pairwise (per sector: the redirect URIs' host, or"
            " the host of --sector-identifier-uri).",
        ),
        sector_identifier_uri: str = typer.Option(
            None,
            help="pairwise: an https URI serving a JSON array of the client's redirect URIs;"
            " its host becomes the sector (checked now).",
        ),
        introspects: Annotated[
            list[str] | None,
            typer.Option(
                help="A client whose access tokens this one, a resource server, may"
                " introspect (repeat for more; default: only its own tokens)."
            ),
        ] = None,
    ) -> None:
        """Register a client. Its secret is printed once: store it in the application."""
        registered_jwks = _parsed_jwks(jwks)
        settings = ClientSettings(
            name=name,
            redirect_uris=redirect_uri,
            post_logout_redirect_uris=post_logout_redirect_uri or [],
            auth_method=auth_method,
            application_type=application_type,
            first_party=first_party,
            scopes=tuple(scope or ["openid", "email"]),
            id_token_lifetime=timedelta(seconds=id_token_lifetime),
            access_token_lifetime=timedelta(seconds=access_token_lifetime),
            client_id=client_id,
            jwks=registered_jwks,
            jwks_uri=jwks_uri,
            require_par=require_par,
            id_token_alg=id_token_alg,
            backchannel_logout_uri=backchannel_logout_uri,
            backchannel_logout_session_required=backchannel_logout_session_required,
            subject_type=subject_type,
            sector_identifier_uri=sector_identifier_uri,
            introspects=tuple(introspects or ()),
        )
        try:
            made = client_admin().add(settings, now=_now(), actor="cli")
        except ClientExists as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from error
        except clients.RegistrationError as error:
            typer.echo(f"refused: {error}", err=True)
            raise typer.Exit(2) from error
        typer.echo(f"client_id: {made.client.id}")
        if made.secret is not None:
            typer.echo(f"client_secret: {made.secret}")
            typer.echo("The secret is shown only now; Sekisho keeps only a keyed hash of it.")

    @clients_app.command("list")
    def clients_list() -> None:
        """Every client: id, auth method, first-party flag, name."""
        for client in client_admin().all():
            party = "first-party" if client.first_party else "third-party"
            typer.echo(f"{client.id}  {client.auth_method}  {party}  {client.name}")

    @clients_app.command("show")
    def clients_show(client_id: str) -> None:
        """One client's settings as JSON (never its secret)."""
        client = client_admin().one(client_id)
        if client is None:
            typer.echo(f"no client {client_id}", err=True)
            raise typer.Exit(1)
        typer.echo(json.dumps(describe(client), indent=2, ensure_ascii=False))

    @clients_app.command("update")
    def clients_update(
        client_id: str,
        name: Annotated[str | None, typer.Option(help="A new name.")] = None,
        redirect_uri: Annotated[
            list[str] | None,
            typer.Option(help="The redirect URIs from now on (repeat; replaces them all)."),
        ] = None,
        post_logout_redirect_uri: Annotated[
            list[str] | None,
            typer.Option(help='The post-logout redirect URIs from now on ("" for none).'),
        ] = None,
        backchannel_logout_uri: Annotated[
            str | None, typer.Option(help='Where logout tokens are posted ("" for nowhere).')
        ] = None,
        backchannel_logout_session_required: Annotated[
            bool | None, typer.Option(help="The client needs sid in logout tokens.")
        ] = None,
        first_party: Annotated[
            bool | None,
            typer.Option("--first-party/--third-party", help="Skip the consent page or not."),
        ] = None,
        scope: Annotated[
            list[str] | None, typer.Option(help="The allowed scopes from now on (repeat).")
        ] = None,
        require_par: Annotated[
            bool | None, typer.Option(help="Accept only pushed authorization requests.")
        ] = None,
        id_token_lifetime: Annotated[
            int | None, typer.Option(help="ID token lifetime in seconds.")
        ] = None,
        access_token_lifetime: Annotated[
            int | None, typer.Option(help="Access token lifetime in seconds.")
        ] = None,
        id_token_alg: Annotated[
            str | None, typer.Option(help="ID token signature: ES256, RS256, PS256.")
        ] = None,
        introspects: Annotated[
            list[str] | None,
            typer.Option(
                help='The clients whose access tokens it may introspect from now on ("" for none).'
            ),
        ] = None,
    ) -> None:
        """Change a client's settings, checked as by add; what is not given stays. The
        subject type cannot change (every sub would): register a new client instead."""
        given: dict[str, object | None] = {
            "name": name,
            "redirect_uris": _listed(redirect_uri),
            "post_logout_redirect_uris": _listed(post_logout_redirect_uri),
            "backchannel_logout_uri": backchannel_logout_uri,
            "backchannel_logout_session_required": backchannel_logout_session_required,
            "first_party": first_party,
            "scopes": _listed(scope),
            "require_par": require_par,
            "id_token_lifetime": _seconds(id_token_lifetime),
            "access_token_lifetime": _seconds(access_token_lifetime),
            "id_token_alg": id_token_alg,
            "introspects": _listed(introspects),
        }
        changes = {field: value for field, value in given.items() if value is not None}
        if changes.get("backchannel_logout_uri") == "":
            changes["backchannel_logout_uri"] = None
        try:
            updated = client_admin().update(client_id, changes, now=_now(), actor="cli")
        except clients.RegistrationError as error:
            typer.echo(f"refused: {error}", err=True)
            raise typer.Exit(2) from error
        if updated is None:
            typer.echo(f"no client {client_id}", err=True)
            raise typer.Exit(1)
        typer.echo(json.dumps(describe(updated), indent=2, ensure_ascii=False))

    @clients_app.command("rotate-secret")
    def clients_rotate_secret(client_id: str) -> None:
        """A new secret for a confidential client; the old one stops working at once."""
        secret = client_admin().rotate_secret(client_id, now=_now(), actor="cli")
        if secret is None:
            typer.echo(f"no confidential client {client_id}", err=True)
            raise typer.Exit(1)
        typer.echo(f"client_secret: {secret}")
        typer.echo("The secret is shown only now; Sekisho keeps only a keyed hash of it.")

    @clients_app.command("set-jwks")
    def clients_set_jwks(
        client_id: str,
        jwks: Annotated[
            str | None, typer.Option(help="The new public keys: a JWK Set as inline JSON.")
        ] = None,
        jwks_uri: Annotated[
            str | None,
            typer.Option(help="Or where the client publishes its JWK Set (https) from now on."),
        ] = None,
    ) -> None:
        """Replace a private_key_jwt client's public keys, by --jwks or --jwks-uri (keep
        the old key in the set until the client signs with the new one)."""
        keys = _parsed_jwks(jwks)
        try:
            done = client_admin().set_jwks(
                client_id, jwks=keys, jwks_uri=jwks_uri, now=_now(), actor="cli"
            )
        except clients.RegistrationError as error:
            typer.echo(f"refused: {error}", err=True)
            raise typer.Exit(2) from error
        if not done:
            typer.echo(f"no private_key_jwt client {client_id}", err=True)
            raise typer.Exit(1)
        typer.echo(f"replaced the keys of {client_id}")

    @clients_app.command("remove")
    def clients_remove(client_id: str) -> None:
        """Remove a client; every token it holds stops working at once."""
        if not client_admin().remove(client_id, now=_now(), actor="cli"):
            typer.echo(f"no client {client_id}", err=True)
            raise typer.Exit(1)
        typer.echo(f"removed {client_id}")
