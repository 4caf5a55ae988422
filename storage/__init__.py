"""Persistence behind one small contract.

The contract lives in ``storage.contract`` and the typed records in
``storage.records``; this package re-exports the names the rest of the code
uses and picks a backend. Three backends implement the contract: the in-memory
one (tests, benches), the TinyDB one (the embedded default) and the PostgreSQL
one (``storage.postgres_store``, for several processes sharing one database).

``SENDOFF_DB`` names either: a path is a TinyDB file, a ``postgresql://``,
``postgres://`` or ``postgresql+asyncpg://`` URL a PostgreSQL database. The
helpers that read such a URL (``storage.contract``) import no SQLAlchemy, so
that settings and the console start as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from storage.contract import (
    DEPARTURES,
    EVENTS,
    INDEXED,
    LOOKUP,
    POSTGRES_SCHEMES,
    SCHEMA_VERSION,
    TABLES,
    TOUCHES,
    UNIQUE,
    Equal,
    Predicate,
    Record,
    Store,
    StoreCorruptError,
    StoreError,
    database_url,
    mask_url,
)
from storage.memory_store import MemoryStore
from storage.tinydb_store import TinyDBStore

if TYPE_CHECKING:
    from storage.postgres_store import PostgresStore

__all__ = [
    "DEPARTURES",
    "EVENTS",
    "INDEXED",
    "LOOKUP",
    "POSTGRES_SCHEMES",
    "SCHEMA_VERSION",
    "TABLES",
    "TOUCHES",
    "UNIQUE",
    "Equal",
    "Predicate",
    "Record",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "database_url",
    "mask_url",
    "open_store",
]


def open_store(location: str | Path | None) -> Store:
    """The store ``location`` names: a PostgreSQL URL (a ``str``, see ``database_url``), the TinyDB file
    at a path, or an in-memory one when ``location`` is None."""
    if location is None:
        return MemoryStore()
    if isinstance(location, str) and database_url(location) is not None:
        return open_postgres(location)
    return TinyDBStore(Path(location))


def open_postgres(url: str) -> PostgresStore:
    """Imported on first use: SQLAlchemy and asyncpg cost the TinyDB user nothing."""
    from storage.postgres_store import PostgresStore

    return PostgresStore(url)
