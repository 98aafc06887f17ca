"""The Node.js relying party of examples/node (panva's openid-client) as a real
process. Node is required: a machine without it fails these tests, never skips them.
The packages come from examples/node/package-lock.json through ``npm ci`` (scripts/test
runs it too; here it runs when node_modules is missing or older than the lock file)."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import ServeOutput
from tests.support.oidc import Registered, register_client
from tests.support.ports import free_port
from tests.support.server import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
INSTALLED = EXAMPLE / "node_modules" / ".package-lock.json"


def node() -> str:
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        pytest.fail("Node.js 20 and npm are required for the openid-client tests: install nodejs")
    return found


def install() -> None:
    """``npm ci`` from the committed lock file, unless it is already installed."""
    lock = EXAMPLE / "package-lock.json"
    if INSTALLED.exists() and INSTALLED.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def node_relying_party(
    *, issuer: str, client_id: str, client_secret: str, port: int, par: bool = False
) -> Iterator[str]:
    """examples/node/app.mjs on 127.0.0.1:PORT, once discovery worked and it listens;
    yields its origin. With ``par`` it pushes every authorization request (PAR)."""
    executable = node()
    install()
    origin = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "NODE_RP_ISSUER": issuer,
        "NODE_RP_CLIENT_ID": client_id,
        "NODE_RP_CLIENT_SECRET": client_secret,
        "NODE_RP_ORIGIN": origin,
        "NODE_RP_PORT": str(port),
        "NODE_RP_ALLOW_HTTP": "1",
        "NODE_RP_PAR": "1" if par else "0",
    }
    process = subprocess.Popen(
        [executable, "app.mjs"],
        cwd=EXAMPLE,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = ServeOutput(process)
        try:
            output.wait_for("listening on", timeout=60)
        except queue.Empty:
            process.kill()
            lines = "".join(output.lines)
            raise AssertionError(f"the Node relying party did not start:\n{lines}") from None
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def node_app(
    server: LiveServer, *, par: bool = False, **client: Any
) -> Iterator[tuple[Registered, str]]:
    """A client registered on ``server`` (``client``: more of its settings) whose one
    redirect URI is the Node app's callback, and that app running for it; yields the
    registration and the app's origin."""
    port = free_port()
    registered = register_client(
        server, redirect_uris=(f"http://127.0.0.1:{port}/callback",), **client
    )
    assert registered.secret is not None
    with node_relying_party(
        issuer=server.settings.public_origin,
        client_id=registered.client_id,
        client_secret=registered.secret,
        port=port,
        par=par,
    ) as origin:
        yield registered, origin
