"""Running the ``sekisho`` command as a real process: one-shot commands, and ``serve``
read line by line. Every process gets the test servers' secret key unless a test says
otherwise (``secret_key=None`` runs with none at all), since every command checks that
its key is the deployment's."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import SECRET_KEY


def sekisho_environment(
    database_url: str | None = None, *, secret_key: str | None = SECRET_KEY, **env: str
) -> dict[str, str]:
    """This process's environment without any SEKISHO_* variable, then the database, the
    key and ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    if database_url is not None:
        environment["SEKISHO_DATABASE_URL"] = database_url
    if secret_key is not None:
        environment["SEKISHO_SECRET_KEY"] = secret_key
    environment.update(env)
    return environment


def run_sekisho(
    database_url: str | None,
    *args: str,
    secret_key: str | None = SECRET_KEY,
    cwd: Path | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sekisho", *args],
        capture_output=True,
        text=True,
        env=sekisho_environment(database_url, secret_key=secret_key, **env),
        cwd=cwd,
        timeout=120,
        check=False,
    )


class ServeOutput:
    """The console of a running ``sekisho serve``, read by a thread as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._incoming: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        for line in process.stdout or ():
            self._incoming.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Every line so far, once one of them holds ``text``."""
        while not any(text in line for line in self.lines):
            self.lines.append(self._incoming.get(timeout=timeout))
        return "".join(self.lines)


@contextmanager
def running(cwd: Path, *args: str, ready: str, **env: str) -> Iterator[ServeOutput]:
    """``sekisho ARGS`` as a long-running process in ``cwd``, once it has printed a line
    holding ``ready``; stopped (SIGTERM) at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sekisho", *args],
        cwd=cwd,
        env=sekisho_environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = ServeOutput(process)
        output.wait_for(ready)
        yield output
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def serving(cwd: Path, port: int, **env: str) -> Iterator[ServeOutput]:
    """``sekisho serve --port PORT`` in ``cwd`` (its default database is ./var there),
    ready once it has printed where to open it; stopped at the end."""
    with running(cwd, "serve", "--port", str(port), ready="/signin", **env) as output:
        yield output
