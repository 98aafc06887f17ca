"""``create_app``: apps assembled on several threads at once are assembled cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI

from sekisho.app import create_app
from tests.support.server import settings_for


def test_apps_assembled_together_leave_no_warning_behind(tmp_path: Path) -> None:
    """FastAPI prepares a route's fields inside ``warnings.catch_warnings``, which swaps
    the process-wide filters: two assemblies at once let FastAPI's own
    ``UnsupportedFieldAttributeWarning`` out, which pytest's ``error`` filter raises
    (three in-process servers starting together failed that way in CI)."""
    failures: list[BaseException] = []
    apps: list[FastAPI] = []
    start = threading.Barrier(4)

    def assemble(name: str) -> None:
        start.wait()
        try:
            apps.append(
                create_app(
                    settings_for(f"sqlite:///{tmp_path}/{name}.db", 1, 8000, mail_worker=False)
                )
            )
        except BaseException as error:
            failures.append(error)

    for round_ in range(5):
        threads = [threading.Thread(target=assemble, args=(f"{round_}-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures
    assert len(apps) == 20
