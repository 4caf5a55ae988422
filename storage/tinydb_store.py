"""The embedded default: a TinyDB database file plus a write-ahead journal.

TinyDB's own JSONStorage rewrites the whole file in place on every write: a
crash can corrupt it, and the cost grows with the data (hundreds of ms at
100k documents). So here:

- ``sendoff.json`` is a TinyDB database (one table per kind, integer
  document ids, a ``meta`` table with the schema version and generation),
  always replaced atomically: temp file, fsync, ``os.replace``, fsync of the
  folder. It is written one record per line, with the meta table last,
  holding a CRC-32 of everything before it. Reading it back then costs one
  read and one checksum: each line is a record's text as it was stored, and
  it is parsed only when its table is first looked into (see
  storage/memory_store.py). A file in any other layout (written by TinyDB
  itself, by an older sendoff, or edited by hand) or whose checksum does not
  match is parsed as JSON in full, once, and refused when it is not valid.
- Each write appends one JSON line to ``sendoff.json.journal-<generation>``
  and fsyncs it: a small write whatever the size of the data. A line torn by
  a crash was never acknowledged, and is dropped when the store is opened.
- When the journal has grown as large as the snapshot, a new snapshot is
  written from a shallow copy of the tables in a background thread, one
  record at a time so that the event loop keeps the GIL; new writes go to the
  next journal meanwhile. Any crash leaves a snapshot plus the journals that
  come after it.
- One process writes: an exclusive lock on ``sendoff.json.lock``.
- Any number may read beside it (``ReadOnlyTinyDBStore``, for ``sendoff report``): the
  snapshot and the journals after it, without the lock, never writing, never compacting.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from storage.contract import SCHEMA_VERSION, TABLES, StoreCorruptError, StoreError, load_json
from storage.memory_store import MemoryStore, Write, collector_paused

META = "meta"
FILE_MODE = 0o600
# A reader beside the writer starts over when a compaction moved the files under it; this many times at most.
READ_ATTEMPTS = 20
# Below this size the journal is never compacted: rewriting a small snapshot
# often would cost more than replaying a short journal.
MIN_COMPACT_BYTES = 1 << 20
# The snapshot's layout (one record per line, the meta table last with a checksum): the fast way to read it.
LINES_LAYOUT = 2
# How the meta table's line begins and the file ends, in that layout.
META_LINE = b'\n,"' + META.encode() + b'":{"1":'
META_END = b"}\n}\n"
# Lines per chunk handed to the writer: few enough that a compaction thread lets go of the GIL often.
CHUNK_LINES = 64


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, chunks: Iterator[str]) -> None:
    """Write ``chunks`` to ``path`` so that a crash leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _snapshot_chunks(tables: dict[str, dict[int, str]], meta: dict[str, Any]) -> Iterator[str]:
    """TinyDB's file layout, built record by record from stored JSON texts: one record per line, then the meta
    table with the checksum of every line before it (see the module).

    A stored text never holds a line break: JSON escapes one inside a string, and the texts are compact.
    """
    crc = 0
    lines = ["{\n"]
    opened = False
    for table, texts in tables.items():
        lines.append(f'{"," if opened else ""}"{table}":{{\n')
        opened = True
        for n, (record_id, text) in enumerate(sorted(texts.items())):
            lines.append(f'{"," if n else ""}"{record_id}":{text}\n')
            if len(lines) >= CHUNK_LINES:
                chunk = "".join(lines)
                crc = zlib.crc32(chunk.encode(), crc)
                yield chunk
                lines = []
        lines.append("}\n")
    chunk = "".join(lines)
    crc = zlib.crc32(chunk.encode(), crc)
    yield chunk
    checked = {**meta, "layout": LINES_LAYOUT, "crc32": crc}
    yield f'{"," if opened else ""}"{META}":{{"1":{json.dumps(checked)}}}\n}}\n'


class AtomicJSONStorage(Storage):
    """A TinyDB storage that refuses a corrupt file and replaces it atomically."""

    def __init__(self, path: str, **_: Any) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreCorruptError(_corrupt_message(self.path, err)) from err
        return _parse_database(self.path, raw)

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        tables = {
            name: {int(i): json.dumps(doc, separators=(",", ":")) for i, doc in docs.items()}
            for name, docs in data.items()
            if name != META
        }
        meta = dict(data.get(META, {}).get("1", {}))
        write_atomically(self.path, _snapshot_chunks(tables, meta))


