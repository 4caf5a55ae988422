"""The in-memory backend, and the in-memory half of the TinyDB backend.

Each record is held as its JSON text, so a reader always gets a fresh copy
and a snapshot can be taken with a shallow copy of the table while writers go
on. Beside the text sits a small dict of the table's indexed fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from storage.contract import INDEXED, LOOKUP, TABLES, UNIQUE, Equal, Predicate, Record, Store, StoreError

# One pending write: (table, id, JSON text or None for a deletion).
Write = tuple[str, int, str | None]


class MemoryStore(Store):
    def __init__(self) -> None:
        self._text: dict[str, dict[int, str]] = {t: {} for t in TABLES}
        self._fields: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TABLES}
        self._by_key: dict[str, dict[str, int]] = {t: {} for t in UNIQUE}
        self._ids_by: dict[str, dict[str, dict[Any, set[int]]]] = {t: {f: {} for f in LOOKUP[t]} for t in LOOKUP}
        self._next_id: dict[str, int] = {t: 1 for t in TABLES}
        self._pending: list[Write] | None = None
        self._undo: list[Write] = []
        self._closed = False

    # -- writes -----------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        if self._pending is not None:  # nested: the outer batch commits
            yield
            return
        self._pending = []
        undo: list[Write] = []
        self._undo = undo
        try:
            yield
            if self._pending:
                self._persist(self._pending)
        except BaseException:
            # Nothing of a failed batch may stay visible: it was never durable.
            for write in reversed(undo):
                self._apply(write)
            raise
        finally:
            self._pending = None
            self._undo = []
        self._committed()

    def _insert(self, table: str, record: Mapping[str, Any]) -> Record:
        stored = {**record, "id": self._next_id[table]}
        self._put(table, stored)
        return stored

    def _put(self, table: str, record: Mapping[str, Any]) -> None:
        record_id = int(record["id"])
        self._write((table, record_id, json.dumps(record, ensure_ascii=False, separators=(",", ":"))))

    def _delete(self, table: str, record_id: int) -> None:
        if record_id in self._text[table]:
            self._write((table, record_id, None))

    def _write(self, write: Write) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self._pending is None:
            self._persist([write])
        else:
            table, record_id, _ = write
            self._undo.append((table, record_id, self._text[table].get(record_id)))
            self._pending.append(write)
        # Visible at once, so that reads inside a batch see earlier writes.
        self._apply(write)
        if self._pending is None:
            self._committed()

    def _persist(self, writes: list[Write]) -> None:
        """Make ``writes`` durable before they count; memory has nothing to do."""

    def _committed(self) -> None:
        """Called once durable writes are also visible."""

    def _apply(self, write: Write) -> None:
        table, record_id, text = write
        old = self._fields[table].pop(record_id, None)
        if old is not None and table in UNIQUE:
            self._by_key[table].pop(old[UNIQUE[table]], None)
        lookups = self._ids_by.get(table, {})
        if old is not None:
            for name, ids in lookups.items():
                ids.get(old[name], set()).discard(record_id)
        if text is None:
            self._text[table].pop(record_id, None)
            return
        self._text[table][record_id] = text
        record = json.loads(text)
        fields = {f: record.get(f) for f in INDEXED[table]}
        self._fields[table][record_id] = fields
        for name, ids in lookups.items():
            ids.setdefault(fields[name], set()).add(record_id)
        if table in UNIQUE:
            self._by_key[table][record[UNIQUE[table]]] = record_id
        if record_id >= self._next_id[table]:
            self._next_id[table] = record_id + 1

    # -- reads ------------------------------------------------------------------
    def _get(self, table: str, record_id: int) -> Record | None:
        text = self._text[table].get(int(record_id))
        return None if text is None else json.loads(text)

    def _ids_where(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[int]:
        fields = self._fields[table]
        if not equal:
            return sorted(i for i, f in fields.items() if predicate(f))
        candidates: set[int] | None = None
        for name, wanted in equal.items():
            ids_by_value = self._ids_by[table][name]
            values = wanted if isinstance(wanted, set) else {wanted}
            matching = set().union(*(ids_by_value.get(v, ()) for v in values))
            candidates = matching if candidates is None else candidates & matching
        return sorted(i for i in candidates or () if predicate(fields[i]))

    def _id_for_key(self, table: str, key: str) -> int | None:
        return self._by_key[table].get(key)

    def _select(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[Record]:
        text = self._text[table]
        return [json.loads(text[i]) for i in self._ids_where(table, predicate, equal)]

    def _count(self, table: str) -> int:
        return len(self._text[table])

    def close(self) -> None:
        self._closed = True
