"""Helpers for the admin tests: a key made by ``sekisho api-keys create``, and the audit
events as stored."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from sqlalchemy import text

from tests.support.cli import run_sekisho
from tests.support.server import LiveServer

KEY = re.compile(r"^key: (sk_\S+)$", re.MULTILINE)
KEY_ID = re.compile(r"^id: ([0-9a-f]{16})$", re.MULTILINE)


def create_key(
    server: LiveServer, *scopes: str, name: str = "ops tool", operator: str | None = None
) -> tuple[str, str]:
    """The id and the clear key of a new key with ``scopes``, belonging to ``operator``."""
    made = make_key(server, *scopes, name=name, operator=operator)
    assert made.returncode == 0, made.stderr
    key, identifier = KEY.search(made.stdout), KEY_ID.search(made.stdout)
    assert key is not None
    assert identifier is not None
    return identifier.group(1), key.group(1)


def make_key(
    server: LiveServer, *scopes: str, name: str, operator: str | None
) -> subprocess.CompletedProcess[str]:
    """``sekisho api-keys create`` with the server's ``admin_emails``."""
    flags = [part for scope in scopes for part in ("--scope", scope)]
    if operator is not None:
        flags += ["--operator", operator]
    return run_sekisho(
        server.settings.database_url,
        "api-keys",
        "create",
        "--name",
        name,
        *flags,
        SEKISHO_ADMIN_EMAILS=json.dumps(server.settings.admin_emails),
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def audit_events(server: LiveServer, prefix: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(event, outcome, ip, detail) of every stored audit event whose name starts so."""
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT event, outcome, ip, detail FROM audit_events ORDER BY id")
        ).all()
    return [
        (row[0], row[1], row[2], json.loads(row[3])) for row in rows if row[0].startswith(prefix)
    ]