def _parse_database(path: Path, raw: bytes) -> dict[str, dict[str, Any]]:
    """The whole file parsed as JSON, checked to be a TinyDB database; StoreCorruptError when it is not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StoreCorruptError(_corrupt_message(path, err)) from err
    if not text.strip():
        raise StoreCorruptError(_corrupt_message(path, "the file is empty"))
    try:
        data = load_json(text)
    except json.JSONDecodeError as err:
        raise StoreCorruptError(_corrupt_message(path, err)) from err
    if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
        raise StoreCorruptError(_corrupt_message(path, "it is not a TinyDB database"))
    return data


def _record_lines(path: Path, table: str, section: memoryview) -> Iterator[tuple[int, bytes]]:
    """The records of one table's lines as (id, JSON bytes), checksummed, so as the writer wrote them; bytes,
    for ``MemoryStore.outline_departures`` parses them as they are (orjson reads bytes faster than a text it
    must encode again)."""
    lines = bytes(section).split(b"\n")
    if lines.pop():  # after the last newline: nothing
        raise StoreCorruptError(_corrupt_message(path, f"a line of its {table} is not a record"))
    for number, line in enumerate(lines):
        head, colon, text = line.partition(b":")
        opening = b',"' if number else b'"'  # "id":{...}, after a comma but for the first
        digits = head[len(opening) : -1]
        if not (colon and text and head.startswith(opening) and head.endswith(b'"') and digits.isdigit()):
            raise StoreCorruptError(_corrupt_message(path, f"a line of its {table} is not a record"))
        yield int(digits), text


def _corrupt_message(path: Path, why: object) -> str:
    return (
        f"{path} cannot be read ({why}). sendoff has left it untouched. "
        f"Restore it from a backup, or move it aside to start with an empty store."
    )


class _TinyDBFiles(MemoryStore):
    """Reading the files: the snapshot, then the journals after it. Shared by the writer and the readers."""

    path: Path

    def _load_snapshot(self) -> int:
        """Read the snapshot into memory; its generation (0 when there is none)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as err:
            raise StoreCorruptError(_corrupt_message(self.path, err)) from err
        meta = self._read_lines(raw)
        if meta is None:
            meta = self._read_parsed(_parse_database(self.path, raw))
        schema = meta.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise StoreCorruptError(
                f"{self.path} has schema version {schema}; this sendoff reads version "
                f"{SCHEMA_VERSION}. Use the sendoff release that wrote it."
            )
        return int(meta.get("generation", 0))

    def _read_lines(self, raw: bytes) -> dict[str, Any] | None:
        """A snapshot in sendoff's own layout whose checksum holds: each record kept as its text, unparsed
        (tables indexed when first needed); its meta. None for any other file: it is parsed in full instead."""
        start = raw.rfind(META_LINE)
        if start < 0 or not raw.endswith(META_END):
            return None
        try:
            meta = json.loads(raw[start + len(META_LINE) : len(raw) - len(META_END)])
        except ValueError:
            return None
        body = memoryview(raw)[: start + 1]
        if not isinstance(meta, dict) or meta.get("layout") != LINES_LAYOUT or meta.get("crc32") != zlib.crc32(body):
            return None
        sections: dict[str, memoryview] = {}  # views, not copies: a report never reads the touches
        at = 2  # after "{\n"
        while at < len(body):  # each table: its line "name":{ (after a comma but for the first), its records, "}"
            end = raw.find(b"\n", at, len(body))
            header = raw[at:end]
            if end < 0 or not (header.startswith((b'"', b',"')) and header.endswith(b'":{')):
                return None
            close = raw.find(b"\n}\n", end, len(body))
            if close < 0:
                return None
            sections[header.lstrip(b",")[1:-3].decode()] = memoryview(raw)[end + 1 : close + 1]
            at = close + 3
        if raw[:2] != b"{\n" or at != len(body):
            return None
        for table in TABLES:
            if table in sections:
                self._unread[table] = partial(_record_lines, self.path, table, sections[table])
        self._unindexed.update(TABLES)
        return meta

    def _read_parsed(self, data: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """A database parsed in full (any TinyDB file): each record kept, and indexed from that one parse."""
        with collector_paused():
            for table in TABLES:
                for doc_id, doc in data.get(table, {}).items():
                    if not isinstance(doc, dict) or not doc_id.isdigit():
                        why = f"{table} record {doc_id!r} is not a record"
                        raise StoreCorruptError(_corrupt_message(self.path, why))
                    record = {**doc, "id": int(doc_id)}
                    self._apply((table, record["id"], json.dumps(record, ensure_ascii=False, separators=(",", ":"))),
                                record)  # fmt: skip
        found = data.get(META, {}).get("1")
        return found if isinstance(found, dict) else {}

    def _journal_for(self, generation: int) -> Path:
        return self.path.with_name(f"{self.path.name}.journal-{generation:06d}")

    def _journals(self) -> list[tuple[int, Path]]:
        prefix = self.path.name + ".journal-"
        found = []
        for entry in self.path.parent.iterdir():
            if entry.name.startswith(prefix) and entry.name[len(prefix) :].isdigit():
                found.append((int(entry.name[len(prefix) :]), entry))
        return sorted(found)

    def _replay(self, journal: Path, *, is_last: bool, repair: bool = True) -> None:
        """Apply ``journal``; a line torn at the end of the last one is dropped (and cut off, to ``repair``)."""
        raw = journal.read_bytes()
        good_end = 0
        for line in raw.splitlines(keepends=True):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("unterminated line")
                writes = load_json(line)["w"]
            except (ValueError, KeyError, TypeError) as err:
                if is_last and good_end + len(line) == len(raw):
                    break  # torn by a crash mid-append (or, to a reader, being appended): never acknowledged
                raise StoreCorruptError(_corrupt_message(journal, err)) from err
            for table, record_id, doc in writes:
                text = None if doc is None else json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                self._apply((table, int(record_id), text), doc)
            good_end += len(line)
        if repair and good_end != len(raw):
            with open(journal, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())


class TinyDBStore(_TinyDBFiles):
    def __init__(self, path: Path, *, compact_at_bytes: int = MIN_COMPACT_BYTES) -> None:
        super().__init__()
        self.path = Path(path)
        self.compact_at_bytes = compact_at_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_handle = self._take_lock()
        self._guard = threading.Lock()  # journal switch versus compaction
        self._compactor: threading.Thread | None = None
        self._compact_error: BaseException | None = None
        # journal writes so far, and how many of them are known durable (batch_durable_later, durable())
        self._written = self._synced = 0
        self._journal_failed: OSError | None = None  # an fsync of the journal that failed (see _fsync)
        try:
            self._generation = self._load_snapshot()
            replayed = self._replay_journals()
            if replayed is not None:
                # Fold what the journals held into a snapshot, so that the next
                # journal starts clean and generations stay consecutive.
                self._generation = replayed
                self._write_snapshot(replayed, self._copy_tables())
            self._journal_path = self._journal_for(self._generation + 1)
            self._journal = self._open_journal(self._journal_path)
            self._snapshot_bytes = self.path.stat().st_size if self.path.exists() else 0
        except BaseException:
            self._lock_handle.close()
            raise

    # -- start-up ---------------------------------------------------------------
    def _take_lock(self) -> io.TextIOWrapper:
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, FILE_MODE)
        handle = os.fdopen(fd, "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(
                f"{self.path} is in use by another sendoff process. Stop that one first, "
                f"or point SENDOFF_DB at another file."
            ) from None
        return handle

    def _replay_journals(self) -> int | None:
        """Apply the journals newer than the snapshot; the newest generation applied."""
        journals = [(g, j) for g, j in self._journals() if g > self._generation]
        for generation, journal in journals:
            self._replay(journal, is_last=generation == journals[-1][0])
        return journals[-1][0] if journals else None

    @staticmethod
    def _open_journal(path: Path) -> io.BufferedWriter:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        return os.fdopen(fd, "ab")

    # -- writes -----------------------------------------------------------------
    def _persist(self, writes: list[Write]) -> None:
        # The stored texts are JSON already: embed them instead of re-encoding.
        items = ",".join(
            f'["{table}",{record_id},{"null" if text is None else text}]' for table, record_id, text in writes
        )
        data = f'{{"w":[{items}]}}\n'.encode()
        with self._guard:
            self._check_journal()
            start = self._journal.tell()
            try:
                self._journal.write(data)
                self._journal.flush()
                if self._durable_now:
                    self._fsync(self._journal.fileno())
            except BaseException:
                # Leave no partial line for the next append to follow.
                self._journal.truncate(start)
                raise
            self._written += 1
            if self._durable_now:
                self._synced = self._written

    async def durable(self) -> None:
        """The fsync of a batch written with ``batch_durable_later``, in a thread: the event loop goes on."""
        with self._guard:
            target = self._written
            if self._synced >= target:
                return
            if self._closed:
                raise StoreError("the store is closed")
            self._check_journal()
            # a copy of the descriptor: a compaction may close the journal meanwhile (it syncs it first)
            fd = os.dup(self._journal.fileno())
        try:
            await asyncio.to_thread(self._fsync, fd)
        finally:
            os.close(fd)
        with self._guard:
            self._synced = max(self._synced, target)

    def _fsync(self, fd: int) -> None:
        """fsync, and after a failure no other: the kernel reports a lost write once, to one caller, and a
        later fsync that succeeds says nothing of it (so a write waiting for ``durable`` would be taken as kept)."""
        try:
            os.fsync(fd)
        except OSError as err:
            self._journal_failed = err
            raise

    def _check_journal(self) -> None:
        if self._journal_failed is not None:
            raise StoreError(
                f"the disk did not keep a write to {self._journal_path} ({self._journal_failed}). Restart sendoff: "
                f"it reads back what the disk kept, and asks about any email it cannot tell went."
            )

    def _committed(self) -> None:
        # Only now: a snapshot copied before the write was visible would miss
        # it, and the journal holding it is deleted once the snapshot is in place.
        if self._journal.tell() > max(self.compact_at_bytes, self._snapshot_bytes):
            self._compact_in_background()

    # -- compaction -------------------------------------------------------------
    def _copy_tables(self) -> dict[str, dict[int, str]]:
        # Records are immutable texts, so a shallow copy is a consistent view.
        return {t: dict(self._text[t]) for t in TABLES}

    def _switch_journal(self) -> tuple[int, dict[str, dict[int, str]]]:
        """Start the next journal; return the generation and content of the next snapshot."""
        with self._guard:
            if self._synced < self._written:
                # what was written to wait for durable() is never left unsynced in a journal nobody syncs
                self._check_journal()
                self._fsync(self._journal.fileno())
                self._synced = self._written
            self._journal.close()
            self._generation += 1
            self._journal_path = self._journal_for(self._generation + 1)
            self._journal = self._open_journal(self._journal_path)
            return self._generation, self._copy_tables()

    def _write_snapshot(self, generation: int, tables: dict[str, dict[int, str]]) -> None:
        meta = {"schema": SCHEMA_VERSION, "generation": generation}
        write_atomically(self.path, _snapshot_chunks(tables, meta))
        self._snapshot_bytes = self.path.stat().st_size
        for older, journal in self._journals():
            if older <= generation:
                journal.unlink(missing_ok=True)

    def _compact_in_background(self) -> None:
        if self._compactor is not None and self._compactor.is_alive():
            return
        job = self._switch_journal()

        def run() -> None:
            try:
                self._write_snapshot(*job)
            except BaseException as err:  # kept, and raised to the next caller
                self._compact_error = err

        self._compactor = threading.Thread(target=run, name="sendoff-compact", daemon=True)
        self._compactor.start()

    def wait_for_compaction(self) -> None:
        if self._compactor is not None:
            self._compactor.join()
            self._compactor = None
        if self._compact_error is not None:
            err, self._compact_error = self._compact_error, None
            raise StoreError(f"could not write {self.path}: {err}") from err

    def close(self) -> None:
        """Leave everything in the snapshot and release the lock."""
        if self._closed:
            return
        try:
            self.wait_for_compaction()
            if self._journal.tell() > 0:
                self._write_snapshot(*self._switch_journal())
        finally:
            self._journal.close()
            if self._journal_path.exists() and self._journal_path.stat().st_size == 0:
                self._journal_path.unlink()
            super().close()
            self._lock_handle.close()


