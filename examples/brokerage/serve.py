"""Start Sekisho (development mode, SQLite, the development mailbox) and the brokerage
example together, with the example registered as a first-party client.

    .venv/bin/python examples/brokerage/serve.py

Sekisho: http://localhost:8000 (mail at /dev/mailbox); the example:
http://localhost:8100 (``PORT`` and ``BROKERAGE_PORT`` choose others). Ctrl-C stops
both. The database is var/brokerage.db (``SEKISHO_DATABASE_URL`` chooses another); each start
gives the client a new secret (``sekisho clients rotate-secret``), since Sekisho shows a
secret only once.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

CLIENT_ID = "brokerage"


def sekisho(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sekisho", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def client_secret(env: dict[str, str], origin: str) -> str:
    """Register the example once; on later starts, rotate its secret to learn one. Its
    second redirect URI is where Sekisho's confirmation page sends the person back."""
    made = sekisho(
        "clients",
        "add",
        "--name",
        "Brokerage (example)",
        "--redirect-uri",
        f"{origin}/callback",
        "--redirect-uri",
        f"{origin}/withdrawals/confirmed",
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "email",
        "--scope",
        "profile",
        "--client-id",
        CLIENT_ID,
        env=env,
    )
    if made.returncode != 0:
        made = sekisho("clients", "rotate-secret", CLIENT_ID, env=env)
    for line in made.stdout.splitlines():
        if line.startswith("client_secret: "):
            return line.removeprefix("client_secret: ")
    raise SystemExit(f"could not register the example client:\n{made.stdout}{made.stderr}")


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    sekisho_port = int(os.environ.get("PORT", "8000"))
    example_port = int(os.environ.get("BROKERAGE_PORT", "8100"))
    issuer = f"http://localhost:{sekisho_port}"
    origin = f"http://localhost:{example_port}"
    (root / "var").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "SEKISHO_MODE": "development",
        "SEKISHO_SELF_SIGNUP": "true",
        "SEKISHO_MAIL_BACKEND": "devmailbox",
        "SEKISHO_PUBLIC_ORIGIN": issuer,
        "SEKISHO_DATABASE_URL": os.environ.get(
            "SEKISHO_DATABASE_URL", f"sqlite:///{root / 'var' / 'brokerage.db'}"
        ),
        "SEKISHO_POLICY_FILE": str(Path(__file__).with_name("policy.toml")),
    }
    upgraded = sekisho("db", "upgrade", env=env)
    if upgraded.returncode != 0:
        raise SystemExit(upgraded.stdout + upgraded.stderr)
    secret = client_secret(env, origin)
    server = subprocess.Popen(  # Sekisho runs beside the example until Ctrl-C
        [sys.executable, "-m", "sekisho", "serve", "--port", str(sekisho_port)], env=env
    )
    example_env = {
        **os.environ,
        "BROKERAGE_ISSUER": issuer,
        "BROKERAGE_CLIENT_ID": CLIENT_ID,
        "BROKERAGE_CLIENT_SECRET": secret,
        "BROKERAGE_ORIGIN": origin,
        "BROKERAGE_PORT": str(example_port),
        "BROKERAGE_SESSION_KEY": secrets.token_urlsafe(32),
        "PYTHONPATH": str(root),
    }
    print(f"Sekisho: {issuer}  (mail: {issuer}/dev/mailbox)\nExample: {origin}", flush=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "examples.brokerage.app"], env=example_env, check=False
        )
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
