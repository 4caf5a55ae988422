"""The in-memory backend, and the in-memory half of the TinyDB backend.

Each record is held as its JSON text, so a reader always gets a fresh copy
and a snapshot can be taken with a shallow copy of the table while writers go
on. Beside the text sits a small dict of the table's indexed fields.

Two things keep the cost of a request flat however much is stored:

- Pending (and other) touches are also kept per status in a list sorted by
  due time, so that the dispatcher's "what is due now?" reads only the due
  ones rather than every pending touch (``find_touches``).
- A table read from a file in bulk is held as texts alone until something
  needs its index (a lookup, a filter), and is not even split into records
  until something reads it: ``sendoff report`` reads every departure and
  never looks at a touch, and a table read in full is parsed once, its index
  built from the same parse.
"""

from __future__ import annotations

import gc
import json
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from operator import itemgetter
from typing import Any

from storage.contract import (
    DEPARTURES,
    INDEXED,
    LOOKUP,
    TABLES,
    TOUCHES,
    UNIQUE,
    Equal,
    Outline,
    Predicate,
    Record,
    Store,
    StoreCorruptError,
    StoreError,
    _restore,
    load_json,
)
from storage.records import Touch, TouchStatus, touch_from

# One pending write: (table, id, JSON text or None for a deletion).
Write = tuple[str, int, str | None]
# A touch in the due-time index: (its due time, "" for none, as the contract sorts it; its id).
Due = tuple[str, int]
_due_of = itemgetter(0)


def _parse(table: str, record_id: int, text: str | bytes) -> Record:
    """A stored record's text parsed; StoreCorruptError naming it when it is not JSON."""
    try:
        parsed: Record = load_json(text)
    except ValueError as err:
        raise StoreCorruptError(
            f"{table} record {record_id} in the store cannot be read ({err}). "
            f"Restore the data from a backup, or correct that record."
        ) from err
    return parsed


