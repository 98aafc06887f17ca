"""The one Alembic history matches tables.py on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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


def test_instances_starting_together_migrate_once(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        engines = [make_engine(url) for _ in range(3)]
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(upgrade, engines))
        with engines[0].connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        for engine in engines:
            engine.dispose()
    assert differences == []
