"""Running the Alembic migrations shipped inside the package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x5E_C15_0  # any constant shared by every Sekisho instance


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (idempotent; safe on every start).

    On PostgreSQL a transaction-level advisory lock makes instances that start
    together migrate one after the other; SQLite's BEGIN IMMEDIATE already does.
    """
    config = alembic_config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where the database stands against the migrations this version of Sekisho ships."""

    current: frozenset[str]
    shipped_heads: frozenset[str]
    shipped: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.current

    @property
    def up_to_date(self) -> bool:
        return self.current == self.shipped_heads

    @property
    def newer(self) -> bool:
        """Migrated by a newer Sekisho: a revision this version does not know."""
        return not self.current <= self.shipped


def schema_state(engine: Engine) -> SchemaState:
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return SchemaState(
        current=frozenset(current),
        shipped_heads=frozenset(scripts.get_heads()),
        shipped=frozenset(script.revision for script in scripts.walk_revisions()),
    )


def autogenerate(engine: Engine, message: str) -> None:
    """Write a new revision from the difference between tables.py and the database."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
