"""SQLAlchemy storage implementing :mod:`sekisho.core.ports` on SQLite and PostgreSQL."""
