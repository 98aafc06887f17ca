"""The statements an engine's DB-API connections run, as the driver sees them: those run
through SQLAlchemy and the prepared ones it runs on the driver itself
(``store/prepared.py``), which SQLAlchemy's statement events never see.

SQLite reports each execution through ``set_trace_callback`` (so an ``executemany`` of
two rows is two entries, and statements SQLAlchemy never sends, such as ``BEGIN``, are
seen too); psycopg through a cursor class that records each ``execute``."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import Engine, event


def driver_statements(engine: Engine, *, naming: tuple[str, ...] = ()) -> list[str]:
    """Every statement ``engine``'s connections run from now on (only those that name
    one of ``naming``, when given), whitespace collapsed; connections already in the
    pool are hooked when next checked out."""
    statements: list[str] = []

    def keep(statement: str) -> None:
        if statement.startswith("--"):  # SQLite's trigger sub-programs
            return
        if not naming or any(name in statement for name in naming):
            statements.append(" ".join(statement.split()))

    class Recording(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            keep(str(query))
            return super().execute(query, *args, **kwargs)

    def hook(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(keep)
        else:
            dbapi_connection.cursor_factory = Recording

    event.listen(engine, "checkout", hook)
    return statements
