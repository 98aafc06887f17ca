"""The one Alembic history matches tables.py on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sekisho.store.database import make_engine
from sekisho.store.migrate import upgrade
from sekisho.store.tables import metadata
from tests.support.server import fresh_database


def test_migrations_match_the_tables(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        engine.dispose()
    assert differences == []
