"""Running the ``sekisho`` command as a real process against a test database."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.server import SECRET_KEY


def run_sekisho(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    environment["SEKISHO_DATABASE_URL"] = database_url
    environment["SEKISHO_SECRET_KEY"] = SECRET_KEY
    return subprocess.run(
        [sys.executable, "-m", "sekisho", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
