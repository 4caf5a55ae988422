"""Persistence behind one small contract.

The contract lives in ``storage.contract`` and the typed records in
``storage.records``; this package re-exports the names the rest of the code
uses and picks a backend. Two backends implement the contract: the in-memory
one (tests, benches) and the TinyDB one (the embedded default).
"""

from __future__ import annotations

from pathlib import Path

from storage.contract import (
    DEPARTURES,
    EVENTS,
    INDEXED,
    LOOKUP,
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
)
from storage.memory_store import MemoryStore
from storage.tinydb_store import TinyDBStore

__all__ = [
    "DEPARTURES",
    "EVENTS",
    "INDEXED",
    "LOOKUP",
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
    "open_store",
]


def open_store(path: str | Path | None) -> Store:
    """The TinyDB store at ``path``, or an in-memory one when ``path`` is None."""
    if path is None:
        return MemoryStore()
    return TinyDBStore(Path(path))