class _Moved(Exception):
    """A compaction replaced the files while they were read: read again."""


def writer_running(path: Path) -> bool:
    """Whether a sendoff process holds ``path`` open for writing (its lock), asked without waiting.

    A shared lock is tried and let go at once: it fails only while the writer's exclusive lock is held.
    """
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class ReadOnlyTinyDBStore(_TinyDBFiles):
    """The data as of its last write, read beside the process that writes it (``sendoff report`` while the bot runs).

    It takes no lock, and creates, writes, truncates or compacts no file: the
    snapshot and the journals after it are read as they are, a line still being
    appended is left out. When a compaction moves the files while they are read
    (a new snapshot, older journals deleted), the reading starts over. What is
    written through it stays in this process's memory and never reaches the
    files (re-keying on open, say), so a report can never change the data.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.in_use = writer_running(self.path)  # by a sendoff process, now
        self.as_of: datetime | None = None  # the time of the last write read, when there was one
        for _ in range(READ_ATTEMPTS):
            try:
                self.as_of = self._read()
                return
            except _Moved:
                super().__init__()  # empty again, to read from the start
        raise StoreError(f"{self.path} kept changing while it was read; try again in a moment.")

    def _read(self) -> datetime | None:
        if not self.path.parent.is_dir():
            return None
        generation = self._load_snapshot()
        journals = [(g, j) for g, j in self._journals() if g > generation]
        # The writer keeps generations consecutive: a gap means a newer snapshot replaced the one read.
        if [g for g, _ in journals] != list(range(generation + 1, generation + 1 + len(journals))):
            raise _Moved
        written = [self.path] if self.path.exists() else []
        for generation_read, journal in journals:
            try:
                self._replay(journal, is_last=generation_read == journals[-1][0], repair=False)
            except FileNotFoundError:
                raise _Moved from None
            written.append(journal)
        times = []
        for file in written:
            try:
                times.append(file.stat().st_mtime)
            except FileNotFoundError:
                continue  # compacted since it was read: its writes were read already
        return datetime.fromtimestamp(max(times), UTC) if times else None

    def _persist(self, writes: list[Write]) -> None:
        """Nothing reaches the files (see the class)."""

    def close(self) -> None:
        self._closed = True