def _discard(entries: list[Due], entry: Due) -> None:
    at = bisect_left(entries, entry)
    if at < len(entries) and entries[at] == entry:
        del entries[at]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Parsing many records makes hundreds of thousands of dicts, and every few hundred of them would start a
    garbage collection that walks the objects kept so far: a cost that grows with what is read (measured:
    a second read of 10,000 departures took twice as long as the first with it running). Parsed JSON holds
    no reference cycles, so nothing is lost by collecting afterwards instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class MemoryStore(Store):
    def __init__(self) -> None:
        self._texts: dict[str, dict[int, str]] = {t: {} for t in TABLES}
        # Tables of a file not yet even split into records, each with what gives its records as (id, JSON bytes)
        # (see ``_table``): a reader that parses each record once and keeps none (``outline_departures``) takes
        # them so, without holding them as texts first.
        self._unread: dict[str, Callable[[], Iterable[tuple[int, bytes]]]] = {}
        self._fields: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TABLES}
        self._by_key: dict[str, dict[str, int]] = {t: {} for t in UNIQUE}
        self._ids_by: dict[str, dict[str, dict[Any, set[int]]]] = {t: {f: {} for f in LOOKUP[t]} for t in LOOKUP}
        # touch status -> [(due_at or "", id)], sorted: "what is due" is a prefix of its status's list
        self._due: dict[str, list[Due]] = {}
        # (sent_at, id) of every touch sent, sorted: "what went since" is a suffix
        self._sent: list[Due] = []
        # Tables held as texts only (read in bulk from a file), indexed when first needed (see the module).
        self._unindexed: set[str] = set()
        self._next_id: dict[str, int] = {t: 1 for t in TABLES}
        self._pending: list[Write] | None = None
        # False in a batch whose writes may wait for durable() (Store.batch_durable_later)
        self._durable_now = True
        self._undo: list[Write] = []
        self._closed = False

    # -- writes -----------------------------------------------------------------
    def batch(self) -> AbstractContextManager[None]:
        return self._batch(durable_now=True)

    def batch_durable_later(self) -> AbstractContextManager[None]:
        return self._batch(durable_now=False)

    @contextmanager
    def _batch(self, *, durable_now: bool) -> Iterator[None]:
        if self._pending is not None:  # nested: the outer batch commits
            yield
            return
        self._pending = []
        self._durable_now = durable_now
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
            self._durable_now = True
        self._committed()

    def _insert(self, table: str, record: Mapping[str, Any]) -> Record:
        self._table(table)  # read first: the next id follows those of the file
        stored = {**record, "id": self._next_id[table]}
        self._put(table, stored)
        return stored

    def _put(self, table: str, record: Mapping[str, Any]) -> None:
        record_id = int(record["id"])
        # The record goes along, so that its indexed fields need not be parsed back from the text.
        self._write((table, record_id, json.dumps(record, ensure_ascii=False, separators=(",", ":"))), record)

    def _delete(self, table: str, record_id: int) -> None:
        if record_id in self._table(table):
            self._write((table, record_id, None))

    def _write(self, write: Write, record: Mapping[str, Any] | None = None) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self._pending is None:
            self._persist([write])
        else:
            table, record_id, _ = write
            self._undo.append((table, record_id, self._table(table).get(record_id)))
            self._pending.append(write)
        # Visible at once, so that reads inside a batch see earlier writes.
        self._apply(write, record)
        if self._pending is None:
            self._committed()

    def _persist(self, writes: list[Write]) -> None:
        """Make ``writes`` durable before they count; memory has nothing to do."""

    def _committed(self) -> None:
        """Called once durable writes are also visible."""

    def _apply(self, write: Write, record: Mapping[str, Any] | None = None) -> None:
        """Make ``write`` visible; ``record`` is its text parsed, when the caller has it."""
        table, record_id, text = write
        if record_id >= self._next_id[table]:
            self._next_id[table] = record_id + 1
        texts = self._table(table)
        if table in self._unindexed:  # its index is built from the texts when first needed
            if text is None:
                texts.pop(record_id, None)
            else:
                texts[record_id] = text
            return
        old = self._fields[table].pop(record_id, None)
        if old is not None:
            self._unindex(table, record_id, old)
        if text is None:
            texts.pop(record_id, None)
            return
        texts[record_id] = text
        self._index(table, record_id, load_json(text) if record is None else record)

    def _index(self, table: str, record_id: int, record: Mapping[str, Any], *, in_order: bool = True) -> None:
        """Add one record's indexed fields; ``in_order=False`` leaves the due-time lists to be sorted after."""
        fields: dict[str, Any] = {f: record.get(f) for f in INDEXED[table]}
        self._fields[table][record_id] = fields
        for name, ids in self._ids_by.get(table, {}).items():
            ids.setdefault(fields[name], set()).add(record_id)
        if table in UNIQUE:
            self._by_key[table][fields[UNIQUE[table]]] = record_id
        if table == TOUCHES:
            add = insort if in_order else list.append
            add(self._due.setdefault(fields["status"], []), (fields["due_at"] or "", record_id))
            if fields["sent_at"]:
                add(self._sent, (fields["sent_at"], record_id))

    def _unindex(self, table: str, record_id: int, old: dict[str, Any]) -> None:
        if table in UNIQUE:
            self._by_key[table].pop(old[UNIQUE[table]], None)
        for name, ids in self._ids_by.get(table, {}).items():
            ids.get(old[name], set()).discard(record_id)
        if table == TOUCHES:
            _discard(self._due.get(old["status"], []), (old["due_at"] or "", record_id))
            if old["sent_at"]:
                _discard(self._sent, (old["sent_at"], record_id))

    # -- loading in bulk (the TinyDB backend) -------------------------------------------
    @property
    def _text(self) -> dict[str, dict[int, str]]:
        """Every table's texts by id, each read in full first: what a snapshot or a backup copies."""
        for table in list(self._unread):
            self._table(table)
        return self._texts

    def _table(self, table: str) -> dict[int, str]:
        """``table``'s texts by id, split out of the file first if that has not been done yet."""
        read = self._unread.pop(table, None)
        if read is not None:
            for record_id, text in read():
                self._load_text(table, record_id, text.decode())
        return self._texts[table]

    def _load_text(self, table: str, record_id: int, text: str) -> None:
        """Hold a record read from a file as its text alone; ``_unindexed`` names the tables so loaded."""
        self._texts[table][record_id] = text
        if record_id >= self._next_id[table]:
            self._next_id[table] = record_id + 1

    def _ensure_indexed(self, table: str) -> None:
        if table in self._unindexed:
            texts = self._table(table)
            self._index_all(table, ((i, texts[i]) for i in list(texts)), keep=False)

    def _index_all(self, table: str, texts: Iterable[tuple[int, str]], *, keep: bool) -> list[tuple[int, Record]]:
        """Parse and index every record of an unindexed table; with ``keep``, hand the parsed records back."""
        kept: list[tuple[int, Record]] = []
        self._fields[table].clear()
        self._by_key.get(table, {}).clear()
        for ids in self._ids_by.get(table, {}).values():
            ids.clear()
        if table == TOUCHES:
            self._due.clear()
            self._sent.clear()
        with collector_paused():
            for record_id, text in texts:
                record = _parse(table, record_id, text)
                self._index(table, record_id, record, in_order=False)
                if keep:
                    kept.append((record_id, record))
        if table == TOUCHES:
            for entries in self._due.values():
                entries.sort()
            self._sent.sort()
        self._unindexed.discard(table)
        return kept

    # -- reads ------------------------------------------------------------------
    def _get(self, table: str, record_id: int) -> Record | None:
        text = self._table(table).get(int(record_id))
        return None if text is None else load_json(text)

    def _ids_where(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[int]:
        self._ensure_indexed(table)
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
        self._ensure_indexed(table)
        return self._by_key[table].get(key)

    def _select(self, table: str, predicate: Predicate, equal: Equal | None = None) -> list[Record]:
        text = self._table(table)
        if table in self._unindexed and not equal:
            # Read in full (every departure, for a report): one parse gives both the records and the index.
            parsed = self._index_all(table, ((i, text[i]) for i in sorted(text)), keep=True)
            fields = self._fields[table]
            return [record for record_id, record in parsed if predicate(fields[record_id])]
        ids = self._ids_where(table, predicate, equal)
        with collector_paused():
            return [load_json(text[i]) for i in ids]

    def outline_departures(self, outline: Outline) -> list[Record]:
        """As the contract's, but each record is cut down as soon as it is parsed, and the table is not indexed
        on the way: ``sendoff report`` never looks a departure up, and never holds every whole one at once."""
        lines = self._unread.get(DEPARTURES)
        found = []
        with collector_paused():
            if lines is not None:  # straight from the file's bytes (a read-only report)
                records: Iterable[tuple[int, str | bytes]] = sorted(lines())
            else:
                texts = self._table(DEPARTURES)
                records = ((record_id, texts[record_id]) for record_id in sorted(texts))
            for record_id, text in records:
                found.append(_restore(outline.read, DEPARTURES, _parse(DEPARTURES, record_id, text)))
        return found

    def _count(self, table: str) -> int:
        return len(self._table(table))

    def find_touches(
        self,
        *,
        departure_id: int | None = None,
        statuses: Iterable[TouchStatus] | None = None,
        due_before: str | None = None,
        sent_after: str | None = None,
        limit: int | None = None,
    ) -> list[Touch]:
        """As the contract's, but read from the sorted lists: a dispatch tick parses only what is due, the
        daily cap's count only what was sent lately, however many touches wait for later or went long ago."""
        if statuses is None or (due_before is None and sent_after is None and limit is None):
            return super().find_touches(departure_id=departure_id, statuses=statuses, due_before=due_before,
                                        sent_after=sent_after, limit=limit)  # fmt: skip
        self._ensure_indexed(TOUCHES)
        wanted = set(statuses)
        fields, text = self._fields[TOUCHES], self._table(TOUCHES)
        found: list[Due] = []
        if sent_after is not None:
            recent = self._sent[bisect_right(self._sent, sent_after, key=_due_of):]
            found = [((fields[i]["due_at"] or ""), i) for _, i in recent if fields[i]["status"] in wanted]
            if due_before is not None:
                found = [entry for entry in found if entry[0] <= due_before]
            found.sort()
        else:
            for status in wanted:
                entries = self._due.get(status, [])
                found += entries if due_before is None else entries[: bisect_right(entries, due_before, key=_due_of)]
            if len(wanted) > 1:
                found.sort()
        ids = [i for _, i in found if departure_id is None or fields[i]["departure_id"] == departure_id][:limit]
        with collector_paused():
            return [_restore(touch_from, TOUCHES, load_json(text[i])) for i in ids]

    def close(self) -> None:
        self._closed = True
