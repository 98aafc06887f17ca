"""Statements of the hot paths, compiled once per dialect and run on the driver's cursor.

A :class:`Prepared` wraps a SQLAlchemy Core statement built once at import. On its first
use with a dialect it compiles the statement with SQLAlchemy's own compiler, and keeps
the SQL text, the order of its parameters and SQLAlchemy's own bind and result
processors for each of them (``TypeEngine.bind_processor``/``result_processor`` of the
dialect's implementation of each type: the text format of ``DateTime`` on SQLite, the
integers of ``Boolean``, the zone ``UTCDateTime`` adds). Each call then binds the
values, runs the text on the DB-API connection of the caller's own SQLAlchemy
connection and processes the row, skipping SQLAlchemy's per-execution work (execution
context, parameter construction, result objects, events): a row written here reads the
same through ``Connection.execute`` and the reverse.

It runs in the caller's transaction: the same connection, so the same ``BEGIN
IMMEDIATE`` and writer lock on SQLite and the same transaction on PostgreSQL; a
connection not yet in a transaction begins one, as ``Connection.execute`` would. Driver
errors are raised as SQLAlchemy's (``DBAPIError.instance``), as ``Connection.execute``
raises them, and a lost connection is invalidated.

Statement events (``before_cursor_execute``) do not see these statements. Statements
with expanding ``IN`` parameters or Python-side defaults other than constants are
refused when first compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any] | None
_REQUIRED = object()


class _Compiled:
    """One statement's text and processors for one dialect."""

    __slots__ = ("binds", "fixed", "keys", "names", "positional", "results", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = cast(
            SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys) or None)
        )
        fixed: dict[str, Any] = {}
        processors: dict[str, Processor] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding or bind.callable is not None:
                raise ValueError(f"{name}: expanding or callable parameters are not prepared")
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            processors[name] = process
            if not bind.required:
                fixed[name] = process(bind.value) if process else bind.value
        for column in getattr(compiled, "insert_prefetch", ()):
            default = column.default
            if default is None or not default.is_scalar:
                raise ValueError(f"{column.key}: only constant Python-side defaults are prepared")
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            fixed[column.key] = process(default.arg) if process else default.arg
        escaped = compiled.escaped_bind_names
        self.sql = compiled.string
        self.positional = dialect.positional
        order = compiled.positiontup if dialect.positional else list(processors)
        assert order is not None
        self.names = tuple(order)
        self.fixed = fixed
        #: (name as sent, name as given, processor) of each parameter still to bind
        self.binds = tuple(
            (escaped.get(name, name), name, processors.get(name))
            for name in dict.fromkeys(order)
            if name not in fixed
        )
        columns = statement.exported_columns if hasattr(statement, "exported_columns") else ()
        self.keys = tuple(columns.keys()) if columns else ()
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        self.results: tuple[Processor, ...] | None = (
            results if any(process is not None for process in results) else None
        )

    def parameters(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = dict(self.fixed)
        for _, name, process in self.binds:
            value = given[name]
            values[name] = process(value) if process is not None else value
        if self.positional:
            return [values[name] for name in self.names]
        return values

    def row(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if self.results is None:
            return tuple(row)
        return tuple(
            process(value) if process is not None else value
            for process, value in zip(self.results, row, strict=True)
        )


class Prepared:
    """A statement compiled once per dialect and run on the caller's DB-API connection.
    ``keys`` are the columns an ``INSERT`` sets (its parameters' names)."""

    __slots__ = ("_compiled", "_keys", "statement")

    def __init__(self, statement: ClauseElement, *, keys: Sequence[str] = ()) -> None:
        if isinstance(statement, Insert) and not keys:
            raise ValueError("an INSERT is prepared for the columns it sets: give keys")
        self.statement = statement
        self._keys = tuple(keys)
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.statement, dialect, self._keys)
        return compiled

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> None:
        """Execute; any rows are left unread."""
        self._cursor(connection, parameters)[1].close()

    def count(self, connection: Connection, parameters: Mapping[str, Any]) -> int:
        """Execute; the number of rows it matched (the driver's ``rowcount``, as
        ``CursorResult.rowcount``), for a compare-and-set without ``RETURNING``."""
        cursor = self._cursor(connection, parameters)[1]
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per row, in order, with the driver's ``executemany`` (as
        ``Connection.execute`` with a list of rows does without insertmanyvalues)."""
        if not rows:
            return
        compiled = self._for(connection.dialect)
        _autobegin(connection)
        parameters = [compiled.parameters(row) for row in rows]
        run_on_driver(connection, compiled.sql, parameters, many=True).close()

    def first(
        self, connection: Connection, parameters: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row, its values processed as SQLAlchemy would, or None. The cursor
        is closed after it, as ``Result.first`` does (on SQLite an unfinished
        ``UPDATE ... RETURNING`` would otherwise keep its statement open)."""
        compiled, cursor = self._cursor(connection, parameters)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else compiled.row(row)

    def mapping(
        self, connection: Connection, parameters: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The first row by column name, or None."""
        compiled = self._for(connection.dialect)
        row = self.first(connection, parameters)
        return None if row is None else dict(zip(compiled.keys, row, strict=True))

    def all(self, connection: Connection, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        compiled, cursor = self._cursor(connection, parameters)
        try:
            return [compiled.row(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _cursor(
        self, connection: Connection, parameters: Mapping[str, Any]
    ) -> tuple[_Compiled, Any]:
        compiled = self._for(connection.dialect)
        _autobegin(connection)
        return compiled, run_on_driver(connection, compiled.sql, compiled.parameters(parameters))


def _autobegin(connection: Connection) -> None:
    """What ``Connection.execute`` does on a connection outside a transaction."""
    if not connection.in_transaction():
        connection.begin()


def run_on_driver(
    connection: Connection,
    sql: str,
    parameters: Sequence[Any] | Mapping[str, Any] = (),
    *,
    many: bool = False,
) -> Any:
    """Run ``sql`` on the DB-API connection under ``connection`` (once per set of
    ``parameters`` when ``many``) and return the driver's cursor; a driver error is
    raised as SQLAlchemy raises it, and a lost connection is invalidated."""
    dialect = connection.dialect
    driver: Any = connection.connection.driver_connection
    try:
        if not many:
            return driver.execute(sql, parameters)
        cursor = driver.cursor()
        cursor.executemany(sql, parameters)
        return cursor
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, driver, None)
        if lost:
            connection.invalidate(error)
        raise exc.DBAPIError.instance(
            sql,
            parameters,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from error
