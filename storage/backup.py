"""``sendoff backup``: a consistent copy of a TinyDB store, taken while the bot runs or not.

Copying the files would not do: the writer appends to its journal and, now
and then, replaces the snapshot and deletes the older journals, so files
copied one after another can come from different moments. The copy is read
instead, as ``sendoff report`` reads (``ReadOnlyTinyDBStore``: the snapshot and
the journals after it, without the writer's lock, starting over when a
compaction moves the files), which gives the state as of one write. It is then
written as a single fresh snapshot, with no journal, and read back to check it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

from storage.contract import SCHEMA_VERSION, TABLES, StoreError
from storage.tinydb_store import FILE_MODE, ReadOnlyTinyDBStore, _fsync_dir, _snapshot_chunks

# The tables a backup counts, by name: how many records each holds.
Counts = dict[str, int]


def default_backup_path(source: Path, now: datetime) -> Path:
    """Where ``sendoff backup`` writes without ``--to``: beside the data, named by the time (UTC) it was taken."""
    return source.parent / "backups" / f"{source.stem}-{now.strftime('%Y%m%d-%H%M%S')}{source.suffix}"


def backup_tinydb(source: Path, destination: Path) -> Counts:
    """Write a consistent copy of the TinyDB store at ``source`` to ``destination``; the records per table.

    Never overwrites: an existing ``destination`` (or journals of one) is refused with a StoreError, and so is
    a ``source`` with no data. The copy is a normal store: ``SENDOFF_DB=<destination>`` opens it.
    """
    source, destination = Path(source), Path(destination)
    if destination.resolve() == source.resolve():
        raise StoreError(f"{destination} is the store itself; choose another file for the backup.")
    _refuse_existing(destination)
    if not source.exists() and not _journals_of(source):
        raise StoreError(f"there is no data at {source} to back up (check SENDOFF_DB).")
    reader = ReadOnlyTinyDBStore(source)
    try:
        # Each record is kept as its JSON text: the snapshot embeds them as they are.
        tables = {table: dict(reader._text[table]) for table in TABLES}
    finally:
        reader.close()
    destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_new(destination, tables)
    counts = {table: len(records) for table, records in tables.items()}
    _check_copy(destination, counts)
    return counts


def _journals_of(path: Path) -> list[Path]:
    if not path.parent.is_dir():
        return []
    return [p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.journal-")]


def _refuse_existing(destination: Path) -> None:
    if destination.exists():
        raise StoreError(f"{destination} exists already; a backup never overwrites. Choose another file.")
    # A store opened at the destination would replay these on top of the copy.
    if _journals_of(destination):
        raise StoreError(f"journals of another store ({destination.name}.journal-*) lie beside {destination}; "
                         "choose another file.")  # fmt: skip


def _write_new(destination: Path, tables: dict[str, dict[int, str]]) -> None:
    """Write the snapshot under a temporary name, then link it into place: it appears whole, and never replaces."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, FILE_MODE)  # the records name people: readable by the owner only, as the store is
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # Generation 0 with no journal: the copy's writer starts its first journal afresh.
            for chunk in _snapshot_chunks(tables, {"schema": SCHEMA_VERSION, "generation": 0}):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # Unlike a rename, a link fails when the name is taken, even by a file created a moment ago.
            os.link(tmp, destination)
        except FileExistsError:
            raise StoreError(f"{destination} exists already; a backup never overwrites. Choose another file.") from None
        except OSError:
            # A file system without hard links: look, then rename (a file created in between would be replaced).
            _refuse_existing(destination)
            os.rename(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(destination.parent)


def _check_copy(destination: Path, counts: Counts) -> None:
    """Read the copy as a store would; a copy that does not hold what was read is removed, not left as a backup."""
    try:
        copy = ReadOnlyTinyDBStore(destination)
        found = {table: len(copy._text[table]) for table in TABLES}
        copy.close()
    except StoreError as err:
        _remove(destination)
        raise StoreError(f"the backup at {destination} could not be read back ({err}); it was removed.") from err
    if found != counts:
        _remove(destination)
        raise StoreError(f"the backup at {destination} holds {found}, not {counts}; it was removed.")


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
