"""A PostgreSQL server of the test's own, for tests that stop and restart it: a cluster
made with Debian's ``initdb`` in a temporary folder and run with ``pg_ctl`` on a free
port (as the ``postgres`` user when the tests run as root, since PostgreSQL refuses to
run as root). The machine's PostgreSQL on 5432 is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.support.ports import free_port

VERSIONS = Path("/usr/lib/postgresql")


def _binaries() -> Path:
    found = sorted(VERSIONS.glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    assert found, "PostgreSQL's server binaries are missing: install Debian's postgresql"
    return found[-1].parent


class PostgresCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="sekisho-pg-"))
        self._data = self.folder / "data"
        self._bin = _binaries()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.folder, user="postgres", group="postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> PostgresCluster:
        """initdb (trust authentication, no fsync: a test's data need not survive the
        machine), start, and create the database ``sekisho``."""
        self._run(
            "initdb", "-D", str(self._data), "--auth=trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        self.start()
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as admin:
            admin.execute("CREATE DATABASE sekisho")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self._data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop at once (``-m fast``): open transactions are rolled back and every
        connection is closed, as in a restart of the server or of its machine."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{program} failed: {done.stdout}{done.stderr}"
