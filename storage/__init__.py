"""Persistence behind one small contract.

Records are plain JSON-able dicts with an integer ``id``. The store never
interprets them beyond the few fields it indexes (see ``INDEXED``), so bot/
owns the meaning of every field. Two backends implement the contract: the
in-memory one (tests, benches) and the TinyDB one (the embedded default).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

DEPARTURES = "departures"
TOUCHES = "touches"
EVENTS = "events"
TABLES = (DEPARTURES, TOUCHES, EVENTS)

# Fields kept in memory beside each record so that lists and lookups never
# have to parse every stored document.
INDEXED: dict[str, tuple[str, ...]] = {
    DEPARTURES: ("client_key", "status", "am", "updated_at"),
    TOUCHES: ("key", "departure_id", "status", "due_at", "kind"),
    EVENTS: ("key", "at"),
}

# Fields whose value is unique within their table, looked up through a dict.
UNIQUE: dict[str, str] = {TOUCHES: "key", EVENTS: "key"}

# Indexed fields also kept as value -> ids, so that a filter on them reads only the matches.
LOOKUP: dict[str, tuple[str, ...]] = {DEPARTURES: ("client_key", "am", "status"), TOUCHES: ("departure_id", "status")}

# A filter's exact values per looked-up field: one value, or a set of any-of values.
Equal = dict[str, Any]

Record = dict[str, Any]
Predicate = Callable[[dict[str, Any]], bool]


class StoreError(Exception):
    """The store cannot be used; the message says what to do."""


class StoreCorruptError(StoreError):
    """A data file cannot be read. It is left exactly as it was found."""


class Store(ABC):
    """The repository contract that bot/ relies on.

    Every write is durable when the call returns. ``batch()`` groups writes so
    that either all of them or none survive a crash.
    """

    # -- departures ---------------------------------------------------------
    def insert_departure(self, record: Record) -> Record:
        return self._insert(DEPARTURES, record)

    def save_departure(self, record: Record) -> None:
        self._put(DEPARTURES, record)

    def get_departure(self, departure_id: int) -> Record | None:
        return self._get(DEPARTURES, departure_id)

    def find_departures(
        self,
        *,
        client_key: str | None = None,
        client_prefix: str | None = None,
        statuses: Iterable[str] | None = None,
        am: str | None = None,
    ) -> list[Record]:
        """Departures matching every given filter, oldest first."""
        equal: Equal = {"client_key": client_key, "status": set(statuses) if statuses is not None else None, "am": am}
        return self._select(
            DEPARTURES,
            lambda f: client_prefix is None or f["client_key"].startswith(client_prefix),
            {k: v for k, v in equal.items() if v is not None},
        )

    def count_departures(self) -> int:
        return self._count(DEPARTURES)

    # -- touches ------------------------------------------------------------
    def put_touch(self, record: Record) -> Record:
        """Insert a touch, or replace the one with the same unique ``key``."""
        existing = self._id_for_key(TOUCHES, record["key"])
        if existing is not None:
            record = {**record, "id": existing}
            self._put(TOUCHES, record)
            return record
        return self._insert(TOUCHES, record)

    def save_touch(self, record: Record) -> None:
        self._put(TOUCHES, record)

    def get_touch(self, touch_id: int) -> Record | None:
        return self._get(TOUCHES, touch_id)

    def touch_by_key(self, key: str) -> Record | None:
        found = self._id_for_key(TOUCHES, key)
        return None if found is None else self._get(TOUCHES, found)

    def find_touches(
        self,
        *,
        departure_id: int | None = None,
        statuses: Iterable[str] | None = None,
        due_before: str | None = None,
    ) -> list[Record]:
        """Touches matching every filter, earliest due first.

        ``due_before`` compares ISO-8601 UTC strings, which sort as times do.
        """
        equal: Equal = {"departure_id": departure_id, "status": set(statuses) if statuses is not None else None}
        found = self._select(
            TOUCHES,
            lambda f: due_before is None or (f["due_at"] or "") <= due_before,
            {k: v for k, v in equal.items() if v is not None},
        )
        return sorted(found, key=lambda t: (t.get("due_at") or "", t["id"]))

    def count_touches(self) -> int:
        return self._count(TOUCHES)

    def claim_touch(self, touch_id: int, expected: str, new: str, **changes: Any) -> Record | None:
        """Move a touch from ``expected`` to ``new`` status, durably, or do nothing.

        Returns the updated touch, or None when it was not in ``expected``:
        the dispatcher claims a touch before sending so that it goes at most once.
        """
        touch = self._get(TOUCHES, touch_id)
        if touch is None or touch["status"] != expected:
            return None
        touch.update(changes, status=new)
        self._put(TOUCHES, touch)
        return touch

    # -- processed events ---------------------------------------------------
    def remember_event(self, key: str, at: str, forget_before: str) -> bool:
        """Record an event id; False when it was seen already.

        Ids older than ``forget_before`` are dropped in the same write.
        """
        if self._id_for_key(EVENTS, key) is not None:
            return False
        stale = self._ids_where(EVENTS, lambda f: f["at"] < forget_before)
        with self.batch():
            for event_id in stale:
                self._delete(EVENTS, event_id)
            self._insert(EVENTS, {"key": key, "at": at})
        return True

    def forget_event(self, key: str) -> None:
        """Drop an event id, so that a retry of an event whose handling failed is handled."""
        event_id = self._id_for_key(EVENTS, key)
        if event_id is not None:
            self._delete(EVENTS, event_id)

    # -- backend hooks --------------------------------------------------------
    @abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """Group the writes made inside the block into one atomic write."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store; it is unusable afterwards."""

    @abstractmethod
    def _insert(self, table: str, record: Record) -> Record:
        """Store a new record under a fresh id and return it with that id."""

    @abstractmethod
    def _put(self, table: str, record: Record) -> None:
        """Store ``record`` under its own ``id``, replacing what was there."""

    @abstractmethod
    def _delete(self, table: str, record_id: int) -> None:
        """Remove a record; removing a missing one is not an error."""

    @abstractmethod
    def _get(self, table: str, record_id: int) -> Record | None:
        """A fresh copy of one record, or None."""

    @abstractmethod
    def _ids_where(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[int]:
        """Ids whose indexed fields hold the ``equal`` values and satisfy ``predicate``, in id order."""

    @abstractmethod
    def _id_for_key(self, table: str, key: str) -> int | None:
        """The id of the record whose unique field (see UNIQUE) is ``key``."""

    @abstractmethod
    def _select(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[Record]:
        """Fresh copies of the records ``_ids_where`` names, in id order."""

    @abstractmethod
    def _count(self, table: str) -> int:
        """How many records ``table`` holds."""


def open_store(path: str | Path | None) -> Store:
    """The TinyDB store at ``path``, or an in-memory one when ``path`` is None."""
    if path is None:
        from storage.memory_store import MemoryStore

        return MemoryStore()
    from storage.tinydb_store import TinyDBStore

    return TinyDBStore(Path(path))
